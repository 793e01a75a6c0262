"""HR headcount snapshots and terminations of the synthetic organisation."""

from __future__ import annotations

import math
from datetime import timedelta

from pipelines.synthetic.model import add_months, logistic


def generate_hr(rng, spec, truth, teams, lagged_safety) -> tuple[list[dict], list[dict]]:
    """Monthly headcount snapshots and terminations; leavers are replaced the next month."""
    snapshots: list[dict] = []
    terminations: list[dict] = []
    next_employee = 0
    roster: dict[str, list[tuple[str, str, bool]]] = {}
    roles = ("engineer", "senior engineer", "sre", "manager", "analyst")
    for t in teams:
        roster[t.key] = []
        for _ in range(t.headcount):
            next_employee += 1
            roster[t.key].append((f"E{next_employee:06d}", str(rng.choice(roles)), bool(rng.random() < 0.2)))
    for month in range(spec.n_months):
        month_start = add_months(spec.start, month)
        for t in teams:
            p_vol = logistic(math.log(0.012 / 0.988) + truth.voluntary_attrition_log_odds_per_sd * lagged_safety(t.key, month))
            stayers = []
            for employee_id, role, critical in roster[t.key]:
                snapshots.append({
                    "snapshot_date": month_start.date().isoformat(),
                    "employee_id": employee_id,
                    "org_unit": t.hr_org_unit,
                    "role": role,
                    "critical_role": critical,
                })
                u = rng.random()
                if u < p_vol + 0.003:
                    day = int(rng.integers(1, 28))
                    terminations.append({
                        "employee_id": employee_id,
                        "org_unit": t.hr_org_unit,
                        "role": role,
                        "critical_role": critical,
                        "termination_date": (month_start + timedelta(days=day)).date().isoformat(),
                        "voluntary": bool(u < p_vol),
                    })
                    next_employee += 1
                    stayers.append((f"E{next_employee:06d}", role, critical))
                else:
                    stayers.append((employee_id, role, critical))
            roster[t.key] = stayers
    return snapshots, terminations

