"""The team map: a YAML file that says which identifiers in each source belong to which team.

    teams:
      - team: Payments
        pagerduty_teams: [Payments]      # PagerDuty team names or ids
        pagerduty_services: [PX1Y2Z3]    # service ids whose incidents belong here whatever their PagerDuty team
        jira_projects: [PAY]             # project keys
        jira_components: [OPS/Payments]  # PROJECT/Component, for projects several teams share
        jira_teams: [Payments]           # Atlassian team names or ids (the issues' Team field)
        hr_org_units: [OU-1000]
        survey_groups: [Payments]

Every list is optional. The file is flattened to one row per (team, source, identifier);
an identifier claimed by two teams, an unknown key (at the top of the file too), a key given
twice (assets/yaml_files.py), an empty name (YAML's null words included) or a team listed twice
(names alike by identifier_key) is an error that names the offending lines, because a silently
wrong team is worse than a failed run.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import yaml

from assets.yaml_files import read_yaml

SOURCES = {
    "pagerduty_teams": "pagerduty_team",
    "pagerduty_services": "pagerduty_service",
    "jira_projects": "jira_project",
    "jira_components": "jira_component",
    "jira_teams": "jira_team",
    "hr_org_units": "hr_org_unit",
    "survey_groups": "survey_group",
}


# Typographic quotes as the straight ones typed in the map: smart punctuation (survey tools,
# word processors) turns O'Brien's into O’Brien’s as the user types it.
_STRAIGHT_QUOTES = str.maketrans("\u2018\u2019\u201c\u201d", "''\"\"")


def identifier_key(text: str) -> str:
    """A team identifier as an export's cell is matched with the team map: in NFC, without
    invisible format characters (a zero-width space pasted along), its runs of spaces of any
    kind one space, its typographic quotes straight, in lower case (letter by letter:
    ``str.lower``, not case folding, so STRASSENBAU is not Straßenbau). Exports differ from the
    map in exactly these ways, and two texts alike after them are read as the same name by
    anyone looking at them. The SQL twin is the macro survey_group_key (sql/macros)."""
    visible = "".join(c for c in unicodedata.normalize("NFC", text) if unicodedata.category(c) != "Cf")
    return " ".join(visible.split()).lower().translate(_STRAIGHT_QUOTES)


# The sources whose identifiers are names in the landing folder's exports, matched by
# identifier_key (the others are matched as the APIs send them, in NFC: _normalised).
EXPORT_SOURCES = ("hr_org_unit", "survey_group")


class TeamMapError(ValueError):
    """The team map file is malformed or ambiguous."""


# How a name YAML reads as null is written, for the messages refusing one.
NULL_WORDS = "YAML reads an unquoted ~, null, Null or NULL as no value: quote a name written so, e.g. 'NULL'"


def yaml_list(path: Path, key: str, error: type[ValueError]) -> list:
    """The list under ``key`` at the top of the YAML file ``path`` (a landing folder's map);
    ``error`` says what is wrong with the file. Values are read as the text written
    (``TextLoader``); a repeated key, or a top-level key other than ``key``
    (a key dedented one level too far lands there), is an error."""
    document = read_yaml(path, error)
    if not isinstance(document, dict) or not isinstance(document.get(key), list):
        raise error(f"{path}: expected a mapping with a '{key}' list at the top")
    unknown = sorted(map(str, set(document) - {key}))
    if unknown:
        raise error(f"{path}: unknown top-level keys {unknown}; the only one is {key!r} "
                    f"(a key of an entry belongs indented under its '- ' in the {key} list)")
    return document[key]


def read_team_map(path: Path) -> list[dict[str, str]]:
    """Rows of ``{"team", "source", "identifier"}`` from the YAML team map at ``path``."""
    entries = yaml_list(path, "teams", TeamMapError)
    rows: list[dict[str, str]] = []
    owners: dict[tuple[str, str], str] = {}
    seen_teams: dict[str, tuple[int, str]] = {}
    for position, entry in enumerate(entries, start=1):
        where = f"{path}: teams entry {position}"
        if not isinstance(entry, dict) or not str(entry.get("team") or "").strip():
            raise TeamMapError(f"{where}: every entry needs a non-empty 'team'"
                               + (f" ({NULL_WORDS})" if isinstance(entry, dict) and "team" in entry
                                  and entry["team"] is None else ""))
        team = str(entry["team"]).strip()
        # Team names read alike (identifier_key: case, spacing, Unicode form, quotes) are one
        # team to anyone reading the report, so two entries so named are one team listed twice.
        team_key = identifier_key(team)
        if team_key in seen_teams:
            first, written = seen_teams[team_key]
            raise TeamMapError(f"{where}: team {team!r} is listed twice (entry {first}: {written!r})"
                               + ("; team names alike whatever their case, spacing, Unicode form and quotes "
                                  "are one team" if written != team else ""))
        seen_teams[team_key] = (position, team)
        unknown = sorted(set(entry) - {"team", *SOURCES})
        if unknown:
            raise TeamMapError(f"{where} ({team}): unknown keys {unknown}; valid keys: team, {', '.join(SOURCES)}")
        for key, source in SOURCES.items():
            values = entry.get(key) or []
            if not isinstance(values, list):
                raise TeamMapError(f"{where} ({team}): {key} must be a list, e.g. {key}: [{values}]")
            for value in values:
                if value is None or not str(value).strip():
                    raise TeamMapError(f"{where} ({team}): an empty value in {key} ({NULL_WORDS})")
                identifier = _normalised(source, str(value).strip(), f"{where} ({team})")
                # Names in exports match by identifier_key: two that are alike by it are one name.
                matched_as = identifier_key(identifier) if source in EXPORT_SOURCES else identifier
                if owners.get((source, matched_as)) == team:
                    continue  # listed twice by its team (alike by the matching rule): one claim
                owner = owners.setdefault((source, matched_as), team)
                if owner != team:
                    raise TeamMapError(f"{where}: {key} {identifier!r} is mapped to both {owner!r} and {team!r}"
                                       + (" (names in exports match whatever their case and spacing)"
                                          if source in EXPORT_SOURCES else ""))
                rows.append({"team": team, "source": source, "identifier": identifier})
    if not rows:
        raise TeamMapError(f"{path}: maps no identifiers to any team")
    return rows


def _normalised(source: str, identifier: str, where: str) -> str:
    if source in EXPORT_SOURCES:
        return identifier
    # A tool's names and ids are compared in NFC (the models compare the tools' in NFC too):
    # José typed on macOS or pasted from a file name may be in NFD (e and a combining accent),
    # the same text to anyone reading it.
    identifier = unicodedata.normalize("NFC", identifier)
    # Jira project keys are upper case whatever the user typed; components keep their case.
    if source == "jira_project":
        return identifier.upper()
    if source == "jira_component":
        project, slash, component = identifier.partition("/")
        if not slash or not project or not component:
            raise TeamMapError(f"{where}: jira_components entries are PROJECT/Component, not {identifier!r}")
        return f"{project.upper()}/{component}"
    return identifier


def write_team_map(path: Path, teams: list[dict]) -> None:
    """Write ``teams`` (dicts with ``team`` and any of the list keys) as a team map file."""
    header = (
        "# Team map: which identifiers in each source belong to which team (see README).\n"
        "# Keys per team: " + ", ".join(SOURCES) + " (all lists, all optional).\n"
    )
    body = yaml.safe_dump({"teams": teams}, sort_keys=False, allow_unicode=True, default_flow_style=None)
    path.write_text(header + body, encoding="utf-8")
