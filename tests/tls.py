"""TLS and proxy plumbing for tests: a throw-away CA, HTTPS in front of any local server, a CONNECT proxy.

- `make_ca(dir)`: a self-signed CA and a server certificate for 127.0.0.1 and localhost signed by it
  (EC P-256, made in-process with `cryptography`, which PyGithub already depends on). `ca.pem` is
  what a client is told to trust; `server_context()` is what a server presents.
- `TLSTerminator`: an HTTPS port that relays the decrypted bytes to a plain-HTTP server, so that any
  fake (GitLab, Bitbucket) can be reached over TLS without changing it.
- `ConnectProxy`: an HTTP proxy on 127.0.0.1 that only tunnels (CONNECT, which is how both libcurl and
  requests reach an https:// URL through a proxy), optionally demanding Basic credentials with a 407,
  and records which host:port it tunnelled to and as whom.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class CertAuthority:
    name: str
    ca_pem: Path  # the CA certificate: what a client trusts
    cert_pem: Path  # the server's certificate (for 127.0.0.1 and localhost)
    key_pem: Path  # the server's private key

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_pem, self.key_pem)
        return context


def make_ca(directory: Path, name: str = "Test CA") -> CertAuthority:
    """A CA and a server certificate it signed, as PEM files in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca = CertAuthority(name, directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    ca.ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    ca.cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    ca.key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


# -- relaying bytes ------------------------------------------------------------------------------------


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        # Half-close so the other direction can finish (an HTTP response after the request's end).
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def _relay(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until both sides are done; then close both."""
    back = threading.Thread(target=_pipe, args=(b, a), daemon=True)
    back.start()
    _pipe(a, b)
    back.join(timeout=30)
    for s in (a, b):
        s.close()


class _Listener:
    """A TCP listener on 127.0.0.1 that hands each connection to `_handle` on its own thread."""

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def start(self) -> _Listener:
        sock = socket.create_server(("127.0.0.1", 0))
        sock.settimeout(0.05)  # so stop() is noticed promptly
        self._sock, self.port = sock, sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        sock, self._sock = self._sock, None
        if self._thread is not None:
            self._thread.join(timeout=5)
        if sock is not None:
            sock.close()

    def _accept_loop(self) -> None:
        while (sock := self._sock) is not None:
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        raise NotImplementedError


class TLSTerminator(_Listener):
    """https://127.0.0.1:PORT in front of a plain-HTTP server at backend_port (same paths, same bytes)."""

    def __init__(self, ca: CertAuthority, backend_port: int) -> None:
        super().__init__()
        self._context = ca.server_context()
        self.backend_port = backend_port
        self.handshake_failures = 0  # clients that refused the certificate

    def __enter__(self) -> TLSTerminator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def https(self, plain_url: str) -> str:
        """The same URL reached through this terminator: http://127.0.0.1:BACKEND/x → https://…:PORT/x."""
        prefix = f"http://127.0.0.1:{self.backend_port}"
        assert plain_url.startswith(prefix), plain_url
        return self.url + plain_url[len(prefix) :]

    def _handle(self, conn: socket.socket) -> None:
        try:
            tls = self._context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshake_failures += 1
            conn.close()
            return
        backend = socket.create_connection(("127.0.0.1", self.backend_port))
        backend.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _relay(tls, backend)


@dataclass
class Tunnel:
    target: str  # host:port from the CONNECT line
    user: str | None  # the proxy username presented, if any
    client: str  # "python-requests/…", "git/…": the User-Agent of the CONNECT, when sent


@dataclass
class _ProxyState:
    tunnels: list[Tunnel] = field(default_factory=list)
    refused: int = 0  # CONNECTs answered 407
    lock: threading.Lock = field(default_factory=threading.Lock)


class ConnectProxy(_Listener):
    """http://127.0.0.1:PORT, tunnelling CONNECT host:port (only to 127.0.0.1: nothing leaves the machine).

    With `credentials=(user, password)` a CONNECT without the right Proxy-Authorization gets 407 and a
    Basic challenge, as squid and most corporate proxies answer; the connection stays usable for the
    retry, as libcurl expects. Anything but CONNECT gets 405: the tests only send https through it.
    """

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.credentials = credentials
        self._state = _ProxyState()

    def __enter__(self) -> ConnectProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, user: str | None = None, password: str | None = None) -> str:
        userinfo = f"{user}:{password}@" if user is not None else ""
        return f"http://{userinfo}127.0.0.1:{self.port}"

    @property
    def tunnels(self) -> list[Tunnel]:
        with self._state.lock:
            return list(self._state.tunnels)

    @property
    def targets(self) -> set[str]:
        return {t.target for t in self.tunnels}

    @property
    def refused(self) -> int:
        with self._state.lock:
            return self._state.refused

    def _handle(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        while True:
            head = _read_head(reader)
            if head is None:
                reader.close()
                conn.close()
                return
            method, target, headers = head
            if method != "CONNECT":
                conn.sendall(
                    b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                conn.close()
                return
            user = self._authorised(headers.get("proxy-authorization", ""))
            if user is None:
                with self._state.lock:
                    self._state.refused += 1
                conn.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="test proxy"\r\nContent-Length: 0\r\n\r\n'
                )
                continue
            host, _, port = target.rpartition(":")
            if host not in ("127.0.0.1", "localhost") or not port.isdigit():
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                conn.close()
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
            except OSError:
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                conn.close()
                return
            upstream.settimeout(None)
            with self._state.lock:
                self._state.tunnels.append(Tunnel(target, user or None, headers.get("user-agent", "")))
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            # Nothing is buffered past the CONNECT head: a client waits for the 200 before its handshake.
            _relay(conn, upstream)
            reader.close()
            return

    def _authorised(self, header: str) -> str | None:
        """The username if the credentials are right (or "" when none are required); None if not."""
        if self.credentials is None:
            return ""
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except ValueError:
            return None
        return user if (user, password) == self.credentials else None


def _read_head(reader: BinaryIO) -> tuple[str, str, dict[str, str]] | None:
    """The request line and headers (names lower-cased), or None at EOF or on garbage."""
    readline = reader.readline
    line = readline(65537)
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3:
        return None
    headers: dict[str, str] = {}
    while (raw := readline(65537)) not in (b"\r\n", b"\n", b""):
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return parts[0].upper(), parts[1], headers
