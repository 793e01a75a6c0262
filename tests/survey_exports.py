"""Writing survey exports in tests: a generic CSV of the psychological-safety items."""

import csv

import numpy as np

from assets.landing.item_sets import PSYCHOLOGICAL_SAFETY

SAFETY_ITEMS = [item.text for item in PSYCHOLOGICAL_SAFETY.items]
SAFETY_REVERSED = {item.number for item in PSYCHOLOGICAL_SAFETY.items if item.reverse_keyed}


def survey_file(path, responses: list[tuple[str, str, str]], rng: np.random.Generator) -> None:
    """A generic survey export: (response_id, team, submitted_at) each with a person's level
    and items scattered around it (reverse-keyed items answered the other way)."""
    rows = [["response_id", "submitted_at", "team", *SAFETY_ITEMS]]
    for response_id, team, submitted_at in responses:
        level = rng.integers(2, 7)
        answers = np.clip(level + rng.integers(-1, 2, size=7), 1, 7)
        rows.append([response_id, submitted_at, team,
                     *[8 - a if number in SAFETY_REVERSED else a for number, a in enumerate(answers, start=1)]])
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
