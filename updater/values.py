"""The values the core and the provider adapters share, in one leaf module both sides import.

- `Origin` / `parse_origin`: origin's URL split into host, port, repository path and any user:token
  (https/http with or without credentials and a port, ssh:// URLs, scp-like `git@host:owner/repo.git`,
  and local paths / file:// URLs, which have no host);
- `Credential`: the token found for it (updater/credentials.py finds it) and how git sends it;
- `tls_hint`: what to do about a certificate that did not verify, said alike by git's errors and the
  adapters'.

It imports nothing from `providers` and, from `updater`, only the leaf module redact: `providers/` can
be read (and imported) without the core, and the core without `providers/`, whose registry is
consulted from updater/pull_request.py only (tests/test_architecture.py checks all of this).
Plain classes, no dataclasses, typing or pathlib at run time: every deploy imports this module, and
would pay for theirs (docs/benchmarks.md).
"""

from __future__ import annotations

import binascii
import os
import re
import urllib.parse

from updater import redact

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal

    Kind = Literal["token", "job-token", "oauth", "app-password", "access-token", "api-token"]

# -- origin ------------------------------------------------------------------------------------------------

_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/]+)@)?(?P<host>[^:/]+):(?P<path>(?!//).+)$")


class Origin:
    """origin's URL split into the parts the providers and the credential lookup need.

    A plain class, like the others on a deploy's path: importing dataclasses costs every run ~5 ms.
    """

    __slots__ = ("host", "password", "path", "port", "scheme", "url", "username")

    def __init__(
        self,
        url: str,
        scheme: str,
        host: str,
        port: int | None,
        path: str,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.url = url  # as configured; may hold user:token, never print it
        self.scheme = scheme  # https, http, ssh, file
        self.host = host  # "" for local remotes
        self.port = port
        self.path = path  # without leading "/" and trailing ".git": "group/sub/repo", "scm/PROJ/repo"
        self.username = username
        self.password = password

    def __repr__(self) -> str:
        return f"Origin({self.display!r})"

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


# -- the credential ----------------------------------------------------------------------------------------

# The username git should send with a token when none is known, per provider. Forges ignore it for
# PATs, but some require a specific one (GitLab job tokens, Bitbucket Cloud access tokens).
GIT_USERNAME = {
    "github": "x-access-token",
    "gitlab": "oauth2",
    "bitbucket-cloud": "x-token-auth",
    "bitbucket-server": "x-token-auth",
}
# Bitbucket Cloud's git username for an Atlassian API token when the account's Bitbucket username is not
# given; its REST API wants the account's e-mail instead (Credential.api_username), which git refuses.
BITBUCKET_API_TOKEN_GIT_USER = "x-bitbucket-api-token-auth"


class Credential:
    __slots__ = ("api_username", "kind", "secret", "source", "username")

    def __init__(
        self, secret: str, username: str | None, kind: Kind, source: str, api_username: str | None = None
    ) -> None:
        self.secret = secret  # never in a repr, a message or a command line
        self.username = username
        self.kind = kind
        self.source = source  # where it was found, for -verbose and error messages; never the value
        # The username the REST API wants when it is not git's: a Bitbucket Cloud API token's e-mail.
        self.api_username = api_username

    def __repr__(self) -> str:
        return (
            f"Credential(kind={self.kind!r}, username={self.username!r}, source={self.source!r}, "
            f"api_username={self.api_username!r})"
        )

    def git_username(self, provider: str) -> str:
        if self.kind == "job-token":
            return "gitlab-ci-token"
        if self.kind == "oauth" and provider == "gitlab":
            return "oauth2"  # GitLab takes an OAuth2 access token over HTTPS with this username only
        if provider == "bitbucket-cloud" and (
            (self.kind == "api-token" and not self.username) or "@" in (self.username or "")
        ):
            # git over HTTPS takes an API token with the Bitbucket username or this static one, never
            # with the e-mail the REST API wants.
            return BITBUCKET_API_TOKEN_GIT_USER
        return self.username or GIT_USERNAME.get(provider, "x-access-token")

    def git_env(self, provider: str) -> dict[str, str]:
        """An http.extraHeader for git, passed only through the environment (git >= 2.31)."""
        if provider == "bitbucket-server" and not self.username:
            # Project and repository access tokens belong to no user: Bitbucket Server accepts them for
            # git over HTTPS only as a Bearer token.
            return {"http.extraHeader": f"Authorization: Bearer {self.secret}"}
        basic = binascii.b2a_base64(f"{self.git_username(provider)}:{self.secret}".encode(), newline=False)
        return {"http.extraHeader": f"Authorization: Basic {basic.decode()}"}


def tls_hint(ca_bundle: str | None) -> str:
    """What to do about a certificate that did not verify, for git's errors and every adapter's."""
    if ca_bundle:
        return (
            f"the CA certificates in {ca_bundle} do not include the one that signed the server's "
            "certificate; pass the right ones with -ca-bundle=FILE.pem or SSL_CERT_FILE"
        )
    return "pass the server's CA certificates with -ca-bundle=FILE.pem or set SSL_CERT_FILE"


# -- GitHub's API root: the adapter (providers/github.py) and the App token minting (updater/github_app.py)

GITHUB_PUBLIC_API = "https://api.github.com"
# ssh.github.com serves git over ssh on port 443 for networks that block port 22.
_GITHUB_PUBLIC_HOSTS = frozenset({"github.com", "www.github.com", "ssh.github.com"})


def is_ghe_com(host: str) -> bool:
    """GitHub Enterprise Cloud with data residency: the enterprise's own subdomain, SUB.ghe.com."""
    sub, dot, domain = host.rpartition(".ghe.com")
    return bool(dot) and not domain and bool(sub) and not sub.startswith("api.")


def github_api_base(origin: Origin, override: str | None = None) -> str:
    """The REST API root for a GitHub origin (spec §6), without a trailing slash.

    github.com → api.github.com; GitHub Enterprise Cloud with data residency (SUB.ghe.com) →
    https://api.SUB.ghe.com; GitHub Enterprise Server → <scheme>://<host>/api/v3. Inside GitHub Actions,
    GITHUB_API_URL when GITHUB_SERVER_URL names origin's host.
    """
    from updater.errors import ProviderError

    if override:
        return override.rstrip("/")
    # Inside GitHub Actions these name the server the workflow runs on, Enterprise included.
    server, api = os.environ.get("GITHUB_SERVER_URL", ""), os.environ.get("GITHUB_API_URL", "")
    if (
        server
        and api
        and origin.host
        and (urllib.parse.urlsplit(server).hostname or "").lower() == origin.host
    ):
        return api.rstrip("/")
    if origin.host in _GITHUB_PUBLIC_HOSTS:
        return GITHUB_PUBLIC_API
    if not origin.host:
        raise ProviderError(
            "cannot derive the GitHub API endpoint from a local origin; pass -api-endpoint=https://HOST/api/v3"
        )
    if is_ghe_com(origin.host):
        # Served from its own api. subdomain, like api.github.com, not from /api/v3 (always https).
        return f"https://api.{origin.host}"
    return f"{origin.web_base}/api/v3"


def github_repo(origin: Origin) -> tuple[str, str]:
    """(owner, repo) from a GitHub origin's path; a local mirror laid out as .../owner/repo.git too."""
    from updater.errors import ProviderError

    parts = [p for p in origin.path.split("/") if p]
    if origin.scheme == "file" and len(parts) >= 2:
        parts = parts[-2:]  # a local mirror: the last two parts name the repository
    if len(parts) != 2:
        raise ProviderError(
            f"origin path '{origin.path}' is not owner/repo, which every GitHub repository URL has; "
            "check the origin remote"
        )
    return parts[0], parts[1]
