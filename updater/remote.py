"""The origin remote, parsed once: where the repository lives and which provider serves it.

Handles https/http URLs (with or without user:token@ and a port), ssh:// URLs, scp-like
`git@host:owner/repo.git`, and local paths / file:// URLs (tests, mirrors), which have no host.
"""

from __future__ import annotations

import os
import re
import urllib.parse

from updater import redact
from updater.errors import GitError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from updater.credentials import Credential
    from updater.flags import Options

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


def detect_provider(origin: Origin) -> str:
    """The -scm-provider default: from the host, else from well-known hints, else github (spec §2)."""
    return recognise_provider(origin) or "github"


def recognise_provider(origin: Origin) -> str | None:
    """The provider the origin itself names; None when the github default would only be a guess."""
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
    if os.environ.get("GITHUB_SERVER_URL", "").lower().rstrip("/").endswith(f"//{host}") and host:
        return "github"  # GitHub Actions on this very server (Enterprise included)
    return None


def is_loopback(host: str) -> bool:
    """This machine, by name or address: plain http to it crosses no network. No DNS is asked."""
    import ipaddress

    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_plain_http(url: str, what: str, allowed: bool) -> None:
    """A token sent over http to another machine can be read by anyone on the path: refuse unless asked."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "http" or allowed or is_loopback(parts.hostname or ""):
        return
    raise UsageError(
        f"{what} {parts.scheme}://{parts.netloc.rpartition('@')[2]} is plain http: the token would cross the "
        "network unencrypted; use https, or pass -allow-insecure-http if that network is trusted"
    )


class Remote:
    """origin, the provider serving it, and how git authenticates to it: settled before any write."""

    __slots__ = ("auth_env", "ca_bundle", "credential", "origin", "provider", "target")

    def __init__(
        self,
        origin: Origin,
        provider: str,
        credential: Credential | None,
        auth_env: dict[str, str],
        target: str,
        ca_bundle: str | None = None,
    ) -> None:
        self.origin = origin
        self.provider = provider
        self.credential = credential
        self.auth_env = auth_env
        self.target = target  # what git pushes to: "origin", or origin's URL without the user:token in it
        self.ca_bundle = ca_bundle  # the CA certificates git and the API client both trust; None: defaults


def resolve_remote(opts: Options, origin_url: str | None) -> Remote:
    """origin, its provider, the credential and CA bundle, and git's auth environment, settled up front."""
    import providers
    from updater import log
    from updater.credentials import PROXY_VARIABLES, find_ca_bundle, find_credential, proxy_env
    from updater.gitproc import config_env

    if origin_url is None:
        raise GitError("the repository has no remote named origin: add it with 'git remote add origin URL'")
    origin = parse_origin(origin_url)
    provider = opts.scm_provider or recognise_provider(origin)
    if provider is None:
        provider = "github"
        if opts.create_pull_request and not opts.api_endpoint:
            log.warn(
                f"-scm-provider not given and {origin.host or 'the origin'} does not say which forge it is: "
                "guessed github (set -scm-provider to be sure)"
            )
    providers.check_name(provider)
    # One CA bundle and one set of proxies for git and the API client (docs/tls-and-proxies.md).
    ca = find_ca_bundle(opts.ca_bundle or None)
    env = proxy_env()
    credential = find_credential(origin, provider, opts.token_file or None)
    settings: dict[str, str] = {}
    if credential is not None and origin.is_http:
        refuse_plain_http(origin.url, "origin", opts.allow_insecure_http)
        settings.update(credential.git_env(provider))
        # git sends our header; its credential helpers must stay out of it. Otherwise a refused token
        # makes git ask them, retry with what they hold and, when that fails too, tell them to erase
        # it: a wrong GITHUB_TOKEN would delete the user's stored credential. The empty value clears
        # the helper list for the tool's own commands only.
        settings["credential.helper"] = ""
        log.debug(f"git authenticates to {origin.netloc} with the token from {credential.source}")
    if ca is not None:
        settings.update(ca.git_config())
        env.update(ca.git_env())
        log.debug(f"git and the API client trust the CA certificates in {ca.path} (from {ca.source})")
    proxies = [
        f"{n}={os.environ[n]}" for n in (*PROXY_VARIABLES, "no_proxy", "NO_PROXY") if os.environ.get(n)
    ]
    if proxies:
        log.debug(f"git and the API client use the proxy settings {' '.join(proxies)}")
    # git hands a URL with user:token@ to its http helper on the command line, visible in `ps`:
    # talk to the same URL without it and send the token as a header instead.
    target = origin.url_without_credentials if origin.is_http and origin.password else "origin"
    auth_env = {**(config_env(settings) if settings else {}), **env}
    return Remote(origin, provider, credential, auth_env, target, ca.path if ca else None)
