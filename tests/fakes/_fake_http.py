"""A small threaded HTTP/1.1 server on 127.0.0.1 that the stateful SCM fakes build on.

Why not Werkzeug routing: it decodes `%2F` before routing, and GitLab's API is addressed with
URL-encoded project paths (`/projects/group%2Fsub%2Frepo`) whose encoding the fake must check.
The stdlib server hands over the request line untouched.

A fake gets every request as a `RawRequest` (raw path, raw query, headers, body), answers with a
`Reply`, and the base logs each exchange (an `openapi_check.Exchange`, path relative to the API
prefix) and applies scripted faults (`fail_next`) before the fake sees the request, the way a rate
limiter or a proxy in front of the real service would. A fault can also come *after* the service
did the work (`processed=True`: a gateway that timed out waiting for a backend which went on to
finish, answering 502/504 for a request that took effect), and an answer can be held back
(`stall_next`: the server accepted the request and does not answer in time; the client's read
timeout fires, whether or not the work was done).
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from tests.fakes.openapi_check import Exchange

_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
# No answer at all: a stall that is not processed sends nothing, and the connection is closed.
NO_ANSWER = 0


@dataclass
class RawRequest:
    method: str
    path: str  # raw, still percent-encoded, without the query
    query: str  # raw query string
    headers: Mapping[str, str]  # keys lower-cased
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def params(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self.query, keep_blank_values=True)

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.params.get(name)
        return values[-1] if values else default

    def json(self) -> Any:
        """The body as the real services read it: JSON, or form-encoded fields."""
        if not self.body:
            return {}
        content_type = (self.header("content-type") or "").lower()
        if "application/x-www-form-urlencoded" in content_type:
            return {k: v[-1] for k, v in urllib.parse.parse_qs(self.body.decode()).items()}
        return json.loads(self.body)


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Reply:
        all_headers = {"Content-Type": "application/json"}
        all_headers.update(headers or {})
        return cls(status, json.dumps(payload).encode(), all_headers)


@dataclass
class Fault:
    status: int
    remaining: int
    method: str | None = None
    path: str | None = None  # regex searched in the path relative to the API prefix
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    processed: bool = False  # the service handles the request first; the fault replaces its answer
    stall: float = 0.0  # hold the answer this long (the client's read timeout fires first)

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method.upper()) and (
            self.path is None or re.search(self.path, path) is not None
        )


class FakeService:
    """Server plumbing shared by the fakes; subclasses implement `handle` and `api_prefix`."""

    api_prefix = ""  # e.g. "/api/v4": the log records paths relative to it

    def __init__(self) -> None:
        self.requests: list[Exchange] = []
        self.lock = threading.RLock()
        self._faults: list[Fault] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()  # ends every stalled answer when the fake stops

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> FakeService:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # One write per response and no Nagle delay: otherwise each keep-alive exchange can stall
            # ~40 ms on delayed ACKs.
            wbufsize = -1
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: the fake keeps its own log

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                raw_path, _, query = self.path.partition("?")
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply, stall = service._dispatch(RawRequest(self.command, raw_path, query, headers, body))
                if stall:
                    service._stopping.wait(stall)
                if reply.status == NO_ANSWER:
                    self.close_connection = True
                    return
                try:
                    self.send_response(reply.status, _REASONS.get(reply.status, ""))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(reply.body)
                except OSError:  # the client gave up waiting (a stalled answer): nobody to tell
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeService:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        """http://127.0.0.1:PORT (no path)."""
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- scripting ----------------------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        *,
        count: int = 1,
        method: str | None = None,
        path: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        processed: bool = False,
    ) -> None:
        """Answer the next `count` matching requests with `status` (JSON `body`, extra `headers`).

        processed: the service carries the request out first and the fault replaces its answer.
        """
        with self.lock:
            self._faults.append(
                Fault(status, count, method, path, dict(headers or {}), body, processed=processed)
            )

    def stall_next(
        self,
        seconds: float,
        *,
        count: int = 1,
        method: str | None = None,
        path: str | None = None,
        processed: bool = True,
    ) -> None:
        """Hold the answer to the next `count` matching requests for `seconds` (or until stop()).

        processed: the service carries the request out and its answer comes late; otherwise the
        request is never carried out and the connection closes without an answer.
        """
        with self.lock:
            self._faults.append(Fault(NO_ANSWER, count, method, path, processed=processed, stall=seconds))

    def calls(self, method: str | None = None, path: str | None = None) -> list[Exchange]:
        """Logged exchanges, optionally filtered by method and a regex on the relative path."""
        with self.lock:
            return [
                e
                for e in self.requests
                if (method is None or e.method == method.upper())
                and (path is None or re.search(path, e.path) is not None)
            ]

    # -- dispatch -----------------------------------------------------------------------------------

    def relative(self, raw_path: str) -> str | None:
        """The path below the API prefix, or None when the request is outside the API."""
        prefix = self.api_prefix
        if raw_path == prefix or raw_path.startswith(prefix + "/"):
            return raw_path[len(prefix) :] or "/"
        return None

    def _dispatch(self, request: RawRequest) -> tuple[Reply, float]:
        relative = self.relative(request.path)
        logged_path = relative if relative is not None else request.path
        with self.lock:
            fault = self._matching_fault(request.method, logged_path)
            reply = None if fault is None or fault.processed else self._fault_reply(fault)
            if reply is None:
                try:
                    reply = self.handle(request, relative)
                except Exception as exc:  # a bug in the fake must show, not hang the client
                    reply = Reply.json(500, {"fake_error": f"{type(exc).__name__}: {exc}"})
                if fault is not None and fault.status != NO_ANSWER:
                    reply = self._fault_reply(fault)  # done, but the answer is lost on the way
            self.requests.append(
                Exchange(
                    method=request.method,
                    path=logged_path,
                    query=request.query,
                    request_headers=dict(request.headers),
                    request_body=request.body,
                    status=reply.status,
                    response_headers=dict(reply.headers),
                    response_body=reply.body,
                )
            )
        return reply, fault.stall if fault is not None else 0.0

    def _matching_fault(self, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.remaining > 0 and fault.matches(method, path):
                fault.remaining -= 1
                return fault
        return None

    def _fault_reply(self, fault: Fault) -> Reply:
        if fault.status == NO_ANSWER:
            return Reply(NO_ANSWER)
        body = fault.body if fault.body is not None else self.default_fault_body(fault.status)
        if isinstance(body, bytes | str):
            raw = body.encode() if isinstance(body, str) else body
            return Reply(fault.status, raw, {"Content-Type": "text/plain", **fault.headers})
        return Reply.json(fault.status, body, fault.headers)

    def default_fault_body(self, status: int) -> Any:
        return {"message": f"{status} {_REASONS.get(status, '')}".strip()}

    def handle(self, request: RawRequest, relative: str | None) -> Reply:
        raise NotImplementedError
