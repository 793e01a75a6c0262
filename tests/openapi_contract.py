"""Validate response bodies against the official OpenAPI descriptions.

``validate(spec_path, path, method, status, body)`` finds the response schema of
``method path`` for ``status`` and checks ``body`` with ``OAS30Validator`` (which handles
``nullable``), resolving ``$ref``s through a ``referencing`` registry holding the whole
document, and checking formats (``date-time``, ``int32``...) too.

The published descriptions have a few proven defects: places where the spec contradicts
its own examples or the live API, or cannot match any object. Each is patched below, by
JSON pointer, with the reason; everything else validates as published. A test checks that
every patch is still needed (the sandbox's responses fail without it).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

# The vendors' contracts, vendored with their sources noted in specs/README.md.
SPECS_DIR = Path(__file__).resolve().parent / "specs"
PAGERDUTY_SPEC = SPECS_DIR / "pagerduty" / "openapiv3.subset.json"
JIRA_SPEC = SPECS_DIR / "jira" / "swagger-v3.subset.json"
SPEC_URI = "urn:psafe:openapi-spec"

# Jira's date-time layout, "2024-01-05T10:00:00.000+0000".
JIRA_DATE_TIME_PATTERN = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}$"


@dataclass(frozen=True)
class SpecPatch:
    name: str
    pointer: str  # JSON pointer of the node to replace
    fix: Callable[[Any], Any]  # the published node -> its replacement
    why: str


def _one_of_to_any_of(node: dict) -> dict:
    fixed = {key: value for key, value in node.items() if key != "oneOf"}
    fixed["anyOf"] = node["oneOf"]
    return fixed


def _jira_date_time(node: dict) -> dict:
    fixed = {key: value for key, value in node.items() if key != "format"}
    fixed["pattern"] = JIRA_DATE_TIME_PATTERN
    return fixed


PATCHES: dict[Path, tuple[SpecPatch, ...]] = {
    PAGERDUTY_SPEC: (
        SpecPatch(
            "acknowledge log entry type",
            "/components/schemas/AcknowledgeLogEntry/allOf/1/properties/type/enum",
            lambda node: ["acknowledge_log_entry"],
            "AcknowledgeLogEntry restricts type to 'acknowledgement_log_entry', while LogEntry's "
            "enum and the live API say 'acknowledge_log_entry'; no real entry could match.",
        ),
        SpecPatch(
            "channel branches overlap",
            "/components/schemas/Channel",
            _one_of_to_any_of,
            "Channel.oneOf branches declare no distinguishing required properties or enums, so "
            "every channel object matches several of them and oneOf always fails; anyOf keeps "
            "the branch checks.",
        ),
        SpecPatch(
            "custom field value is the bare value",
            "/components/schemas/CustomFieldsFieldValue/properties/value",
            lambda node: {"anyOf": [branch["properties"]["value"] for branch in node["oneOf"]]},
            "CustomFieldsFieldValue.value is declared as a oneOf of wrapper objects "
            "({'value': ...}), but the spec's own examples and the live API send the bare value "
            "(\"production\", a timestamp or null); the patch accepts exactly the wrappers' "
            "inner value schemas.",
        ),
        SpecPatch(
            "custom field changes in log-entry lists",
            "/paths/~1log_entries/get/responses/200/content/application~1json/schema/allOf/1"
            "/properties/log_entries/items/oneOf",
            lambda node: [*node, {"$ref": "#/components/schemas/CustomFieldValueChangeLogEntry"}],
            "GET /log_entries' item oneOf omits CustomFieldValueChangeLogEntry (and "
            "FieldValueChangeLogEntry), which /incidents/{id}/log_entries lists for the very same "
            "entries; LogEntry's type enum defines both.",
        ),
    ),
    JIRA_SPEC: tuple(
        SpecPatch(
            f"jira date-time: {where}",
            pointer,
            _jira_date_time,
            "Jira date-times carry a '+0000' offset (the spec's examples do too), not RFC 3339's "
            "'+00:00' that `format: date-time` demands; checked against Jira's layout instead.",
        )
        for where, pointer in (
            ("serverTime", "/components/schemas/ServerInformation/properties/serverTime"),
            ("buildDate", "/components/schemas/ServerInformation/properties/buildDate"),
            ("changelog created", "/components/schemas/Changelog/properties/created"),
        )
    ),
}


def _resolve_pointer(document: Any, pointer: str) -> tuple[Any, str | int]:
    """The container of the node at ``pointer`` and the node's key in it."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/")]
    node = document
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node, (int(parts[-1]) if isinstance(node, list) else parts[-1])


def _apply(spec: dict, patch: SpecPatch) -> None:
    parent, key = _resolve_pointer(spec, patch.pointer)
    parent[key] = patch.fix(parent[key])


@cache
def _raw_spec(spec_path: Path) -> dict:
    return json.loads(spec_path.read_text())


def load_spec(spec_path: Path, patches: tuple[SpecPatch, ...] | None = None) -> dict:
    """The spec with ``patches`` applied (by default, all of this spec's patches)."""
    spec = copy.deepcopy(_raw_spec(spec_path))
    for patch in PATCHES.get(spec_path, ()) if patches is None else patches:
        _apply(spec, patch)
    return spec


@cache
def _validator_parts(spec_path: Path, patches: tuple[SpecPatch, ...] | None) -> tuple[dict, Registry]:
    spec = load_spec(spec_path, patches)
    registry = Registry().with_resource(SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT4))
    return spec, registry


def response_schema_pointer(spec: dict, path: str, method: str, status: int) -> str:
    response = spec["paths"][path][method.lower()]["responses"][str(status)]
    pointer = f"#/paths/{path.replace('~', '~0').replace('/', '~1')}/{method.lower()}/responses/{status}"
    if "$ref" in response:  # a shared response, e.g. #/components/responses/ArgumentError
        pointer = response["$ref"]
        parent, key = _resolve_pointer(spec, pointer.lstrip("#"))
        response = parent[key]
    if "schema" not in response.get("content", {}).get("application/json", {}):
        raise LookupError(f"{method.upper()} {path} {status}: the spec declares no JSON body")
    return f"{pointer}/content/application~1json/schema"


def validate(
    spec_path: Path, path: str, method: str, status: int, body: Any,
    patches: tuple[SpecPatch, ...] | None = None,
) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``body`` matches the response schema."""
    spec, registry = _validator_parts(Path(spec_path), patches)
    pointer = response_schema_pointer(spec, path, method, status)
    validator = OAS30Validator(
        {"$ref": f"{SPEC_URI}{pointer}"}, registry=registry, format_checker=OAS30Validator.FORMAT_CHECKER
    )
    validator.validate(body)
