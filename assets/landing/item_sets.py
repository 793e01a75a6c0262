"""The survey scales the loader recognises, as data: each item set names its items, their
keying and the texts that identify them in an export's headers. A scale is added by adding
an ``ItemSet`` here; the mapping file adds other wordings (translations, a tool's edits, your
licensed instrument's own wording) and says which items a tool already reverse-scored, per
item set, without code changes.

Psychological safety is required in every survey export. The other scales are optional: a
file that has none of a scale's items simply did not measure it; a file with some of them but
not all stops the load naming the missing ones (a wording the mapping file should alias).

Where the items come from:

- Psychological safety: Edmondson (1999), the published seven items.
- Accountability (Edmondson's second axis, "motivation and accountability" in Edmondson
  2008 and *Teaming* 2012, "performance standards" in *The Fearless Organization* 2018; her
  four zones are defined on it): Edmondson publishes no item wording. The four items are the
  team-level accountability items piloted by Stewart, Snyder & Kou (2021, "We hold ourselves
  accountable: a relational view of team accountability", Journal of Business Ethics 183(3),
  691-712, open access, Table 7), adapted there from Ogden et al. (2006) and Mero et al.
  (2014). Their final scale kept a subset; if you use it (or another), map your wording.
- Clark's four stages (inclusion, learner, contributor and challenger safety; Clark 2020,
  *The 4 Stages of Psychological Safety*): the instrument is LeaderFactor's and not
  published. The items here are EXAMPLE WORDINGS written for this project (``example_wording``),
  three per stage, one reverse-keyed, so the pipeline runs end to end; a survey that measures
  the stages with licensed items maps its own wording to these item numbers as aliases.
"""

from __future__ import annotations

from dataclasses import dataclass

# The Likert scales (K points) an export's answers may use, and the one assumed when no setting
# names it (export_mapping.yml, the landing resource, PSAFE_SURVEY_SCALE_POINTS).
SCALE_POINTS = (5, 7)
DEFAULT_SCALE_POINTS = 7


@dataclass(frozen=True)
class Item:
    number: int
    text: str
    reverse_keyed: bool


@dataclass(frozen=True)
class ItemSet:
    """One scale. ``name`` is how the report names it ("accountability"); ``min_answered`` the
    answered items a person score needs; ``family`` groups scales read together (Clark's
    stages, in their order); ``example_wording``: the shipped texts are examples to map your
    own survey's wording onto, not a published instrument."""

    key: str
    title: str
    name: str
    items: tuple[Item, ...]
    min_answered: int
    required: bool = False
    family: str = ""
    example_wording: bool = False

    def item(self, number: int) -> Item:
        return self.items[number - 1]

    @property
    def reverse_keyed(self) -> tuple[int, ...]:
        return tuple(item.number for item in self.items if item.reverse_keyed)


def _items(*texts: tuple[str, bool]) -> tuple[Item, ...]:
    return tuple(Item(number, text, reverse) for number, (text, reverse) in enumerate(texts, start=1))


# Edmondson (1999), Administrative Science Quarterly 44(2): team psychological safety; the
# negatively worded items are reverse-keyed (score = K + 1 - answer).
PSYCHOLOGICAL_SAFETY = ItemSet(
    key="psychological_safety",
    title="Team psychological safety (Edmondson 1999)",
    name="psychological safety",
    items=_items(
        ("If you make a mistake on this team, it is often held against you", True),
        ("Members of this team are able to bring up problems and tough issues", False),
        ("People on this team sometimes reject others for being different", True),
        ("It is safe to take a risk on this team", False),
        ("It is difficult to ask other members of this team for help", True),
        ("No one on this team would deliberately act in a way that undermines my efforts", False),
        ("Working with members of this team, my unique skills and talents are valued and utilized", False),
    ),
    min_answered=5,
    required=True,
)

# Team accountability for performance: items piloted by Stewart, Snyder & Kou (2021), Table 7.
ACCOUNTABILITY = ItemSet(
    key="accountability",
    title="Team accountability for performance (items piloted by Stewart, Snyder & Kou 2021)",
    name="accountability",
    items=_items(
        ("We are accountable to each other as a team for our performance", False),
        ("We frequently check how well we are doing against our team targets", False),
        ("We monitor our team performance against our objectives", False),
        ("We are required to justify or explain our performance relative to team goals", False),
    ),
    min_answered=3,
)

CLARK_STAGES = "clark_stages"
_CLARK_TITLE = "Clark (2020), {stage}: example wording, map your instrument's items"

# Clark's four stages in their order; each stage builds on the ones before it.
CLARK_INCLUSION, CLARK_LEARNER, CLARK_CONTRIBUTOR, CLARK_CHALLENGER = (
    ItemSet(key=f"clark_{stage.split()[0]}", title=_CLARK_TITLE.format(stage=stage), name=stage, items=_items(*items),
            min_answered=2, family=CLARK_STAGES, example_wording=True)
    for stage, items in (
        ("inclusion safety", (
            ("I feel accepted as a member of this team for who I am", False),
            ("People on this team treat me with respect whatever my role or background", False),
            ("I feel left out of this team's conversations", True))),
        ("learner safety", (
            ("I can ask questions on this team without being made to feel ignorant", False),
            ("When I get something wrong while learning, this team helps me learn from it", False),
            ("I hesitate to admit what I do not know on this team", True))),
        ("contributor safety", (
            ("This team trusts me to do my work with a fair degree of independence", False),
            ("My ideas for how we do our work are heard and used on this team", False),
            ("My contributions to this team go unnoticed", True))),
        ("challenger safety", (
            ("I can challenge the way this team does things without fear of consequences", False),
            ("I can disagree with my manager and put forward a different view", False),
            ("People on this team keep quiet about problems with the way things are done", True))),
    )
)

# The item sets loaded into restricted.survey__responses (item_set is the key, item_no the
# item's number), in the order the report lists them.
ITEM_SETS: dict[str, ItemSet] = {s.key: s for s in (
    PSYCHOLOGICAL_SAFETY, ACCOUNTABILITY, CLARK_INCLUSION, CLARK_LEARNER, CLARK_CONTRIBUTOR, CLARK_CHALLENGER)}
STAGES: tuple[ItemSet, ...] = tuple(s for s in ITEM_SETS.values() if s.family == CLARK_STAGES)
