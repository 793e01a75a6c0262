"""PagerDuty incidents of the synthetic organisation."""

from __future__ import annotations

import math
from datetime import timedelta

from pipelines.synthetic.model import Incident, add_months, pd_id


def generate_incidents(rng, spec, truth, teams, services_by_team, users_by_team, size_z_by_team,
               ttr_team_effect, lagged_safety, as_of) -> list[Incident]:
    incidents: list[Incident] = []
    for month in range(spec.n_months):
        month_start = add_months(spec.start, month)
        month_seconds = (add_months(spec.start, month + 1) - month_start).total_seconds()
        for t in teams:
            s = lagged_safety(t.key, month)
            rate = t.headcount * spec.incidents_per_head_month * math.exp(
                truth.incident_rate_log_per_sd * s
            )
            for _ in range(rng.poisson(rate)):
                created = month_start + timedelta(seconds=float(rng.uniform(0, month_seconds)))
                created = created.replace(microsecond=0)
                log_ttr = (
                    math.log(3600)
                    + truth.log_ttr_per_sd * s
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
                incidents.append(
                    Incident(
                        pagerduty_id=pd_id(rng),
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

