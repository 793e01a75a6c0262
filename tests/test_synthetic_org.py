"""The synthetic organisation generator: deterministic, validated, and carrying its truth."""

import csv
import json
from datetime import date, timedelta

import numpy as np
import pytest

from assets.landing.identity import read_identity_map
from assets.landing.item_sets import ACCOUNTABILITY, STAGES
from assets.landing.team_map import read_team_map
from pipelines.synthetic.learning import REVIEW_LABELS, REVIEW_TYPE, counted
from pipelines.synthetic.org import OrgSpec, generate, write_landing
from pipelines.synthetic.people import JUNIOR_PREFIX
from pipelines.synthetic.survey import SURVEY_ITEMS


def test_same_spec_gives_the_same_organisation():
    a, b = generate(OrgSpec(seed=5, n_teams=5, n_months=6)), generate(OrgSpec(seed=5, n_teams=5, n_months=6))
    assert a.incidents == b.incidents and a.tickets == b.tickets and a.survey_rows == b.survey_rows
    c = generate(OrgSpec(seed=6, n_teams=5, n_months=6))
    assert a.incidents != c.incidents


@pytest.mark.parametrize(
    "spec, message",
    [
        (OrgSpec(n_teams=1), "at least 2 teams"),
        (OrgSpec(n_months=3), "6 months"),
        (OrgSpec(start=date(2024, 2, 1)), "calendar quarter"),
        (OrgSpec(n_teams=500), "at most"),
    ],
)
def test_bad_specs_are_refused_clearly(spec, message):
    with pytest.raises(ValueError, match=message):
        generate(spec)


def test_identifiers_are_unique():
    org = generate(OrgSpec(seed=2, n_teams=40, n_months=6))
    assert len({t.jira_project for t in org.teams}) == 40
    assert len({i.pagerduty_id for i in org.incidents}) == len(org.incidents)
    assert len({t.key for t in org.tickets}) == len(org.tickets)


def test_generated_kpis_follow_the_stated_effects():
    """Sanity of the generator itself: regress the generated outcomes on the latent safety."""
    org = generate(OrgSpec(seed=9, n_teams=60, n_months=24))
    lagged = {(t, q + 1): s for (t, q), s in org.team_quarter_safety.items()}
    safety, log_ttr = [], []
    for incident in org.incidents:
        quarter = (incident.created_at.month - 1) // 3 + 4 * (incident.created_at.year - 2024)
        if incident.resolved_at and (incident.team_key, quarter) in lagged:
            safety.append(lagged[(incident.team_key, quarter)])
            log_ttr.append(np.log((incident.resolved_at - incident.created_at).total_seconds()))
    slope = np.polyfit(safety, log_ttr, 1)[0]
    # Confounded by team size (bigger teams: less safe, slower), so the raw slope is steeper.
    assert -0.5 < slope < org.truth.log_ttr_per_sd + 0.05


def test_landing_files_look_like_the_exports(tmp_path):
    org = generate(OrgSpec(seed=3, n_teams=4, n_months=6))
    paths = write_landing(org, tmp_path)
    with paths["survey"].open() as fh:
        header = next(csv.reader(fh))
    assert header[:3] == ["response_id", "submitted_at", "team"]
    # Edmondson's seven, then the optional scales the organisation asks by default.
    assert header[3:] == [text for text, _ in SURVEY_ITEMS] + [
        item.text for item_set in (ACCOUNTABILITY, *STAGES) for item in item_set.items]
    rows = read_team_map(paths["team_map"])
    assert {r["team"] for r in rows} == {t.name for t in org.teams}
    assert {(r["source"], r["identifier"]) for r in rows if r["team"] == org.teams[0].name} == {
        ("pagerduty_team", org.teams[0].name), ("jira_project", org.teams[0].jira_project),
        ("jira_component", f"OPS/{org.teams[0].name}"), ("hr_org_unit", org.teams[0].hr_org_unit), ("survey_group", org.teams[0].name),
    }
    truth = json.loads(paths["ground_truth"].read_text())
    assert truth["effects"]["log_ttr_per_sd"] == -0.25
    assert truth["spec"]["start"] == "2024-01-01"


def test_repeats_reviews_and_the_identity_map_follow_the_stated_rules(tmp_path):
    """docs/ground_truth.md, learning from errors and speaking up: what the KPI rules must find."""
    org = generate(OrgSpec(seed=3, n_teams=6, n_months=9))
    by_id = {incident.pagerduty_id: incident for incident in org.incidents}
    repeats = [incident for incident in counted(org) if incident.repeat_of]
    assert len(repeats) > 10
    for incident in repeats:
        source = by_id[incident.repeat_of]
        assert source.service_id == incident.service_id
        assert source.resolved_at < incident.created_at <= source.resolved_at + timedelta(days=30)
        same_title = incident.title.rpartition(" (")[0] == source.title.rpartition(" (")[0]
        assert incident.dedup_key == source.dedup_key or same_title
    # Every other incident has an alert key of its own.
    keys = [incident.dedup_key for incident in counted(org) if not incident.repeat_of]
    assert len(set(keys)) == len(keys)

    reviewed = [incident for incident in counted(org) if incident.review_created_at]
    assert reviewed and all(i.urgency == "high" and i.resolved_at < i.review_created_at < i.review_done_at
                            for i in reviewed)
    reviews = [t for t in org.tickets if t.issue_type == REVIEW_TYPE or set(t.labels) & set(REVIEW_LABELS)]
    assert len(reviews) + len(org.incident_reviews) == sum(i.review_created_at < org.as_of for i in reviewed)
    assert {t.parent_key for t in org.tickets if t.parent_key} <= {t.key for t in reviews}

    entries = read_identity_map(write_landing(org, tmp_path)["identity_map"])
    mapped = {person.employee_id for person in org.people if person.mapped_by}
    assert {row["employee_id"] for row in entries} == mapped and 0.85 < len(mapped) / len(org.people) < 1
    juniors = {row["employee_id"] for row in org.headcount_rows if row["role"].startswith(JUNIOR_PREFIX)}
    assert 0.1 < len(juniors) / len(org.people) < 0.5
