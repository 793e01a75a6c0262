"""Anonymity across nights: which wave each response counts in, and which waves close tonight.

Suppression decided afresh every night would leak by difference: a late response, or a
complementary cell published one night and hidden the next, lets two nights' figures be
subtracted (issue 15). So a wave's figures are computed once and frozen:

- A wave is a calendar quarter. A response's is the one the loader gives it
  (``restricted.survey__responses.wave_quarter``: its file's ``wave`` setting, else the quarter
  of the day it was submitted in the file's time zone). It closes ``WAVE_CLOSE_DAYS`` after its
  quarter ends; until then nothing of it is published.
- The first night after it closes, its responses (its *members*) are written to
  ``restricted.survey__wave_members`` (respondent-level, so restricted), then its figures,
  published or suppressed, to ``marts.fct_team_survey_waves`` and ``marts.fct_survey_waves``.
  Later nights never recompute them, whatever arrives.
- A response of a quarter whose wave is already frozen without it (a late export, a response
  restored from a backup, a campaign's export given a wave that has frozen since) counts in the
  next wave not yet frozen, with that wave's members. A response already a member keeps its
  wave, whatever its quarter says on a later night (a wave setting added or changed, the
  quarter's rule changed by an upgrade).
- The members are written before the figures (DuckDB writes one database per transaction,
  and the members may live in another file): a night that stops between the two computes the
  figures from the members it finds, never from a new set of responses. A wave whose figures
  are published but whose members were lost takes its quarter's responses as members again.

Pure pandas, so the rules are tested without Dagster (tests/test_survey_anonymity.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from assets.models.psychometrics import WAVE_CLOSE_DAYS, wave_closes_on


def next_quarter(quarter: date) -> date:
    return (pd.Timestamp(quarter) + pd.offsets.QuarterBegin(startingMonth=1)).date()


@dataclass(frozen=True)
class WavePlan:
    """Tonight's plan: every response's wave (response_id, wave_quarter, is_late), the waves
    that close now, those whose members are written now (``closing``, and published waves
    whose members were lost), those whose figures are computed now (``to_publish``: closing
    ones and any whose figures a stopped night did not write), and the waves still open with
    the day each closes."""

    waves: pd.DataFrame
    closing: list[date]
    members_to_write: list[date]
    to_publish: list[date]
    open_waves: dict[date, date]

    def members(self, waves: list[date]) -> pd.DataFrame:
        return self.waves.loc[self.waves["wave_quarter"].isin(waves), ["response_id", "wave_quarter"]]

    def late_responses(self, wave: date) -> int:
        rows = self.waves[self.waves["wave_quarter"] == wave]
        return int(rows["is_late"].sum())


def plan_waves(responses: pd.DataFrame, members: pd.DataFrame, published: set[date], as_of: date,
               close_after_days: int = WAVE_CLOSE_DAYS) -> WavePlan:
    """``responses``: response_id and the quarter of the wave the loader gives it
    (submission_quarter: stg_survey__responses.wave_quarter);
    ``members``: response_id and wave_quarter of the waves frozen on earlier nights;
    ``published``: the waves whose figures are in the marts."""
    quarters = responses.drop_duplicates("response_id").set_index("response_id")["submission_quarter"].map(
        lambda q: pd.Timestamp(q).date())
    known = dict(zip(members["response_id"], members["wave_quarter"].map(lambda q: pd.Timestamp(q).date())))
    # Figures published without members (the restricted file lost or replaced): the quarter's
    # responses are taken as the members, so none of them is counted a second time elsewhere.
    orphaned = published - set(known.values())
    known.update({r: q for r, q in quarters.items() if q in orphaned and r not in known})
    frozen = set(known.values()) | published
    rows = []
    for response_id, quarter in quarters.items():
        if response_id in known:
            rows.append((response_id, known[response_id], False))
            continue
        wave = quarter
        while wave in frozen:
            wave = next_quarter(wave)
        rows.append((response_id, wave, wave != quarter))
    waves = pd.DataFrame(rows, columns=["response_id", "wave_quarter", "is_late"])
    seen = set(waves["wave_quarter"])
    closing = sorted(w for w in seen - frozen if wave_closes_on(w, close_after_days) <= as_of)
    open_waves = {w: wave_closes_on(w, close_after_days) for w in sorted(seen - frozen) if w not in closing}
    to_publish = sorted(set(closing) | ((set(known.values()) - published) & seen))
    return WavePlan(waves, closing, sorted(set(closing) | (orphaned & seen)), to_publish, open_waves)
