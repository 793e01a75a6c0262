"""Root conftest: its presence makes pytest put the repository root on sys.path, so tests can
import ``benchmarks`` (scripts run from the clone, not part of the installed package)."""
