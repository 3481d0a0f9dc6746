"""The origin remote, parsed once: where the repository lives and which provider serves it.

Handles https/http URLs (with or without user:token@ and a port), ssh:// URLs, scp-like
`git@host:owner/repo.git`, and local paths / file:// URLs (tests, mirrors), which have no host.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from dataclasses import dataclass, field

from updater import redact

_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/]+)@)?(?P<host>[^:/]+):(?P<path>(?!//).+)$")


@dataclass(frozen=True)
class Origin:
    """origin's URL split into the parts the providers and the credential lookup need."""

    url: str = field(repr=False)  # as configured; may hold user:token, never print it
    scheme: str  # https, http, ssh, file
    host: str  # "" for local remotes
    port: int | None
    path: str  # without leading "/" and trailing ".git": "group/sub/repo", "scm/PROJ/repo"
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def netloc(self) -> str:
        """host[:port], as git's credential protocol and the API URLs want it."""
        return f"{self.host}:{self.port}" if self.port else self.host

    @property
    def is_http(self) -> bool:
        return self.scheme in ("http", "https")

    @property
    def web_base(self) -> str:
        """scheme://host[:port] of the web UI/API; ssh remotes are assumed to be served over https."""
        scheme = self.scheme if self.is_http else "https"
        # An ssh port is not the web port.
        return f"{scheme}://{self.netloc if self.is_http else self.host}"

    @property
    def url_without_credentials(self) -> str:
        """The configured URL, byte for byte, minus any user:password@."""
        if "://" not in self.url:
            return self.url
        parts = urllib.parse.urlsplit(self.url)
        return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))

    @property
    def display(self) -> str:
        """The URL with any credentials removed, for messages."""
        if self.scheme == "file":
            return self.url
        if self.is_http:
            return f"{self.scheme}://{self.netloc}/{self.path}"
        return f"{self.scheme}://{self.netloc}/{self.path}"


def parse_origin(url: str) -> Origin:
    url = url.strip()
    if "://" in url:
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "file":
            return Origin(url=url, scheme="file", host="", port=None, path=_clean_path(parts.path))
        if scheme in ("git+ssh", "ssh+git"):
            scheme = "ssh"
        username = urllib.parse.unquote(parts.username) if parts.username else None
        password = urllib.parse.unquote(parts.password) if parts.password else None
        redact.register(password, username)
        try:
            port = parts.port
        except ValueError:
            port = None
        return Origin(
            url=url,
            scheme=scheme,
            host=(parts.hostname or "").lower(),
            port=port,
            path=_clean_path(parts.path),
            username=username,
            password=password,
        )
    match = _SCP_LIKE.match(url)
    if match and not os.path.exists(url):
        return Origin(
            url=url,
            scheme="ssh",
            host=match["host"].lower(),
            port=None,
            path=_clean_path(match["path"]),
            username=match["user"],
        )
    return Origin(url=url, scheme="file", host="", port=None, path=_clean_path(url))


def _clean_path(path: str) -> str:
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[: -len(".git")]
    return path


def detect_provider(origin: Origin) -> str:
    """The -scm-provider default: from the host, else from well-known hints, else github (spec §2)."""
    host = origin.host
    if host == "github.com" or host.endswith(".github.com"):
        return "github"
    if host == "gitlab.com":
        return "gitlab"
    if host == "bitbucket.org":
        return "bitbucket-cloud"
    # Beyond the original: self-hosted servers say what they are often enough to not guess github.
    ci_gitlab = os.environ.get("CI_SERVER_HOST", "").lower()
    if host and (host == ci_gitlab or host.startswith("gitlab.")):
        return "gitlab"
    if origin.path.startswith("scm/") or "/scm/" in f"/{origin.path}" or host.startswith("bitbucket."):
        return "bitbucket-server"
    return "github"
