"""Client ID Metadata Documents served over real HTTPS on loopback, for tests/oauth/test_cimd.py.

DOT's fetcher refuses every loopback address, as it must. So that a test can still have a
document fetched and checked, ``LoopbackTestFetcher`` fetches documents on loopback hosts,
trusting only a CA made here, and leaves every other host to DOT. A test selects it through
pytest-django's ``settings`` (``use_loopback_fetcher``); a server process through
``MCP_CIMD_TEST_LOOPBACK_CA`` (``loopback_server_environment``), which check mcpsite.E007
refuses unless debug is on.

    ca = LoopbackCA.create(tmp_dir)            # a CA and a certificate for localhost, 127.0.0.1, ::1
    with DocumentServer(ca) as documents:      # a threaded http.server behind TLS, port 0
        client_id = documents.url("/client.json")
        documents.serve_document(client_document(client_id))
        use_loopback_fetcher(settings, ca)
"""

from __future__ import annotations

import ipaddress
import json
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings as django_settings
from oauth2_provider import cimd

from tests.support.oauth_flow import REDIRECT_URI

FETCHER = "tests.support.cimd.LoopbackTestFetcher"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# The longest a stalled answer holds its connection; the test releases it long before.
STALL_LIMIT = 30.0
STOP_TIMEOUT = 10.0


# ---------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LoopbackCA:
    """PEM files: the CA, and the server's certificate and key (signed by the CA)."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def create(cls, directory: Path) -> LoopbackCA:
        directory = Path(directory)
        now = datetime.now(UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CIMD test CA")])
        ca_cert = (
            _builder(ca_name, ca_name, ca_key.public_key(), now)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        names = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
        cert = (
            _builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]), ca_name, key.public_key(), now)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        ca = cls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
        ca.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        ca.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        ca.key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return ca


def _builder(subject: x509.Name, issuer: x509.Name, public_key, now: datetime) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


# ---------------------------------------------------------------------------
# The document server
# ---------------------------------------------------------------------------


@dataclass
class Answer:
    """What the server answers on one path. `stall`: send the status and headers, then hold
    the body back until the server is released (a client that waits for it must give up)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    stall: bool = False


def json_answer(document, cache_control: str | None = None, content_type: str = "application/json") -> Answer:
    headers = {"Content-Type": content_type}
    if cache_control:
        headers["Cache-Control"] = cache_control
    return Answer(body=json.dumps(document).encode(), headers=headers)


def client_document(client_id: str, **fields) -> dict:
    """A valid metadata document for `client_id` (a public client of this suite's REDIRECT_URI);
    `fields` override its members, None removes one."""
    document = {
        "client_id": client_id,
        "client_name": "Document Client",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }
    document.update(fields)
    return {key: value for key, value in document.items() if value is not None}


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        documents: DocumentServer = self.server.documents
        answer = documents.answer_for(self.path, dict(self.headers))
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if answer.stall:
            self.send_header("Content-Length", str(len(answer.body) + 1))
            self.end_headers()
            self.wfile.flush()
            documents.stalled.set()
            documents.release.wait(STALL_LIMIT)
            self.close_connection = True  # the promised body never comes
            return
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        pass


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that gives up (a deadline, a refused certificate) is what some tests want.
        self.documents.errors.append(client_address)


class DocumentServer:
    """HTTPS on 127.0.0.1 (a port of its own), answering each path as told and keeping every
    request it got. Use it as a context manager: it stops, releasing stalled answers, on exit."""

    def __init__(self, ca: LoopbackCA):
        self._answers: dict[str, Answer] = {}
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        self.errors: list = []
        self.stalled = threading.Event()
        self.release = threading.Event()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(ca.cert_file, ca.key_file)
        self._httpd = _TLSServer(("127.0.0.1", 0), _Handler)
        self._httpd.documents = self
        # The handshake then happens in each request's thread, not in the accepting one.
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True, do_handshake_on_connect=False)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            # A short poll: shutdown() waits up to one poll for the loop to notice.
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="cimd-documents",
            daemon=True,
        )

    def __enter__(self) -> DocumentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(STOP_TIMEOUT)

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "https") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def serve(self, path: str, answer: Answer) -> None:
        with self._lock:
            self._answers[path] = answer

    def serve_document(self, document: dict, cache_control: str | None = None) -> None:
        """Serve `document` at the path of its own client_id."""
        self.serve(urlsplit(document["client_id"]).path, json_answer(document, cache_control))

    def answer_for(self, path: str, headers: dict[str, str]) -> Answer:
        with self._lock:
            self._seen.append(Seen(path, headers))
            return self._answers.get(path) or Answer(status=404, body=b'{"error": "not found"}')

    def seen(self, path: str | None = None) -> list[Seen]:
        with self._lock:
            return [request for request in self._seen if path is None or request.path == path]


# ---------------------------------------------------------------------------
# The fetcher, and the settings that select it
# ---------------------------------------------------------------------------


class LoopbackTestFetcher(cimd.SafeMetadataFetcher):
    """DOT's fetcher, except that a document on a loopback host is fetched instead of refused,
    from that host, trusting only the CA in ``settings.MCP_CIMD_TEST_LOOPBACK_CA``.

    Any other host goes to DOT's ``fetch`` with its address rules. The request mirrors DOT's
    (``oauth2_provider/cimd.py`` ``SafeMetadataFetcher.fetch``): the same headers, no redirect
    followed, no retry, one deadline of ``CIMD_FETCH_TIMEOUT_SECONDS`` for connecting and
    reading; and the answer is judged by DOT's own ``_read_document`` (status 200, a JSON
    media type, the size cap, a JSON object, the cache lifetime).
    """

    def fetch(self, client_id):
        parsed = cimd._validate_client_id_url(client_id)
        if parsed.hostname not in LOOPBACK_HOSTS:
            return super().fetch(client_id)
        ca_file = getattr(django_settings, "MCP_CIMD_TEST_LOOPBACK_CA", "")
        if not ca_file:
            raise cimd.CIMDError("no test CA: MCP_CIMD_TEST_LOOPBACK_CA is not set")
        timeout = cimd.oauth2_settings.CIMD_FETCH_TIMEOUT_SECONDS
        pool = urllib3.HTTPSConnectionPool(
            host=parsed.hostname,
            port=parsed.port or 443,
            timeout=urllib3.Timeout(connect=timeout, read=timeout, total=timeout),
            retries=False,
            maxsize=1,
            ssl_context=ssl.create_default_context(cafile=ca_file),
        )
        path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
        headers = {"Host": parsed.netloc, "Accept": "application/json, application/*+json"}
        try:
            response = pool.urlopen("GET", path, headers=headers, redirect=False, preload_content=False)
            try:
                return self._read_document(response)
            finally:
                response.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            raise cimd.CIMDError(f"could not fetch client_id document: {exc}") from exc
        finally:
            pool.close()


def use_loopback_fetcher(settings, ca: LoopbackCA, **provider) -> None:
    """Through pytest-django's `settings`: CIMD on, loopback documents fetched trusting `ca`,
    failures not backed off (each test starts clean), then DOT's CIMD settings in `provider`."""
    settings.MCP_CIMD_TEST_LOOPBACK_CA = str(ca.ca_file)
    cimd_settings(settings, CIMD_METADATA_FETCHER=FETCHER, **provider)


def cimd_settings(settings, **provider) -> None:
    """CIMD on with DOT's own fetcher and no failure backoff, then `provider` over it."""
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "CIMD_ENABLED": True,
        "CIMD_METADATA_FETCHER": "oauth2_provider.cimd.SafeMetadataFetcher",
        "CIMD_FAILURE_BACKOFF_SECONDS": 0,
        **provider,
    }


def loopback_server_environment(ca: LoopbackCA) -> dict[str, str]:
    """The environment of a live server that fetches loopback documents: debug on, or check
    mcpsite.E007 refuses to start it."""
    return {"DJANGO_DEBUG": "1", "MCP_CIMD_TEST_LOOPBACK_CA": str(ca.ca_file)}
