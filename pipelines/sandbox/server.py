"""Serve a synthetic organisation as PagerDuty and Jira Cloud over HTTPS on loopback.

    with Sandbox(org, pagerduty_token="...", jira_email="...", jira_token="...") as sandbox:
        RestApiV2Client(token, base_url=sandbox.pagerduty_url, verify=sandbox.ca_bundle_path)
        JIRA(server=sandbox.jira_url, basic_auth=(email, token),
             options={"rest_api_version": "3", "verify": sandbox.ca_bundle_path})
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from pipelines.sandbox.faults import Fault
from pipelines.sandbox.jira import JiraApi
from pipelines.sandbox.pagerduty import PagerDutyApi
from pipelines.sandbox.qualtrics import QualtricsApi
from pipelines.sandbox.tls import make_server_tls
from pipelines.synthetic.learning import write_site_kpi_rules
from pipelines.synthetic.model import Organisation


# A kept-alive connection idle this long is closed (the clients open another when they need it).
KEEP_ALIVE_SECONDS = 5
# How often the server looks for expired connections, and so how long stop() waits for it to
# notice (cheroot's default, half a second, made every test's sandbox take 1.5 s to stop).
POLL_SECONDS = 0.05
# stop() waits this long for requests still being answered.
SHUTDOWN_SECONDS = 1

_log = logging.getLogger(__name__)


def _log_server_error(msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
    """cheroot's error log through logging, at the level cheroot gives each message (it would
    write every one to stderr, a client that hung up included)."""
    _log.log(level, msg, exc_info=traceback)


def _prepare_in_daemon_thread(server: wsgi.Server) -> None:
    """``server.prepare()`` (bind, listen, start the worker threads) from a daemon thread, so
    the workers it starts are daemon threads too (a thread is a daemon when the thread that made
    it is): a sandbox left running, or one whose stop() was cut short, does not keep its process
    from exiting."""
    failures: list[BaseException] = []

    def prepare() -> None:
        try:
            server.prepare()
        except BaseException as error:  # re-raised in the caller's thread
            failures.append(error)

    thread = threading.Thread(target=prepare, name="sandbox-prepare", daemon=True)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


class Sandbox:
    """HTTPS servers (PagerDuty at the root, Jira under /rest/api/3, Qualtrics under /API/v3)
    in daemon threads,
    sharing a throwaway certificate authority. ``request_counts`` counts requests by
    service, method and OpenAPI path, e.g. ``"pagerduty GET /incidents/{id}"``.

    ``as_of`` serves the organisation as it stood at an earlier moment than its cut-off;
    ``set_as_of`` moves time forward (or back) while running. ``inject_fault`` arms the
    faults of ``pipelines.sandbox.faults`` (429 storms, 5xx, timeouts, truncated or
    replayed pages, expired tokens). ``variations`` names record shapes to serve beyond the
    plain ones (``PagerDutyApi.VARIATIONS``, ``JiraApi.VARIATIONS``).
    """

    def __init__(
        self,
        org: Organisation,
        *,
        pagerduty_token: str = "sandbox-pd-token",
        jira_email: str = "sandbox@example.com",
        jira_token: str = "sandbox-jira-token",
        qualtrics_token: str = "sandbox-qualtrics-token",
        host: str = "127.0.0.1",
        pagerduty_port: int = 0,
        jira_port: int = 0,
        rate_limit_per_minute: int = 960,
        as_of: datetime | None = None,
        variations: Iterable[str] = (),
    ):
        unknown = set(variations) - set(PagerDutyApi.VARIATIONS) - set(JiraApi.VARIATIONS)
        if unknown:
            raise ValueError(f"unknown variations {sorted(unknown)}; the sandbox serves "
                             f"{', '.join([*PagerDutyApi.VARIATIONS, *JiraApi.VARIATIONS])}")
        self.variations = frozenset(variations)
        if rate_limit_per_minute < 1:
            raise ValueError(f"rate_limit_per_minute must be at least 1, not {rate_limit_per_minute}")
        self.org = org
        self.pagerduty_token = pagerduty_token
        self.jira_email = jira_email
        self.jira_token = jira_token
        self.qualtrics_token = qualtrics_token
        self.host = host
        self.rate_limit_per_minute = rate_limit_per_minute
        if as_of is not None and as_of > org.as_of:
            raise ValueError(f"as_of {as_of:%Y-%m-%d %H:%M} is after the organisation's cut-off {org.as_of:%Y-%m-%d}")
        self.as_of = as_of or org.as_of
        self._apps: dict = {}
        self._requested_ports = {"pagerduty": pagerduty_port, "jira": jira_port, "qualtrics": 0}
        self.request_counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        self._tls_dir: Path | None = None
        self._ca_bundle_path: Path | None = None
        self._kpi_rules_path: Path | None = None
        self._urls: dict[str, str] = {}
        self._servers: list[tuple[wsgi.Server, threading.Thread | None]] = []

    @property
    def pagerduty_url(self) -> str:
        return self._url("pagerduty")

    @property
    def jira_url(self) -> str:
        return self._url("jira")

    @property
    def qualtrics_url(self) -> str:
        return self._url("qualtrics")

    @property
    def qualtrics(self) -> QualtricsApi:
        """The running Qualtrics API (``fail_exports`` arms export failures)."""
        return self._running_apps()["qualtrics"]

    @property
    def ca_bundle_path(self) -> str:
        if self._ca_bundle_path is None:
            raise RuntimeError("the sandbox is not running; call start() or use it as a context manager")
        return str(self._ca_bundle_path)

    @property
    def kpi_rules_path(self) -> str:
        """The KPI rules this site needs (config/kpi_rules.yml's, reading its "PagerDuty incident"
        custom field): the jira resource's kpi_rules_path."""
        if self._kpi_rules_path is None:
            raise RuntimeError("the sandbox is not running; call start() or use it as a context manager")
        return str(self._kpi_rules_path)

    def _url(self, service: str) -> str:
        if service not in self._urls:
            raise RuntimeError("the sandbox is not running; call start() or use it as a context manager")
        return self._urls[service]

    def start(self) -> Sandbox:
        if self._servers:
            raise RuntimeError("the sandbox is already running")
        try:
            self._tls_dir = Path(tempfile.mkdtemp(prefix="psafe-sandbox-"))
            tls = make_server_tls(self._tls_dir, self.host)
            self._ca_bundle_path = tls.ca_bundle_path
            self._kpi_rules_path = write_site_kpi_rules(self._tls_dir / "kpi_rules.yml")
            # Bind first: the APIs render their self links with the bound port (port 0 picks a
            # free one), and a busy port raises here, naming it.
            servers = {}
            for name, port in self._requested_ports.items():
                servers[name] = self._bind(name, port, tls.server_pem_path)
                self._servers.append((servers[name], None))
            url_host = f"[{self.host}]" if ":" in self.host else self.host
            for name, server in servers.items():
                self._urls[name] = f"https://{url_host}:{server.bind_addr[1]}"
            self._apps = apps = {
                "pagerduty": PagerDutyApi(
                    self.org,
                    token=self.pagerduty_token,
                    base_url=self._urls["pagerduty"],
                    rate_limit_per_minute=self.rate_limit_per_minute,
                    count_request=lambda key: self._count("pagerduty", key),
                    as_of=self.as_of,
                    variations=self.variations & set(PagerDutyApi.VARIATIONS),
                ),
                "jira": JiraApi(
                    self.org,
                    email=self.jira_email,
                    token=self.jira_token,
                    base_url=self._urls["jira"],
                    count_request=lambda key: self._count("jira", key),
                    as_of=self.as_of,
                    variations=self.variations & set(JiraApi.VARIATIONS),
                ),
                "qualtrics": QualtricsApi(
                    self.org, token=self.qualtrics_token,
                    count_request=lambda key: self._count("qualtrics", key), as_of=self.as_of,
                ),
            }
            for index, (name, server) in enumerate(servers.items()):
                server.wsgi_app = apps[name]
                thread = threading.Thread(target=server.serve, name=f"sandbox-{name}", daemon=True)
                thread.start()
                self._servers[index] = (server, thread)
        except BaseException:
            self.stop()
            raise
        return self

    def set_as_of(self, moment: datetime) -> None:
        """Serve the organisation as it stood at ``moment`` from now on (both APIs)."""
        for app in self._running_apps().values():
            app.set_as_of(moment)
        self.as_of = moment

    def inject_fault(self, service: str, kind: str, **options) -> Fault:
        """Arm a fault on ``service`` ("pagerduty" or "jira"); see ``pipelines.sandbox.faults``."""
        apps = self._running_apps()
        if service not in apps:
            raise ValueError(f"no such service {service!r}; one of {', '.join(apps)}")
        return apps[service].faults.add(Fault(kind, **options))

    def clear_faults(self) -> None:
        for app in self._running_apps().values():
            app.faults.clear()

    def _running_apps(self) -> dict:
        if not self._apps:
            raise RuntimeError("the sandbox is not running; call start() or use it as a context manager")
        return self._apps

    def stop(self) -> None:
        servers, self._servers = self._servers, []
        try:
            # A request held by a "timeout" fault is answered at once, so no server waits for it.
            for app in self._apps.values():
                app.faults.release()
            for server, thread in servers:
                server.stop()
                if thread is not None:
                    thread.join()
        finally:
            self._apps = {}
            self._urls.clear()
            self._ca_bundle_path = None
            if self._tls_dir is not None:
                shutil.rmtree(self._tls_dir, ignore_errors=True)
                self._tls_dir = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _bind(self, service: str, port: int, server_pem_path: Path) -> wsgi.Server:
        """A listening server for ``service``, its app set when the app exists."""
        server = wsgi.Server((self.host, port), None, server_name=self.host)
        server.ssl_adapter = BuiltinSSLAdapter(str(server_pem_path), str(server_pem_path))
        server.timeout = KEEP_ALIVE_SECONDS
        server.expiration_interval = POLL_SECONDS
        server.shutdown_timeout = SHUTDOWN_SECONDS
        server.error_log = _log_server_error
        try:
            _prepare_in_daemon_thread(server)
        except OSError as error:
            raise OSError(f"cannot serve the {service} sandbox on {self.host}:{port}: {error}") from error
        return server

    def _count(self, service: str, key: str) -> None:
        with self._counts_lock:
            self.request_counts[f"{service} {key}"] += 1
