"""How the pipeline's YAML settings files are read: the team map, the identity map,
export_mapping.yml, the ticket classification rules and the KPI rules.

One rule for all of them: a key given twice in one mapping stops the load, naming the file,
the key and both lines. Plain YAML keeps only the last value without a word, so a second
``teams:`` block, a second ``hr:`` section or ``jira_projects`` written twice in one entry would
silently drop everything the first one said.
"""

from __future__ import annotations

from pathlib import Path

import yaml

_MERGE = "tag:yaml.org,2002:merge"


class RepeatedKeyError(yaml.YAMLError):
    """A key given twice in one mapping (the message is completed by ``read_yaml``)."""

    def __init__(self, key: object, first_line: int, line: int):
        super().__init__(key, first_line, line)
        self.key, self.first_line, self.line = key, first_line, line


class _RefusesRepeatedKeys:
    """Checks each mapping's own keys before PyYAML builds it (a merge key's ``<<: *defaults``
    may be overridden: that is what it is for, so merged keys are not checked)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            lines: dict[object, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = lines.setdefault(key, key_node.start_mark.line + 1)
                except TypeError:  # an unhashable key: PyYAML's own message says so
                    continue
                if first != key_node.start_mark.line + 1:
                    raise RepeatedKeyError(key, first, key_node.start_mark.line + 1)
        return super().construct_mapping(node, deep=deep)


class TypedLoader(_RefusesRepeatedKeys, yaml.SafeLoader):
    """YAML's safe schema (numbers, true/false), for a file whose settings are numbers and
    flags (the KPI rules)."""


class TextLoader(_RefusesRepeatedKeys, yaml.SafeLoader):
    """YAML's safe schema without its numbers, booleans and dates: an id written 00123 stays
    00123 (not the octal number 83), an org unit written 1e3 or 2024-01 stays as written, a
    word written on or off stays a word and a team called No is not False. Nulls (``~``,
    ``null``, ``Null``, ``NULL``, an empty value) and merge keys still work: a null where a
    name is expected is refused by the reader (``NULL_WORDS`` in team_map says how to write
    such a name). A reader that expects a number or a date converts the text itself."""


TextLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers
            if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool",
                           "tag:yaml.org,2002:timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_yaml(path: Path, error: type[ValueError], *, typed: bool = False) -> object:
    """The YAML document in ``path``, read as text (``TextLoader``) or, with ``typed``, with
    YAML's numbers and booleans (``TypedLoader``). Invalid YAML and a repeated key raise
    ``error`` naming the file; a missing file raises FileNotFoundError for the caller to name
    the setting that points at it."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        return yaml.load(text, Loader=TypedLoader if typed else TextLoader)
    except RepeatedKeyError as repeated:
        raise error(f"{path}: key {repeated.key!r} is given twice, on lines {repeated.first_line} and "
                    f"{repeated.line}, in the same mapping: YAML would keep only the second and drop what the "
                    "first says; write it once, its values together") from None
    except yaml.YAMLError as problem:
        raise error(f"{path}: not valid YAML: {problem}") from None
