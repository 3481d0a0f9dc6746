"""Where the token comes from (spec §6), in one place for git and for the provider APIs.

First found wins:
  1. the tool's own: -token-file, or UPDATE_GITOPS_REPO_TOKEN (+ UPDATE_GITOPS_REPO_USERNAME);
  2. the provider's usual variables (GITHUB_TOKEN, GITLAB_TOKEN, CI_JOB_TOKEN, BITBUCKET_*);
  3. git's credential helpers (`git credential fill`), which read ~/.git-credentials as Tekton
     writes it and understand its encodings (a non-default port is stored as host%3aPORT);
  4. user:token embedded in the origin URL.
The provider's API may take a credential of its own (`find_api_credential`: -api-token-file, or
UPDATE_GITOPS_REPO_API_TOKEN), e.g. when git pushes with GitLab's CI_JOB_TOKEN, which the merge-request
API refuses; without one, the API uses git's. A source whose name does not say what kind of token it
holds (the tool's own, git's helpers, the origin URL) holds one of UPDATE_GITOPS_REPO_TOKEN_TYPE
(`token`, the default, or `oauth`: an OAuth2 access token, which GitLab takes as Bearer only).
Tokens are never put on a command line: git gets them through environment variables only.
What is found is a `Credential` (updater/values.py, shared with the provider adapters).
"""

from __future__ import annotations

import os
import subprocess
import urllib.parse

from updater import redact
from updater.errors import UsageError
from updater.gitproc import config_env
from updater.values import BITBUCKET_API_TOKEN_GIT_USER, Credential

# No dataclasses, typing or pathlib at run time: every deploy pays for their import (docs/benchmarks.md).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from updater.values import Kind, Origin


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _read_token_file(path: str, flag: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            secret = fh.read().strip()
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise UsageError(f"{flag} {path}: not UTF-8 text (a token is); check the file") from None
    if not secret:
        raise UsageError(f"{flag} {path} is empty")
    return secret


TOKEN_TYPES = ("token", "oauth")


def _typed(found: Credential | None, provider: str) -> Credential | None:
    """UPDATE_GITOPS_REPO_TOKEN_TYPE applied to a credential whose source does not say its kind."""
    kind = (_env("UPDATE_GITOPS_REPO_TOKEN_TYPE") or "token").lower()
    if kind not in TOKEN_TYPES:
        raise UsageError(f"UPDATE_GITOPS_REPO_TOKEN_TYPE={kind}: use one of {', '.join(TOKEN_TYPES)}")
    if found is None or kind == "token" or found.kind != "token":
        return found
    # Bitbucket Cloud takes an OAuth2 access token as it takes its access tokens (Bearer, x-token-auth);
    # GitHub and Bitbucket Server take it as they take any token.
    oauth: Kind = "access-token" if provider == "bitbucket-cloud" else "oauth"
    return Credential(found.secret, found.username, oauth, found.source, found.api_username)


# What Bitbucket Cloud takes now that app passwords are gone (also said when git's push is refused).
BITBUCKET_CLOUD_ADVICE = (
    "create an Atlassian API token with scopes for Bitbucket and set BITBUCKET_EMAIL (the account "
    "e-mail) and BITBUCKET_API_TOKEN (git then uses BITBUCKET_USERNAME, else x-bitbucket-api-token-auth), "
    "or use a workspace, project or repository access token in BITBUCKET_ACCESS_TOKEN"
)


def _from_tool(token_file: str | None) -> Credential | None:
    username = _env("UPDATE_GITOPS_REPO_USERNAME")
    if token_file:
        secret = _read_token_file(token_file, "-token-file")
        return Credential(secret, username, "token", f"-token-file {token_file}")
    env_secret = _env("UPDATE_GITOPS_REPO_TOKEN")
    if env_secret:
        return Credential(env_secret, username, "token", "UPDATE_GITOPS_REPO_TOKEN")
    return None


def _from_provider_env(provider: str) -> Credential | None:
    if provider == "github":
        for name in ("GITHUB_TOKEN", "GH_TOKEN", "GH_ENTERPRISE_TOKEN"):
            if secret := _env(name):
                return Credential(secret, None, "token", name)
    elif provider == "gitlab":
        for name in ("GITLAB_TOKEN", "GL_TOKEN"):
            if secret := _env(name):
                return Credential(secret, None, "token", name)
        if secret := _env("GITLAB_OAUTH_TOKEN"):  # an OAuth2 access token: API Bearer, git user oauth2
            return Credential(secret, None, "oauth", "GITLAB_OAUTH_TOKEN")
        if secret := _env("CI_JOB_TOKEN"):
            return Credential(secret, None, "job-token", "CI_JOB_TOKEN")
    elif provider == "bitbucket-cloud":
        # An Atlassian API token: REST with the account e-mail, git with the Bitbucket username (or the
        # static x-bitbucket-api-token-auth). BITBUCKET_APP_PASSWORD is still read: with BITBUCKET_EMAIL
        # its value is taken for an API token, else for an app password (removed by Atlassian on
        # 2026-07-28, which a 401 then says).
        user, email = _env("BITBUCKET_USERNAME"), _env("BITBUCKET_EMAIL")
        for name in ("BITBUCKET_API_TOKEN", "BITBUCKET_APP_PASSWORD"):
            if (secret := _env(name)) and (email or name == "BITBUCKET_API_TOKEN"):
                return Credential(secret, user, "api-token", name, api_username=email)
        for name in ("BITBUCKET_ACCESS_TOKEN", "BITBUCKET_TOKEN"):
            if secret := _env(name):
                return Credential(secret, "x-token-auth", "access-token", name)
        if user and _env("BITBUCKET_APP_PASSWORD"):
            # Nothing usable beside it. Known before anything is written, and Bitbucket refuses it for
            # git and the API alike.
            raise UsageError(
                "BITBUCKET_USERNAME + BITBUCKET_APP_PASSWORD is an app password, which Atlassian removed on "
                f"2026-07-28: {BITBUCKET_CLOUD_ADVICE}; if BITBUCKET_APP_PASSWORD already holds an API "
                "token, set BITBUCKET_EMAIL to the Atlassian account e-mail"
            )
    elif provider == "bitbucket-server":
        for name in ("BITBUCKET_SERVER_TOKEN", "BITBUCKET_TOKEN"):
            if secret := _env(name):
                return Credential(secret, _env("BITBUCKET_USERNAME"), "token", name)
    return None


def git_credential_fill(origin: Origin) -> Credential | None:
    """Ask git's configured helpers (credential.helper = store reads ~/.git-credentials)."""
    if not origin.is_http:
        return None
    request = f"protocol={origin.scheme}\nhost={origin.netloc}\n"
    if origin.username:
        request += f"username={origin.username}\n"
    env = dict(os.environ)
    # Never prompt: no terminal, no askpass program; a missing credential is just "none found".
    env["GIT_TERMINAL_PROMPT"] = "0"
    for name in ("GIT_ASKPASS", "SSH_ASKPASS"):
        env.pop(name, None)
    env.update(config_env({"core.askPass": "", "credential.interactive": "never"}, env))
    try:
        done = subprocess.run(
            ["git", "credential", "fill"],
            input=request + "\n",
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    fields = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    secret = fields.get("password")
    if not secret:
        return None
    username = fields.get("username") or None
    redact.register(secret, username)
    return Credential(secret, username, "token", "git credential helper")


def find_credential(origin: Origin, provider: str, token_file: str | None = None) -> Credential | None:
    """The first credential found, in the order of spec §6; None if there is none anywhere."""
    found = (
        _typed(_from_tool(token_file), provider)
        or _from_provider_env(provider)
        or _typed(git_credential_fill(origin), provider)
    )
    if found is None and origin.password:
        found = _typed(Credential(origin.password, origin.username, "token", "origin URL"), provider)
    if found is not None:
        redact.register(found.secret, found.username)
        if found.username is None and origin.username and found.source != "origin URL":
            # Bitbucket needs a real username for git; the origin URL often carries it.
            found = Credential(found.secret, origin.username, found.kind, found.source, found.api_username)
        if provider == "bitbucket-cloud":
            found = _bitbucket_cloud_email(found)
            redact.register(found.secret, found.api_username)
            redact.register(found.secret, BITBUCKET_API_TOKEN_GIT_USER)
    return found


def find_api_credential(provider: str, api_token_file: str | None = None) -> Credential | None:
    """The provider API's own credential, when it is not git's: -api-token-file, else
    UPDATE_GITOPS_REPO_API_TOKEN; None means the API uses the credential git uses.

    Provider-neutral: any token the API takes, of UPDATE_GITOPS_REPO_TOKEN_TYPE. On Bitbucket Cloud it
    is an Atlassian API token when BITBUCKET_EMAIL is set (REST takes those with the e-mail), else an
    access token (Bearer).
    """
    if api_token_file:
        secret = _read_token_file(api_token_file, "-api-token-file")
        source = f"-api-token-file {api_token_file}"
    else:
        secret, source = _env("UPDATE_GITOPS_REPO_API_TOKEN") or "", "UPDATE_GITOPS_REPO_API_TOKEN"
        if not secret:
            return None
    redact.register(secret, None)
    found = _typed(Credential(secret, None, "token", source), provider)
    assert found is not None
    email = _env("BITBUCKET_EMAIL")
    if provider == "bitbucket-cloud" and found.kind == "token":
        if email:
            redact.register(secret, email)
            return Credential(secret, None, "api-token", source, api_username=email)
        return Credential(secret, None, "access-token", source)
    return found


def _bitbucket_cloud_email(found: Credential) -> Credential:
    """BITBUCKET_EMAIL joins a credential from any source that names a user: an API token stored for git
    (`https://USER:TOKEN@bitbucket.org` in ~/.git-credentials) then also reaches the REST API."""
    email = _env("BITBUCKET_EMAIL")
    user = found.username or ""
    if found.api_username or not email or found.kind in ("access-token", "app-password"):
        return found
    if found.kind == "api-token" or (user and user != "x-token-auth" and "@" not in user):
        return Credential(found.secret, found.username, found.kind, found.source, email)
    return found


# -- TLS trust and proxies: one setting that reaches both git and the API client ---------------------------

# Where the CA certificates to trust come from when -ca-bundle is not given; the first one set wins and is
# handed to git *and* the API client, because each reads only its own: git (libcurl-gnutls on Debian)
# ignores SSL_CERT_FILE and CURL_CA_BUNDLE, requests ignores SSL_CERT_FILE and GIT_SSL_CAINFO. The
# tool-neutral SSL_CERT_FILE comes first (it also beats REQUESTS_CA_BUNDLE, which the image sets to the
# system store); a directory is used only when no file is named. See docs/tls-and-proxies.md.
CA_VARIABLES = (
    "SSL_CERT_FILE",
    "GIT_SSL_CAINFO",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_DIR",
    "GIT_SSL_CAPATH",
)
PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")


class CaBundle:
    __slots__ = ("is_dir", "path", "source")

    def __init__(self, path: str, source: str, is_dir: bool = False) -> None:
        self.path = path  # absolute: git runs in the top of the checkout, not in the caller's directory
        self.source = source  # "-ca-bundle" or the variable it came from
        self.is_dir = is_dir

    def git_config(self) -> dict[str, str]:
        return {"http.sslCAPath" if self.is_dir else "http.sslCAInfo": self.path}

    def git_env(self) -> dict[str, str]:
        """git's own variable too: it beats every config setting, so an inherited one cannot disagree."""
        return {"GIT_SSL_CAPATH" if self.is_dir else "GIT_SSL_CAINFO": self.path}


def find_ca_bundle(flag: str | None = None) -> CaBundle | None:
    """-ca-bundle, else the first variable of CA_VARIABLES that is set; None means each tool's default.

    A source that names a missing, unreadable or certificate-less file is a usage error: it would fail
    every TLS connection later, after the commit.
    """
    if flag:
        return _ca_bundle(flag, "-ca-bundle", f"-ca-bundle {flag}")
    for name in CA_VARIABLES:
        if value := _env(name):
            return _ca_bundle(value, name, f"{name}={value}")
    return None


def _ca_bundle(path: str, source: str, where: str) -> CaBundle:
    fix = "" if source == "-ca-bundle" else f"; fix or unset {source}, or pass -ca-bundle"
    full = os.path.abspath(path)
    if os.path.isdir(full):
        if not os.access(full, os.R_OK | os.X_OK):
            raise UsageError(f"{where}: cannot read the directory{fix}")
        return CaBundle(full, source, is_dir=True)
    try:
        with open(full, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise UsageError(f"{where}: cannot read it ({exc.strerror}){fix}") from None
    if b"-----BEGIN CERTIFICATE-----" not in data and b"-----BEGIN TRUSTED CERTIFICATE-----" not in data:
        raise UsageError(f"{where} holds no PEM certificate (-----BEGIN CERTIFICATE-----){fix}")
    return CaBundle(full, source)


def proxy_env() -> dict[str, str]:
    """Proxy settings for git, beyond what it reads itself; registers every proxy password for redaction.

    git (libcurl) and requests read the same variables (https_proxy, no_proxy, …), with one gap: libcurl
    ignores an upper-case HTTP_PROXY (httpoxy) that requests honours, so git gets it as http_proxy.
    """
    for name in PROXY_VARIABLES:
        if value := _env(name):
            parts = urllib.parse.urlsplit(value if "://" in value else f"http://{value}")
            if parts.password:
                user = urllib.parse.unquote(parts.username or "")
                redact.register(urllib.parse.unquote(parts.password), user)
                redact.register(parts.password, user)
    upper = _env("HTTP_PROXY")
    return {"http_proxy": upper} if upper and not _env("http_proxy") else {}
