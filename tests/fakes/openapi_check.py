"""Check what a fake API server answered against the vendor's OpenAPI description (a committed slice).

The fakes log every exchange; a test hands the log to `validate_exchanges`, which replays each pair
through openapi-core as if it had been sent to the vendor's real server URL, and returns one line per
problem: a request our client sent that the description does not allow, or a fake response that
does not match the schema the real service promises. A fake that drifts from the real API therefore
fails the suite instead of silently teaching the adapter wrong shapes.

Known deviations that the real service accepts go in `allow`, each with the reason, so that the
exceptions stay explicit and reviewable.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response


@dataclass
class Exchange:
    """One request and the fake's answer. `path` is relative to the API base ("/repos/o/r/pulls")."""

    method: str
    path: str
    query: str = ""  # raw query string, without "?"
    request_headers: Mapping[str, str] = field(default_factory=dict)
    request_body: bytes = b""
    status: int = 200
    response_headers: Mapping[str, str] = field(default_factory=dict)
    response_body: bytes = b""

    @property
    def request_json(self) -> Any:
        return json.loads(self.request_body) if self.request_body else None

    @property
    def response_json(self) -> Any:
        return json.loads(self.response_body) if self.response_body else None

    def __str__(self) -> str:
        query = f"?{self.query}" if self.query else ""
        return f"{self.method} {self.path}{query} -> {self.status}"


@dataclass(frozen=True)
class Allow:
    """A deviation from the description that the real service is known to accept.

    `method` ("*" for any) and `path` (a regex, searched) select exchanges; `error` is a regex searched
    in the problem text; `why` is mandatory so every exception documents itself.
    """

    method: str
    path: str
    error: str
    why: str
    side: Literal["request", "response", "*"] = "*"

    def covers(self, exchange: Exchange, side: str, problem: str) -> bool:
        return (
            (self.method == "*" or self.method.upper() == exchange.method.upper())
            and re.search(self.path, exchange.path) is not None
            and (self.side == "*" or self.side == side)
            and re.search(self.error, problem) is not None
        )


@functools.cache
def load(spec_path: str | Path) -> OpenAPI:
    """Parse (and validate) a description once per process; slices load in a fraction of a second."""
    return OpenAPI.from_file_path(str(spec_path))


def validate_exchanges(
    spec_path: str | Path, exchanges: Iterable[Exchange], allow: Iterable[Allow] = ()
) -> list[str]:
    """Problems found, one line each ("" free); an empty list means every exchange matched the description."""
    api = load(str(spec_path))
    allowances = list(allow)
    server = _server_url(api)
    problems: list[str] = []
    for exchange in exchanges:
        request = _request(server, exchange)
        response = _response(exchange)
        for side in ("request", "response"):
            try:
                if side == "request":
                    api.validate_request(request)
                else:
                    api.validate_response(request, response)
            except Exception as exc:  # openapi-core raises a family of types; all are findings here
                problem = _describe(exc)
                if not any(a.covers(exchange, side, problem) for a in allowances):
                    problems.append(f"{exchange}: {side}: {problem}")
                if type(exc).__name__ in ("PathNotFound", "OperationNotFound", "ServerNotFound"):
                    break  # the response cannot be checked against an operation that does not exist
    return problems


def _server_url(api: OpenAPI) -> str:
    servers = api.spec.get("servers") if hasattr(api.spec, "get") else None
    for server in servers or []:
        return str(server["url"]).rstrip("/")
    return "http://localhost"


def _request(server: str, exchange: Exchange) -> WerkzeugOpenAPIRequest:
    # Replay against the vendor's own server URL so openapi-core matches the description's paths;
    # a server URL with a path ("/2.0") becomes the script root, which openapi-core prepends.
    headers = {
        k: v for k, v in exchange.request_headers.items() if k.lower() not in ("host", "content-length")
    }
    builder = EnvironBuilder(
        base_url=server + "/",
        path=exchange.path,
        method=exchange.method.upper(),
        query_string=exchange.query,
        headers=headers,
        data=exchange.request_body or None,
        content_type=headers.get("Content-Type") or headers.get("content-type"),
    )
    try:
        return WerkzeugOpenAPIRequest(builder.get_request())
    finally:
        builder.close()


def _response(exchange: Exchange) -> WerkzeugOpenAPIResponse:
    headers = dict(exchange.response_headers)
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    response = Response(exchange.response_body, status=exchange.status, headers=headers)
    if content_type:
        response.headers["Content-Type"] = content_type
    return WerkzeugOpenAPIResponse(response)


def _describe(exc: BaseException) -> str:
    """The exception and its causes, with the schema errors openapi-core nests inside them, kept short."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        schema_errors = getattr(current, "schema_errors", None)
        if schema_errors:
            parts.append(type(current).__name__)
            for error in schema_errors:
                where = "/".join(str(p) for p in error.absolute_path) or "."
                detail = _short(error.message)
                if error.context:  # oneOf/anyOf: say why each alternative failed
                    detail += " (" + "; ".join(sorted({_short(c.message) for c in error.context})) + ")"
                parts.append(f"[{where}] {detail}")
        elif not parts or type(current).__name__ not in parts[-1]:
            parts.append(f"{type(current).__name__}: {_short(str(current))}")
        current = current.__cause__ or current.__context__
    return " | ".join(parts)


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
