"""The Dagster definitions load and wire what the README promises."""

import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from assets.models import inputs
from pipelines.definitions import defs


def test_definitions_load_with_the_whole_asset_graph():
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {
        "raw/pagerduty__incidents", "raw/pagerduty__log_entries", "raw/jira__issues",
        "restricted/survey__responses", "raw/hr__headcount", "raw/hr__terminations",
        "marts/mart_team_month", "models/kpi_safety_effects", "models/kpi_correlations",
    } <= keys
    nightly = definitions.resolve_job_def("nightly")
    # Everything but the Qualtrics export, which has its own job (it needs Qualtrics configured).
    qualtrics = {"landing/qualtrics__responses"}
    assert {k.to_user_string() for k in nightly.asset_layer.selected_asset_keys} == keys - qualtrics
    sync = definitions.resolve_job_def("qualtrics_sync")
    assert {k.to_user_string() for k in sync.asset_layer.selected_asset_keys} == qualtrics

    def ancestors(key: dg.AssetKey) -> set[str]:
        parents = graph.get(key).parent_keys
        return {p.to_user_string() for p in parents}.union(*(ancestors(p) for p in parents))

    # The results table's lineage reaches back to every source it combines.
    assert {
        "raw/pagerduty__log_entries", "raw/pagerduty__services", "restricted/survey__responses",
        "raw/hr__headcount", "raw/config__team_map",
    } <= ancestors(dg.AssetKey(["models", "kpi_safety_effects"]))


def test_every_sql_model_states_its_grain():
    graph = defs().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        if graph.get(key).group_name in ("staging", "intermediate", "restricted", "marts"):
            description = graph.get(key).description or ""
            assert "grain" in description.lower(), key


@pytest.mark.slow
def test_dg_check_defs_passes():
    dg_cli = Path(sys.executable).parent / "dg"
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "VIRTUAL_ENV": str(Path(sys.executable).parents[1])}
    done = subprocess.run([str(dg_cli), "check", "defs"], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All definitions loaded successfully" in done.stdout + done.stderr
    # The code location has one name, workspace.yaml's and [tool.dg.project]'s.
    validated = subprocess.run([str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w",
                                "workspace.yaml"], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "does not match the name" not in validated.stdout + validated.stderr


@pytest.mark.slow
def test_dg_scaffolds_into_a_folder_the_definitions_load(tmp_path):
    """`[tool.dg]` names pipelines/defs, where `dg scaffold defs` writes and from which
    pipelines/definitions.py loads: a scaffolded asset appears in `dg list defs`."""
    repo = Path(__file__).resolve().parents[1]
    tracked = subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True, check=True).stdout
    for name in tracked.splitlines():
        if name.startswith(("pipelines/", "assets/", "sql/", "config/")) or name == "pyproject.toml":
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_bytes((repo / name).read_bytes())
    dg_cli = Path(sys.executable).parent / "dg"
    env = {**os.environ, "VIRTUAL_ENV": str(Path(sys.executable).parents[1]), "PYTHONPATH": str(tmp_path)}
    scaffold = subprocess.run([str(dg_cli), "scaffold", "defs", "dagster.asset", "scaffolded_probe.py"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert scaffold.returncode == 0, scaffold.stdout + scaffold.stderr
    assert (tmp_path / "pipelines" / "defs" / "scaffolded_probe.py").is_file()
    listed = subprocess.run([str(dg_cli), "list", "defs", "--json"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "scaffolded_probe" in listed.stdout


def test_every_mart_the_model_inputs_read_gates_the_results_table():
    # A blocking check on a table the models read stops them only if the table is a dependency.
    read = {f"{schema}/{name}" for sql in (getattr(inputs, n) for n in dir(inputs) if n.endswith("_SQL"))
            for schema, name in re.findall(r"\b(marts|intermediate)\.(\w+)", sql)}
    assert {"marts/fct_team_month_survey_scores", "intermediate/int_team_survey_waves"} <= read
    graph = defs().resolve_asset_graph()
    parents = {p.to_user_string() for p in graph.get(dg.AssetKey(["models", "kpi_safety_effects"])).parent_keys}
    assert read <= parents
