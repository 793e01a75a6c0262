"""The rules of the learning-from-errors and speaking-up KPIs (config/kpi_rules.yml is the
shipped default; the ``jira`` resource's ``kpi_rules_path`` names the file in use).

The file says which Jira issues are post-incident reviews, how a review names the PagerDuty
incidents it reviews, which issues are its action items and how soon they must close, the
window within which an incident repeats, which HR roles are junior, and which Jira custom field
holds a ticket's Atlassian team (the Team field, tickets.team_field). Every key is optional
(the shipped default's value applies); an unknown key or a wrong value stops the load with a
message naming it. ``read_kpi_rules`` returns the rules; ``rules_frame`` flattens them into
the one-row table ``raw.config__kpi_rules`` the SQL reads, and ``jira_fields`` names the Jira
fields the sync must ask for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path

import duckdb
import polars as pl

from assets.yaml_files import read_yaml

DEFAULT_KPI_RULES = Path(__file__).resolve().parents[1] / "config" / "kpi_rules.yml"
# Text fields a review's link to its incident can be read from besides custom fields.
SYSTEM_TEXT_FIELDS = ("summary", "description")
_FIELD_ID = re.compile(r"customfield_\d+")


class KpiRulesError(ValueError):
    """The KPI rules file is malformed; the message names the entry."""


@dataclass(frozen=True)
class KpiRules:
    review_issue_types: tuple[str, ...]
    review_labels: tuple[str, ...]
    review_projects: tuple[str, ...]
    incident_link_fields: tuple[str, ...]
    incident_link_text_fields: tuple[str, ...]
    incident_id_patterns: tuple[str, ...]
    incident_number_patterns: tuple[str, ...]
    incident_link_issue_link_types: tuple[str, ...]
    action_items_from_subtasks: bool
    action_item_issue_link_types: tuple[str, ...]
    action_item_close_within_days: int
    repeat_window_days: int
    junior_roles: tuple[str, ...]
    ticket_team_field: str | None

    def jira_fields(self) -> list[str]:
        """The Jira fields the rules read beyond the ones every sync asks for: the review's
        custom fields and text fields (summary is always asked for), and the Team field."""
        wanted = [*self.incident_link_fields, *self.incident_link_text_fields,
                  *([self.ticket_team_field] if self.ticket_team_field else [])]
        return [name for name in dict.fromkeys(wanted) if name != "summary"]


# (section, key) -> (KpiRules field, kind). Kinds: names (a list of strings, compared lower
# case), fields (Jira field ids), field (one Jira custom field id, or none), patterns (regular
# expressions with one group), days (a whole number of days, at least 1), flag (true or false).
# Public: the checks name a rules column by its key in the file.
RULES_KEYS = {
    ("post_incident_reviews", "issue_types"): ("review_issue_types", "names"),
    ("post_incident_reviews", "labels"): ("review_labels", "names"),
    ("post_incident_reviews", "projects"): ("review_projects", "names"),
    ("post_incident_reviews.incident_link", "fields"): ("incident_link_fields", "fields"),
    ("post_incident_reviews.incident_link", "text_fields"): ("incident_link_text_fields", "text fields"),
    ("post_incident_reviews.incident_link", "id_patterns"): ("incident_id_patterns", "patterns"),
    ("post_incident_reviews.incident_link", "number_patterns"): ("incident_number_patterns", "patterns"),
    ("post_incident_reviews.incident_link", "issue_link_types"): ("incident_link_issue_link_types", "names"),
    ("post_incident_reviews.action_items", "subtasks"): ("action_items_from_subtasks", "flag"),
    ("post_incident_reviews.action_items", "issue_link_types"): ("action_item_issue_link_types", "names"),
    ("post_incident_reviews.action_items", "close_within_days"): ("action_item_close_within_days", "days"),
    ("repeat_incidents", "window_days"): ("repeat_window_days", "days"),
    ("speaking_up", "junior_roles"): ("junior_roles", "names"),
    ("tickets", "team_field"): ("ticket_team_field", "field"),
}


def read_kpi_rules(path: Path | str = DEFAULT_KPI_RULES) -> KpiRules:
    """The rules in ``path``, each key missing there taken from the shipped default."""
    path = Path(path)
    values = _values(_document(DEFAULT_KPI_RULES), DEFAULT_KPI_RULES, {})
    if path.resolve() != DEFAULT_KPI_RULES.resolve():
        values = _values(_document(path), path, values)
    return KpiRules(**values)


def _document(path: Path) -> dict:
    try:
        # Typed: its settings are numbers of days and true/false flags.
        document = read_yaml(path, KpiRulesError, typed=True)
    except FileNotFoundError:
        raise KpiRulesError(f"{path}: no such KPI rules file (the jira resource's kpi_rules_path)") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise KpiRulesError(f"{path}: expected a mapping with post_incident_reviews, repeat_incidents, speaking_up")
    return document


def _values(document: dict, path: Path, defaults: dict) -> dict:
    """The rules ``document`` sets, over ``defaults``; every unknown key and wrong value is an
    error naming its place in the file."""
    values = dict(defaults)
    sections = {section for section, _ in RULES_KEYS}
    _known(document, {s.split(".")[0] for s in sections}, path, "the top level")
    for section in sorted(sections):
        node: object = document
        for part in section.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            continue
        if not isinstance(node, dict):
            raise KpiRulesError(f"{path}: {section} must be a mapping of keys to values")
        children = {s.split(".")[-1] for s in sections if s.startswith(section + ".")}
        _known(node, {key for s, key in RULES_KEYS if s == section} | children, path, section)
        for (where, key), (name, kind) in RULES_KEYS.items():
            if where == section and key in node:
                values[name] = _value(node[key], kind, f"{path}: {section}.{key}")
    return values


def _known(node: dict, allowed: set[str], path: Path, where: str) -> None:
    unknown = sorted(set(node) - allowed)
    if unknown:
        raise KpiRulesError(f"{path}: unknown keys {unknown} in {where}; valid: {', '.join(sorted(allowed))}")


def _value(value: object, kind: str, where: str) -> object:
    if kind == "flag":
        if not isinstance(value, bool):
            raise KpiRulesError(f"{where} must be true or false, not {value!r}")
        return value
    if kind == "days":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise KpiRulesError(f"{where} must be a whole number of days, at least 1, not {value!r}")
        return value
    if kind == "field":
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not _FIELD_ID.fullmatch(value.strip()):
            raise KpiRulesError(f"{where}: {value!r} is not a Jira custom field id such as customfield_10001 "
                                "(Jira's field ids are listed by GET /rest/api/3/field), nor empty (~)")
        return value.strip()
    if value is None:
        value = []
    if not isinstance(value, list) or not all(isinstance(v, str | int) and str(v).strip() for v in value):
        raise KpiRulesError(f"{where} must be a list of non-empty texts, e.g. [{value}]")
    items = tuple(str(v).strip() for v in value)
    if kind == "names":
        return tuple(dict.fromkeys(item.lower() for item in items))
    if kind == "fields":
        for item in items:
            if not _FIELD_ID.fullmatch(item):
                raise KpiRulesError(f"{where}: {item!r} is not a Jira custom field id such as customfield_10070 "
                                    "(Jira's field ids are listed by GET /rest/api/3/field)")
        return items
    if kind == "text fields":
        for item in items:
            if item not in SYSTEM_TEXT_FIELDS and not _FIELD_ID.fullmatch(item):
                raise KpiRulesError(f"{where}: {item!r} is neither {' nor '.join(SYSTEM_TEXT_FIELDS)} nor a custom "
                                    "field id such as customfield_10070")
        return items
    for item in items:  # patterns: what the warehouse's regular expressions (RE2) accept, one group each
        try:
            groups = re.compile(item).groups
            duckdb.execute("select regexp_extract('', ?, 1)", [item])
        except (re.error, duckdb.Error) as error:
            raise KpiRulesError(f"{where}: {item!r} is not a regular expression the warehouse can use "
                                f"({str(error).splitlines()[0]})") from None
        if groups != 1:
            raise KpiRulesError(f"{where}: {item!r} must have exactly one group, (...), around the id or number; "
                                f"it has {groups}")
    return items


RULES_SCHEMA = {
    field.name: (pl.List(pl.String) if field.type == "tuple[str, ...]" else pl.Boolean if field.type == "bool"
                 else pl.String if field.type == "str | None" else pl.Int32)
    for field in fields(KpiRules)
}


def rules_frame(rules: KpiRules) -> pl.DataFrame:
    """The rules as the one-row table ``raw.config__kpi_rules``."""
    return pl.DataFrame([{name: list(value) if isinstance(value, tuple) else value
                          for name, value in rules.__dict__.items()}], schema=RULES_SCHEMA)
