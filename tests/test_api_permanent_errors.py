"""Requests that no retry can change fail at once, naming what to fix; network faults stay
retried. Against the local sandbox (real TLS, its own CA) and tiny local servers, with the real
clients: a URL or a header the client cannot build from a setting, a proxy scheme it cannot
speak, a header h11 refuses to send. Before, each was retried as a "network error" (or escaped
as a bare exception Dagster's RetryPolicy repeats) for minutes, then failed naming no setting.
A server certificate the client refuses (a corporate proxy that inspects TLS shows its own, an
expired one, one for another host) is retried within the request's bounded attempts, as one
node of a pool may serve a stale one, then fails naming what to fix for that reason, and the
step is not retried."""

import datetime as dt
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import dagster as dg
import pytest
import trustme

from assets.api_retry import ApiError
from assets.jira.resource import JiraResource
from assets.pagerduty import assets as pagerduty_assets
from assets.pagerduty.resource import PagerDutyResource
from assets.qualtrics.resource import QualtricsResource
from assets.warehouse.resource import WarehouseResource
from pipelines.demo import SANDBOX_JIRA_EMAIL, SANDBOX_JIRA_TOKEN, SANDBOX_PAGERDUTY_TOKEN, start_sandbox
from pipelines.sandbox.qualtrics import SURVEY_ID
from pipelines.synthetic.org import OrgSpec, generate

pytestmark = pytest.mark.slow

# Quick retries, each logged: before the fixes these cases spent all three attempts, and then
# Dagster's RetryPolicy 30/90/210 s more.
PATIENT = {"max_attempts": 3, "base_delay_seconds": 0.05}
# Where each client takes its certificate authorities from when the resource names none.
CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
                   "NO_PROXY", "no_proxy")
SERVICES = ("pagerduty", "jira", "qualtrics")


@pytest.fixture(scope="module")
def sandbox():
    with start_sandbox(generate(OrgSpec(seed=11, n_teams=3, n_months=6))) as running:
        yield running


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch):
    """No CA or proxy from the machine's environment: each test sets what it needs."""
    for name in CA_VARIABLES + PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def resource(service: str, sandbox, **settings):
    if service == "pagerduty":
        return PagerDutyResource(**{"api_token": SANDBOX_PAGERDUTY_TOKEN, "base_url": sandbox.pagerduty_url,
                                    "ca_bundle_path": sandbox.ca_bundle_path, **PATIENT, **settings})
    if service == "jira":
        return JiraResource(**{"server_url": sandbox.jira_url, "email": SANDBOX_JIRA_EMAIL,
                               "api_token": SANDBOX_JIRA_TOKEN, "ca_bundle_path": sandbox.ca_bundle_path,
                               **PATIENT, **settings})
    return QualtricsResource(**{"base_url": sandbox.qualtrics_url, "api_token": sandbox.qualtrics_token,
                                "survey_ids": SURVEY_ID, "ca_bundle_path": sandbox.ca_bundle_path,
                                "poll_seconds": 0.01, **PATIENT, **settings})


def first_call(service: str, api, log: Callable[[str], None]):
    """What a sync asks first: PagerDuty's teams, Jira's clock, a Qualtrics export."""
    if service == "pagerduty":
        return list(api.iter_all(api.get_client(), "teams", log))
    if service == "jira":
        return api.site_time(api.get_client(), log)
    return api.export_responses(SURVEY_ID, None, log)


def failed_at_once(call: Callable[[Callable[[str], None]], object]) -> ApiError:
    """The ApiError ``call(log)`` raises, checked: not retryable (failing_clearly makes it a
    dg.Failure RetryPolicy does not repeat), after one attempt (no retry logged)."""
    retries: list[str] = []
    with pytest.raises(ApiError) as raised:
        call(retries.append)
    assert raised.value.retryable is False, str(raised.value)
    assert retries == []
    return raised.value


def failed_after_retries(call: Callable[[Callable[[str], None]], object]) -> ApiError:
    """The ApiError ``call(log)`` raises, checked: not retryable, after all PATIENT attempts
    (each retry logged), naming the attempts."""
    retries: list[str] = []
    with pytest.raises(ApiError) as raised:
        call(retries.append)
    assert raised.value.retryable is False, str(raised.value)
    assert len(retries) == PATIENT["max_attempts"] - 1, retries
    assert f"still failing after {PATIENT['max_attempts']} attempts: the server's TLS certificate" in str(raised.value)
    return raised.value


SETTINGS = {
    "pagerduty": ("PAGERDUTY_URL", "PAGERDUTY_API_TOKEN", "SSL_CERT_FILE", SANDBOX_PAGERDUTY_TOKEN),
    "jira": ("JIRA_URL", "JIRA_EMAIL and JIRA_API_TOKEN", "REQUESTS_CA_BUNDLE", SANDBOX_JIRA_TOKEN),
    "qualtrics": ("QUALTRICS_URL", "QUALTRICS_API_TOKEN", "REQUESTS_CA_BUNDLE", None),
}


@pytest.mark.parametrize("service", SERVICES)
def test_an_untrusted_certificate_fails_after_the_retries_naming_the_ca_variable_that_then_works(
        sandbox, service, monkeypatch):
    """As behind a corporate proxy that inspects TLS: the server's certificate is signed by a CA
    the client does not know. The variable the message names is the one the client reads."""
    url_variable, _, ca_variable, _ = SETTINGS[service]
    api = resource(service, sandbox, ca_bundle_path=None)
    error = failed_after_retries(lambda log: first_call(service, api, log))
    assert "TLS certificate is not trusted (unable to get local issuer certificate)" in str(error)
    assert f"set {ca_variable} to a PEM file" in str(error) and f"check {url_variable}" in str(error)
    # Doing what it says works.
    monkeypatch.setenv(ca_variable, sandbox.ca_bundle_path)
    assert first_call(service, api, lambda message: None)


@pytest.mark.parametrize("service", SERVICES)
def test_a_ca_bundle_path_that_does_not_sign_the_certificate_is_named(sandbox, service, tmp_path):
    """The resource's own ca_bundle_path, when set, is what the client trusts (the environment is
    not read): the message names it, not the variable."""
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA(organization_name="not the server's").cert_pem.write_to_path(str(other_ca))
    error = failed_after_retries(lambda log: first_call(
        service, resource(service, sandbox, ca_bundle_path=str(other_ca)), log))
    assert f"set the resource's ca_bundle_path (now {other_ca}) to a PEM file" in str(error)


TYPOGRAPHIC = {"typographic quotes": "\u201c{}\u201d", "an en dash": "{}\u2013x"}


@pytest.mark.parametrize("shape", TYPOGRAPHIC)
@pytest.mark.parametrize("service", SERVICES)
def test_a_token_with_a_character_a_header_cannot_carry_fails_at_once_naming_it(sandbox, service, shape):
    """A token pasted from a document with typographic quotes or a dash: no header can carry it,
    so nothing reaches the server and the message names the token's variable, not its value."""
    _, header_variables, _, _ = SETTINGS[service]
    token = {"pagerduty": SANDBOX_PAGERDUTY_TOKEN, "jira": SANDBOX_JIRA_TOKEN,
             "qualtrics": sandbox.qualtrics_token}[service]
    before = sum(sandbox.request_counts.values())
    error = failed_at_once(lambda log: first_call(
        service, resource(service, sandbox, api_token=TYPOGRAPHIC[shape].format(token)), log))
    assert "the request cannot be sent (UnicodeEncodeError: " in str(error)
    assert f"check {header_variables} for a character an HTTP header cannot carry" in str(error)
    assert token not in str(error)
    assert sum(sandbox.request_counts.values()) == before


@pytest.mark.parametrize("host", ["a..b.example.com", ".example.com", "exa\u2013mple.com"])
@pytest.mark.parametrize("service", SERVICES)
def test_a_url_whose_host_the_client_cannot_encode_fails_at_once_naming_the_variable(sandbox, service, host):
    url_variable = SETTINGS[service][0]
    setting = "server_url" if service == "jira" else "base_url"
    error = failed_at_once(lambda log: first_call(service, resource(service, sandbox, **{setting: f"https://{host}"}),
                                                  log))
    assert "the request cannot be sent (" in str(error) and f"check {url_variable} (and HTTPS_PROXY" in str(error)


@pytest.mark.parametrize("port", ["99999", "44x"])
@pytest.mark.parametrize("service", SERVICES)
def test_a_url_with_a_port_that_is_not_one_fails_before_any_request(sandbox, service, port):
    """httpx wraps port 99999 round to another one (a refused connection, retried for minutes)."""
    url_variable = SETTINGS[service][0]
    setting = "server_url" if service == "jira" else "base_url"
    with pytest.raises(dg.Failure) as raised:
        first_call(service, resource(service, sandbox, **{setting: f"https://127.0.0.1:{port}"}), print)
    assert raised.value.allow_retries is False
    assert raised.value.description.startswith(f"{url_variable} has a port that is not one (")


@pytest.mark.parametrize("service", ["jira", "qualtrics"])
def test_a_proxy_scheme_the_client_cannot_speak_fails_at_once(sandbox, service, monkeypatch):
    """requests without PySocks cannot use a socks:// proxy (InvalidSchema) however often asked."""
    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1080")
    error = failed_at_once(lambda log: first_call(service, resource(service, sandbox), log))
    assert "InvalidSchema: Missing dependencies for SOCKS support" in str(error)
    assert "(and HTTPS_PROXY, if set)" in str(error)


def test_a_header_h11_refuses_to_send_is_not_retried(sandbox):
    """h11's LocalProtocolError: the client refuses to send a header value. No setting reaches it
    any more (clean_setting and httpx's ASCII encoding stop them first), so a header is put on
    the real client here; before, it was a retried "network error (LocalProtocolError)"."""
    api = resource("pagerduty", sandbox)
    client = api.get_client()
    client.headers["X-Trace"] = "a\x00b"
    error = failed_at_once(lambda log: api.get_json(client, "teams", log=log))
    assert "the request cannot be sent (LocalProtocolError: Illegal header value" in str(error)
    assert "check PAGERDUTY_API_TOKEN" in str(error)


def test_a_sync_step_behind_an_untrusted_certificate_fails_once_not_retried(sandbox, tmp_path):
    """The step as a run sees it: one failure naming the variable, after the request's bounded
    retries, not repeated by RetryPolicy (before 55a7c58: "still failing after 3 attempts (network
    error (ConnectError))", then up for retry)."""
    result = dg.materialize(
        [pagerduty_assets.pagerduty_teams], raise_on_error=False,
        resources={"pagerduty": resource("pagerduty", sandbox, ca_bundle_path=None),
                   "duckdb": WarehouseResource(database=str(tmp_path / "w.duckdb"))})
    assert not result.success
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    description = failure.step_failure_data.user_failure_data.description
    assert "TLS certificate is not trusted" in description and "set SSL_CERT_FILE to a PEM file" in description
    assert "still failing after 3 attempts" in description


# Certificates refused for another reason than an unknown CA: a CA bundle cannot help, the message
# says what can. Tiny TLS servers with certificates of a CA the resource trusts (ca_bundle_path).

@contextmanager
def tls_server(contexts: list[ssl.SSLContext | None], upstream_port: int | None = None) -> Iterator[tuple[int, list]]:
    """A loopback port whose n-th connection meets ``contexts[n]`` (the last one after them): a
    server context presents its certificate, which the client refuses (the handshake is all it
    gets); None relays the connection's bytes to ``upstream_port`` (the sandbox's, which then
    shakes hands itself). Yields the port and the list of connections accepted so far."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[int] = []

    def pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def handle(connection: socket.socket, context: ssl.SSLContext | None) -> None:
        if context is None:
            upstream = socket.create_connection(("127.0.0.1", upstream_port))
            threading.Thread(target=pipe, args=(upstream, connection), daemon=True).start()
            pipe(connection, upstream)
            return
        try:
            context.wrap_socket(connection, server_side=True).close()
        except (ssl.SSLError, OSError):  # the client refused the certificate
            connection.close()

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            context = contexts[min(len(accepted), len(contexts)) - 1]
            threading.Thread(target=handle, args=(connection, context), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], accepted
    finally:
        listener.close()
        thread.join(5)


def presenting(certificate: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certificate.configure_cert(context)
    return context


@pytest.fixture(scope="module")
def known_ca(tmp_path_factory) -> tuple[trustme.CA, str]:
    """A CA and the PEM file a resource's ca_bundle_path names for it."""
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, str(path)


def url_setting(service: str, url: str) -> dict:
    return {"server_url" if service == "jira" else "base_url": url}


REFUSED_CERTIFICATES = {
    # host the URL names, the certificate's names and dates, what the message must say
    "expired": ("127.0.0.1", ["127.0.0.1"], (dt.datetime(2020, 1, 1), dt.datetime(2021, 1, 1)),
                "is refused (certificate has expired): its owner must renew it"),
    "not yet valid": ("127.0.0.1", ["127.0.0.1"], (dt.datetime(2090, 1, 1), dt.datetime(2091, 1, 1)),
                      "is refused (certificate is not yet valid): if this machine's clock (it reads "),
    "another host name": ("localhost", ["jira.example.com"], None,
                          ("is refused (Hostname mismatch, certificate is not valid for 'localhost'.): it does not "
                           "cover the host {url_variable} names. Set {url_variable} to a host the certificate names")),
    "an IP address it does not name": ("127.0.0.1", ["jira.example.com"], None,
                                       ("is refused (IP address mismatch, certificate is not valid for '127.0.0.1'.): "
                                        "it does not cover the host {url_variable} names")),
}


@pytest.mark.parametrize("case", REFUSED_CERTIFICATES)
@pytest.mark.parametrize("service", SERVICES)
def test_a_certificate_refused_for_its_dates_or_host_names_what_to_fix_not_the_ca(sandbox, service, case, known_ca):
    """The resource trusts the certificate's CA: a CA bundle cannot help (before: "not trusted ...
    set the resource's ca_bundle_path to a PEM file holding its CA certificate"). Expired or not
    yet valid: its owner renews it or the clock is wrong; another host: the URL variable."""
    ca, ca_path = known_ca
    host, names, dates, expected = REFUSED_CERTIFICATES[case]
    url_variable = SETTINGS[service][0]
    validity = {"not_before": dates[0], "not_after": dates[1]} if dates else {}
    with tls_server([presenting(ca.issue_cert(*names, **validity))]) as (port, accepted):
        api = resource(service, sandbox, ca_bundle_path=ca_path, **url_setting(service, f"https://{host}:{port}"))
        error = failed_after_retries(lambda log: first_call(service, api, log))
    assert expected.format(url_variable=url_variable) in str(error)
    assert "ca_bundle_path" not in str(error) and "PEM" not in str(error)
    assert len(accepted) == PATIENT["max_attempts"]


@pytest.mark.parametrize("service", SERVICES)
def test_a_certificate_refused_on_one_connection_only_is_retried(sandbox, service):
    """One node of a pool still serving an old certificate (of a CA the client does not know),
    or a gateway intercepting for a moment: the next connection reaches the service, so the
    request succeeds on its second attempt (before: failed at once, "Not retried: every attempt
    would be refused alike")."""
    upstream = urlsplit(getattr(sandbox, f"{service}_url")).port
    stale = presenting(trustme.CA().issue_cert("127.0.0.1"))
    with tls_server([stale, None], upstream_port=upstream) as (port, accepted):
        api = resource(service, sandbox, **url_setting(service, f"https://127.0.0.1:{port}"))
        retries: list[str] = []
        assert first_call(service, api, retries.append)
    assert len(retries) == 1 and "TLS certificate refused (unable to get local issuer certificate)" in retries[0]
    assert len(accepted) >= 2


def test_a_connection_state_h11_refuses_is_not_taken_for_a_header(sandbox):
    """h11's LocalProtocolError also stands for a connection state it refuses (sending on a
    kept-alive connection it holds in error). httpcore makes it httpx's LocalProtocolError only
    while building the request line and headers; the state comes as h11's own, so it names no
    token: it is left to the step's RetryPolicy, and the next connection is a new one. httpcore
    never reuses a connection h11 has left IDLE; here one is forced into that state."""
    api = resource("pagerduty", sandbox)
    client = api.get_client()
    assert api.get_json(client, "teams")
    [pooled] = client._transport._pool.connections
    pooled._connection._h11_state.send_failed()  # as after a send that failed half-way
    with pytest.raises(Exception) as raised:
        api.get_json(client, "teams", log=print)
    assert (type(raised.value).__module__.split(".")[0], type(raised.value).__name__) == ("h11", "LocalProtocolError")
    assert "Can't send data when our state is ERROR" in str(raised.value)
    assert api.get_json(client, "teams")


# Network faults stay retried: a refused connection, a TLS handshake the server cuts short.

@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    yield port


@contextmanager
def hanging_up_server() -> Iterator[int]:
    """A loopback port whose server accepts each connection and closes it at once, mid-handshake."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        thread.join(5)


@pytest.mark.parametrize("server", [closed_port, hanging_up_server])
@pytest.mark.parametrize("service", SERVICES)
def test_network_faults_are_still_retried(sandbox, service, server):
    setting = "server_url" if service == "jira" else "base_url"
    retries: list[str] = []
    with server() as port, pytest.raises(ApiError) as raised:
        first_call(service, resource(service, sandbox, **{setting: f"https://127.0.0.1:{port}"},
                                     base_delay_seconds=0.01), retries.append)
    assert raised.value.retryable is True
    assert "still failing after 3 attempts" in str(raised.value)
    assert len(retries) == 2
