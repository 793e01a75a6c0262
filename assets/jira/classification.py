"""The ticket classification rules file (config/ticket_classification.yml is the default).

Each rule names a class (proactive or reactive) and conditions on issue types, labels and
projects; the first matching rule decides. The file is flattened to one row per rule for
the ``raw.config__ticket_classification`` table, which marts/fct_tickets applies in SQL.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from assets.yaml_files import read_yaml

CLASSES = ("proactive", "reactive")
CONDITIONS = ("issue_types", "labels", "projects")


class ClassificationRulesError(ValueError):
    """The rules file is malformed."""


def read_rules(path: Path) -> list[dict]:
    """Rows ``{rule_order, ticket_class, issue_types, labels, projects}`` (lists lower-cased,
    empty when the rule does not constrain that field)."""
    try:
        # As text: an issue type or label written Yes or 1.0 stays as written.
        document = read_yaml(Path(path), ClassificationRulesError)
    except FileNotFoundError:
        raise ClassificationRulesError(f"{path}: no such classification rules file") from None
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list) or not document["rules"]:
        raise ClassificationRulesError(f"{path}: expected a mapping with a non-empty 'rules' list")
    unknown = sorted(map(str, set(document) - {"rules"}))
    if unknown:
        raise ClassificationRulesError(f"{path}: unknown top-level keys {unknown}; the only one is 'rules' "
                                       "(every rule is an entry of that one list)")
    rows = []
    for order, rule in enumerate(document["rules"], start=1):
        where = f"{path}: rule {order}"
        if not isinstance(rule, dict):
            raise ClassificationRulesError(f"{where}: each rule is a mapping with 'class' and conditions")
        unknown = sorted(set(rule) - {"class", *CONDITIONS})
        if unknown:
            raise ClassificationRulesError(f"{where}: unknown keys {unknown}; valid: class, {', '.join(CONDITIONS)}")
        if rule.get("class") not in CLASSES:
            raise ClassificationRulesError(f"{where}: class must be one of {', '.join(CLASSES)}, not {rule.get('class')!r}")
        conditions = {}
        for key in CONDITIONS:
            values = rule.get(key) or []
            if not isinstance(values, list):
                raise ClassificationRulesError(f"{where}: {key} must be a list, e.g. {key}: [{values}]")
            conditions[key] = [str(v).strip().lower() for v in values]
        if not any(conditions.values()):
            raise ClassificationRulesError(f"{where}: needs at least one of {', '.join(CONDITIONS)}")
        rows.append({"rule_order": order, "ticket_class": rule["class"], **conditions})
    return rows


def rules_frame(rows: list[dict]) -> pl.DataFrame:
    """``read_rules`` rows as the ``raw.config__ticket_classification`` table."""
    return pl.DataFrame(rows, schema={
        "rule_order": pl.Int32, "ticket_class": pl.String, "issue_types": pl.List(pl.String),
        "labels": pl.List(pl.String), "projects": pl.List(pl.String),
    })
