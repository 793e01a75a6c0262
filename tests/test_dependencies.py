"""Declared dependencies equal imported ones: pyproject.toml lists what the code imports, and
nothing else but the packages it names with the reason they are used without an import."""

import ast
import importlib.metadata
import importlib.util
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name as canonical

REPO = Path(__file__).resolve().parents[1]
# The project's packages, and the modules in tests/ (pytest puts the folder on the path: helper
# modules such as hr_roster, and test modules another test imports helpers from).
FIRST_PARTY = {"assets", "pipelines", "benchmarks", "tests", *(path.stem for path in (REPO / "tests").glob("*.py"))}
# Declared but never imported, each for a reason the code does not show as an import.
USED_WITHOUT_IMPORT = {
    "dagster-webserver": "the UI (`dagster dev`, `dagster-webserver`)",
    "dagster-dg-cli": "`dg check defs` and `dg scaffold`",
    "dagster-postgres": "run storage of deploy/dagster.yaml",
    "pyarrow": "polars frames handed to DuckDB and back",
    "openpyxl": "pandas' XLSX writer (engine='openpyxl')",
    "tabulate": "pandas' DataFrame.to_markdown",
    "ipykernel": "the kernel the notebook tests execute in",
    "pytest-xdist": "the suite run on every core (`pytest -n auto`, Makefile)",
}


def _provider(module: str, providers: dict[str, list[str]]) -> str:
    """The distribution providing ``module`` (dotted); for a namespace package several
    distributions share (``dbt``: dbt-core, dbt-adapters, dbt-duckdb), the one whose files
    hold the module itself."""
    candidates = providers[module.split(".")[0]]
    if len(candidates) == 1:
        return candidates[0]
    spec = importlib.util.find_spec(module)
    origin = Path(spec.origin if spec.origin else next(iter(spec.submodule_search_locations))).resolve()
    for name in candidates:
        distribution = importlib.metadata.distribution(name)
        if any(Path(distribution.locate_file(file)).resolve() in (origin, *origin.parents)
               for file in distribution.files or () if file.name in ("__init__.py", origin.name)):
            return name
    raise AssertionError(f"none of {candidates} provides {module}")


def imported_distributions(*folders: str) -> set[str]:
    """Distributions (canonical names) providing the modules imported under ``folders``."""
    providers = importlib.metadata.packages_distributions()
    modules = set()
    for folder in folders:
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules |= {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    modules.add(node.module)
    stdlib = set(sys.stdlib_module_names)
    third_party = {m for m in modules if m.split(".")[0] not in FIRST_PARTY | stdlib}
    unknown = sorted(m for m in third_party if m.split(".")[0] not in providers)
    assert not unknown, f"imported but installed by no distribution: {unknown}"
    return {canonical(_provider(m, providers)) for m in third_party}


def declared(group: str | None = None) -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] if group is None else project["optional-dependencies"][group]
    return {canonical(Requirement(r).name) for r in requirements}


def test_the_product_declares_what_it_imports_and_nothing_else():
    imported = imported_distributions("assets", "pipelines", "benchmarks")
    expected = declared() - set(USED_WITHOUT_IMPORT)
    assert imported - declared() == set(), "imported but not declared in [project] dependencies"
    assert expected - imported == set(), "declared in [project] dependencies but never imported"


def test_the_tests_declare_what_they_import():
    imported = imported_distributions("tests") - declared()
    test_extra = declared("test")
    assert imported - test_extra == set(), "the tests import these, undeclared in the `test` extra"
    assert test_extra - imported - set(USED_WITHOUT_IMPORT) == set(), "declared in `test` but never imported"
