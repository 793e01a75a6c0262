"""The survey scales the loader recognises, as data: each item set names its items, their
keying and the texts that identify them in an export's headers. A scale is added by adding
an ``ItemSet`` here; the mapping file adds other wordings (translations, a tool's edits)
and says which items a tool already reverse-scored, per item set, without code changes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    number: int
    text: str
    reverse_keyed: bool


@dataclass(frozen=True)
class ItemSet:
    key: str
    title: str
    items: tuple[Item, ...]

    def item(self, number: int) -> Item:
        return self.items[number - 1]

    @property
    def reverse_keyed(self) -> tuple[int, ...]:
        return tuple(item.number for item in self.items if item.reverse_keyed)


# Edmondson (1999), Administrative Science Quarterly 44(2): team psychological safety; the
# negatively worded items are reverse-keyed (score = K + 1 - answer).
PSYCHOLOGICAL_SAFETY = ItemSet(
    key="psychological_safety",
    title="Team psychological safety (Edmondson 1999)",
    items=tuple(Item(number, text, reverse) for number, (text, reverse) in enumerate((
        ("If you make a mistake on this team, it is often held against you", True),
        ("Members of this team are able to bring up problems and tough issues", False),
        ("People on this team sometimes reject others for being different", True),
        ("It is safe to take a risk on this team", False),
        ("It is difficult to ask other members of this team for help", True),
        ("No one on this team would deliberately act in a way that undermines my efforts", False),
        ("Working with members of this team, my unique skills and talents are valued and utilized", False),
    ), start=1)),
)

# The item sets loaded into restricted.survey__responses (item_no is the item's number).
ITEM_SETS: dict[str, ItemSet] = {PSYCHOLOGICAL_SAFETY.key: PSYCHOLOGICAL_SAFETY}
