"""PagerDuty incidents of the synthetic organisation."""

from __future__ import annotations

import math
from datetime import timedelta

from pipelines.synthetic.model import Incident, Service, add_months, pd_id


def generate_incidents(rng, spec, truth, teams, services_by_team, users_by_team, size_z_by_team,
               ttr_team_effect, lagged_safety, lagged_accountability, as_of) -> list[Incident]:
    incidents: list[Incident] = []
    # Seven-character ids collide by chance once there are ~100,000 of them: redraw.
    taken: set[str] = set()
    for month in range(spec.n_months):
        month_start = add_months(spec.start, month)
        month_seconds = (add_months(spec.start, month + 1) - month_start).total_seconds()
        for t in teams:
            s, a = lagged_safety(t.key, month), lagged_accountability(t.key, month)
            rate = t.headcount * spec.incidents_per_head_month * math.exp(
                truth.incident_rate_log_per_sd * s
            )
            for _ in range(rng.poisson(rate)):
                created = month_start + timedelta(seconds=float(rng.uniform(0, month_seconds)))
                created = created.replace(microsecond=0)
                log_ttr = (
                    math.log(3600)
                    + truth.log_ttr_per_sd * s
                    + truth.log_ttr_per_sd_accountability * a
                    + truth.log_ttr_per_sd2_safety_x_accountability * s * a
                    + truth.log_ttr_per_sd_log_headcount * size_z_by_team[t.key]
                    + ttr_team_effect[t.key]
                    + rng.normal(0, truth.log_ttr_incident_sd)
                )
                ttr = max(30.0, math.exp(log_ttr))
                auto_resolved = bool(rng.random() < 0.05)
                acknowledged = not auto_resolved and rng.random() < 0.95
                tta = min(ttr * 0.9, math.exp(math.log(300) + truth.log_tta_per_sd * s + rng.normal(0, 0.8)))
                onset = None
                if rng.random() < 0.6:
                    ttd = math.exp(math.log(600) + truth.log_ttd_per_sd * s + rng.normal(0, 0.8))
                    onset = (created - timedelta(seconds=ttd)).replace(microsecond=0)
                resolved = (created + timedelta(seconds=ttr)).replace(microsecond=0)
                acked_at = (created + timedelta(seconds=max(1.0, tta))).replace(microsecond=0)
                responder = users_by_team[t.key][int(rng.integers(len(users_by_team[t.key])))]
                service = services_by_team[t.key][int(rng.integers(len(services_by_team[t.key])))]
                incident_id = pd_id(rng)
                while incident_id in taken:
                    incident_id = pd_id(rng)
                taken.add(incident_id)
                incidents.append(
                    Incident(
                        pagerduty_id=incident_id,
                        number=0,
                        service_id=service.pagerduty_id,
                        team_key=t.key,
                        title=f"{service.name}: {rng.choice(['latency', 'errors', 'saturation', 'outage'])}",
                        urgency="high" if rng.random() < 0.7 else "low",
                        created_at=created,
                        onset_at=onset,
                        acknowledged_at=acked_at if acknowledged and acked_at < as_of else None,
                        acknowledged_by=responder.pagerduty_id if acknowledged else None,
                        resolved_at=resolved if resolved < as_of else None,
                        auto_resolved=auto_resolved,
                    )
                )
    incidents.sort(key=lambda i: i.created_at)
    for number, incident in enumerate(incidents, start=1):
        incident.number = number
    return incidents



def add_ingestion_fidelity(rng, spec, teams, services, incidents, as_of) -> None:
    """What a real account adds on top of clean timelines, drawn from a separate random
    stream so the causal model's draws (and so the ground truth) stay as they were:

    - a reorg: one service moves to another team half-way through the history, so its
      current PagerDuty team is wrong for its earlier incidents;
    - a test service whose incidents must be excluded;
    - where the onset is recorded: the "impact started" custom field, the first alert's
      payload timestamp, or both (the earliest counts);
    - reopened incidents (resolved, triggered again, resolved for good) and incidents
      merged into an earlier one of the same team.
    """
    by_team: dict[str, list] = {t.key: [s for s in services if s.team_key == t.key] for t in teams}
    source_team = next((t for t in teams if len(by_team[t.key]) >= 2), None)
    if source_team is None:
        # A small organisation where every team runs one service (fewer than 8 people each):
        # the largest team opens a second one at the reorg, which takes over the incidents of the
        # service it hands on, so the reorg is still there to be handled.
        source_team = max(teams, key=lambda t: t.headcount)
        opened = Service(pd_id(rng), f"{source_team.name} service 2", source_team.key, pd_id(rng))
        services.append(opened)
        by_team[source_team.key].append(opened)
    target_team = next(t for t in teams if t.key != source_team.key)
    moved = by_team[source_team.key][0]
    moved_at = add_months(spec.start, spec.n_months // 2)
    moved.previous_team_key, moved.team_key, moved.moved_at = source_team.key, target_team.key, moved_at
    stay = by_team[source_team.key][1]
    test_service = Service(pd_id(rng), f"{source_team.name} synthetic checks (test)", source_team.key, pd_id(rng),
                           is_test=True)
    services.append(test_service)

    last_by_team: dict[str, Incident] = {}
    for index, incident in enumerate(incidents):
        # The moved service's incidents after the reorg belong to its new team.
        if incident.service_id == moved.pagerduty_id and incident.created_at >= moved_at:
            incident.service_id = stay.pagerduty_id
        elif incident.team_key == target_team.key and incident.created_at >= moved_at and index % 2 == 0:
            incident.service_id = moved.pagerduty_id
        elif incident.team_key == source_team.key and rng.random() < 0.05:
            incident.service_id = test_service.pagerduty_id

        if incident.onset_at is not None:
            where = rng.random()
            if where < 0.5 or where >= 0.8:
                incident.impact_started_at = incident.onset_at
                incident.impact_recorded_at = incident.created_at + timedelta(seconds=int(rng.integers(60, 900)))
                if incident.resolved_at is not None and incident.impact_recorded_at >= incident.resolved_at:
                    incident.impact_recorded_at = incident.created_at + (incident.resolved_at - incident.created_at) / 2
            if where >= 0.5:
                lag = 0 if where < 0.8 else int(rng.integers(30, 600))
                incident.alert_timestamp = incident.onset_at + timedelta(seconds=lag)

        previous = last_by_team.get(incident.team_key)
        last_by_team[incident.team_key] = incident
        if incident.resolved_at is None or incident.auto_resolved:
            continue
        draw = rng.random()
        if draw < 0.02 and previous is not None and previous.merged_into is None:
            merged_at = incident.created_at + timedelta(seconds=int(rng.integers(60, 600)))
            if merged_at < incident.resolved_at:
                incident.merged_into = previous.pagerduty_id
                incident.resolved_at = merged_at
                if incident.acknowledged_at is not None and incident.acknowledged_at >= merged_at:
                    incident.acknowledged_at = None
                if incident.impact_recorded_at is not None and incident.impact_recorded_at >= merged_at:
                    incident.impact_recorded_at = incident.impact_started_at = None
        elif draw < 0.05:
            start = incident.acknowledged_at or incident.created_at
            span = (incident.resolved_at - start).total_seconds()
            if span >= 60:
                incident.first_resolved_at = start + timedelta(seconds=int(span * 0.3))
                incident.reopened_at = start + timedelta(seconds=int(span * 0.6))
                if incident.impact_recorded_at is not None and incident.impact_recorded_at >= incident.first_resolved_at:
                    incident.impact_recorded_at = incident.first_resolved_at - timedelta(seconds=1)
