"""marts.mart_team_month carries a team's last reportable survey wave forward for at most two
quarters (the next quarter and the one after); an older wave leaves the team-month without
safety, flagged stale so coverage can count it. Fixture rows in an in-memory DuckDB."""

from datetime import date

TEAM_MAP = [
    {"team": team, "source": "hr_org_unit", "identifier": unit}
    for team, unit in (("Payments", "OU-1"), ("Search", "OU-2"))
]


def cell(team: str, quarter: date, mean: float | None) -> dict:
    """A team-wave of safety; None: suppressed (fewer than 5 respondents)."""
    return {"team": team, "wave_quarter": quarter, "score_mean": mean}


def test_a_wave_older_than_two_quarters_leaves_the_team_month_without_safety(warehouse):
    warehouse.raw_rows("config__team_map", TEAM_MAP)
    # Payments answers once (2024 Q1), then every later wave is suppressed; Search's 2024 Q3
    # wave is reportable, its 2024 Q4 wave suppressed.
    warehouse.survey_cells([
        cell("Payments", date(2024, 1, 1), 5.0),
        *(cell("Payments", date(2024, month, 1), None) for month in (4, 7, 10)),
        cell("Search", date(2024, 7, 1), 4.0),
        cell("Search", date(2024, 10, 1), None),
    ])
    warehouse.raw_rows("hr__headcount", [
        {"snapshot_date": f"{year}-{month:02d}-01", "employee_id": f"{unit}-E{e}", "org_unit": unit,
         "role": "engineer", "critical_role": "false"}
        for year, months in ((2024, range(1, 13)), (2025, range(1, 7))) for month in months
        for unit in ("OU-1", "OU-2") for e in range(5)
    ])
    warehouse.raw_rows("hr__terminations", [
        {"employee_id": "OU-1-E0", "org_unit": "OU-1", "role": "engineer", "critical_role": "false",
         "termination_date": "2024-05-20", "voluntary": "false"},
    ])
    warehouse.build_team_month()
    rows = warehouse.rows(
        "select team, period_month, safety_lagged, safety_wave_quarter, is_safety_wave_stale "
        "from marts.mart_team_month order by team, period_month")
    by_quarter = {(r["team"], r["period_month"].year, (r["period_month"].month - 1) // 3 + 1):
                  (r["safety_lagged"], r["safety_wave_quarter"], r["is_safety_wave_stale"]) for r in rows}
    q1_2024 = date(2024, 1, 1)
    assert by_quarter["Payments", 2024, 1] == (None, None, False)  # no earlier wave: missing, not stale
    assert by_quarter["Payments", 2024, 2] == (5.0, q1_2024, False)  # the next quarter
    assert by_quarter["Payments", 2024, 3] == (5.0, q1_2024, False)  # two quarters on: still carried
    assert by_quarter["Payments", 2024, 4] == (None, None, True)  # three quarters old: stale
    assert by_quarter["Payments", 2025, 1] == (None, None, True)
    assert by_quarter["Payments", 2025, 2] == (None, None, True)
    assert by_quarter["Search", 2024, 3] == (None, None, False)
    assert by_quarter["Search", 2024, 4] == (4.0, date(2024, 7, 1), False)
    assert by_quarter["Search", 2025, 1] == (4.0, date(2024, 7, 1), False)  # Q4 suppressed: Q3 carried
    assert by_quarter["Search", 2025, 2] == (None, None, True)
    # Every month of a quarter reads the same wave; stale months are counted, not dropped.
    assert len(rows) == 2 * 18
    assert sum(r["is_safety_wave_stale"] for r in rows) == 9 + 3
