"""The generator builds small organisations too (psafe-demo --teams 2 or 3 with any seed).

Every team of these has fewer than 8 people, so one PagerDuty service each: the reorg the
generator adds (a service moving between teams half-way) once needed a team with two services
and stopped with a bare StopIteration."""

import pytest

from pipelines.synthetic.org import OrgSpec, generate, write_landing


@pytest.mark.parametrize("teams, seed", [(3, 8), (3, 10), (2, 5), (2, 8), (2, 10)])
def test_a_small_organisation_keeps_its_reorg_with_every_incident_on_its_teams_service(tmp_path, teams, seed):
    org = generate(OrgSpec(seed=seed, n_teams=teams, n_months=12))
    assert len(org.teams) == teams
    [moved] = [s for s in org.services if s.moved_at is not None]
    assert moved.previous_team_key != moved.team_key
    services = {s.pagerduty_id: s for s in org.services}
    # Every incident sits on a service its team owned when the incident was created, before
    # and after the reorg, on both sides of it.
    assert all(services[i.service_id].team_at(i.created_at) == i.team_key for i in org.incidents)
    after = [i for i in org.incidents if i.created_at >= moved.moved_at]
    assert {i.team_key for i in after if i.service_id == moved.pagerduty_id} == {moved.team_key}
    assert any(i.team_key == moved.previous_team_key for i in after)  # the old owner still has incidents
    paths = write_landing(org, tmp_path)
    assert all(path.exists() for path in paths.values())
