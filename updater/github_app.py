"""Authenticating as a GitHub App installation: one installation access token for git and the API.

Configured by environment variables only (the key is a secret, and the IDs travel with it):

  GITHUB_APP_CLIENT_ID or GITHUB_APP_ID   the JWT's issuer (GitHub recommends the client ID, Iv23…);
  GITHUB_APP_PRIVATE_KEY_FILE             the .pem file GitHub generated for the App, or
  GITHUB_APP_PRIVATE_KEY                  its content (PEM; `\\n`-escaped or base64-encoded PEM works too);
  GITHUB_APP_INSTALLATION_ID              optional: else found from the repository.

The flow, all of it before anything is written or pushed (updater/remote.py settles the credential up
front): sign a JWT with the key (RS256; iat 60 s in the past, exp 9 minutes ahead, within GitHub's 10),
find the installation (`GET /repos/{owner}/{repo}/installation`, unless GITHUB_APP_INSTALLATION_ID is
set), then mint ONE installation access token scoped to this repository (`POST
/app/installations/{id}/access_tokens`). git sends it as `x-access-token`, the adapter as its API token.
The token's `permissions` are checked against what the run needs (Contents write to push, Pull requests
write to open one), so a missing permission fails before the push, not after it.

Where it sits in the order of updater/credentials.py: after the tool's own token (-token-file,
UPDATE_GITOPS_REPO_TOKEN, which name a token for this very tool), before GITHUB_TOKEN and the other
ambient tokens (inside GitHub Actions GITHUB_TOKEN is always set; an App configured for the run means
the App). The key, the JWT and the token are registered for redaction as soon as they are read or made.

Imports PyJWT and cryptography (PyGithub's own dependencies) and requests only when an App is
configured: a run without one loads nothing of this beyond the variable check. Imports no provider
(tests/test_architecture.py): the API root comes from updater/values.py, which the adapter shares.
"""

from __future__ import annotations

import os

from updater import redact
from updater.errors import ProviderError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from updater.flags import Options
    from updater.values import Credential, Origin

ISSUER_VARIABLES = ("GITHUB_APP_CLIENT_ID", "GITHUB_APP_ID")
KEY_VARIABLES = ("GITHUB_APP_PRIVATE_KEY_FILE", "GITHUB_APP_PRIVATE_KEY")
INSTALLATION_VARIABLE = "GITHUB_APP_INSTALLATION_ID"
GIT_USERNAME = "x-access-token"
# The JWT's lifetime, as GitHub's docs advise: issued 60 s in the past against clock drift, and expiring
# well inside GitHub's 10-minute limit (a clock a little ahead would otherwise make it "too far").
JWT_BACKDATE = 60
JWT_LIFETIME = 540
TIMEOUT = 30.0
RETRIES = 2  # connection failures, 429 and 5xx: a mint is cheap to repeat (an unused token just expires)
BACKOFF = 0.5
API_VERSION = "2022-11-28"
_DOCS = "https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app"


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


class App:
    """A configured GitHub App: who signs (issuer), with which key, for which installation."""

    __slots__ = ("installation_id", "issuer", "issuer_source", "key", "key_source")

    def __init__(
        self, issuer: str, issuer_source: str, key: Any, key_source: str, installation_id: int | None
    ) -> None:
        self.issuer = issuer  # a client ID (Iv23…) or a numeric App ID
        self.issuer_source = issuer_source  # the variable it came from, for messages
        self.key = key  # a cryptography RSA private key; never printed
        self.key_source = key_source
        self.installation_id = installation_id

    def __repr__(self) -> str:
        return f"App(issuer={self.issuer!r}, installation_id={self.installation_id!r})"

    @property
    def label(self) -> str:
        return f"GitHub App {self.issuer} ({self.issuer_source})"

    def jwt(self, now: float | None = None) -> str:
        """A JWT signed with the App's key, as GitHub wants it (RS256, iat/exp/iss)."""
        import time

        import jwt  # PyJWT, PyGithub's dependency: loaded only for an App

        issued = int(time.time() if now is None else now)
        # iss is a string, the App ID too: GitHub takes both spellings, PyJWT only this one.
        token: str = jwt.encode(
            {"iat": issued - JWT_BACKDATE, "exp": issued + JWT_LIFETIME, "iss": self.issuer},
            self.key,
            algorithm="RS256",
        )
        redact.register(token)
        return token


def configured(token_file: str | None = None) -> App | None:
    """The App the environment configures; None when none is, or when the tool's own token wins.

    Half a configuration (an ID without a key, a key without an ID, an installation ID alone), an
    unreadable key file or a key that is not a PEM RSA private key is a usage error: it can only be
    fixed by the person who set the variables.
    """
    issuers = [(name, value) for name in ISSUER_VARIABLES if (value := _env(name))]
    keys = [(name, value) for name in KEY_VARIABLES if (value := _env(name))]
    installation = _env(INSTALLATION_VARIABLE)
    if not issuers and not keys:
        if installation:
            raise UsageError(
                f"{INSTALLATION_VARIABLE} is set but no GitHub App: set GITHUB_APP_CLIENT_ID (or "
                "GITHUB_APP_ID) and GITHUB_APP_PRIVATE_KEY_FILE (or GITHUB_APP_PRIVATE_KEY) too"
            )
        return None
    if token_file or _env("UPDATE_GITOPS_REPO_TOKEN"):
        from updater import log

        which = f"-token-file {token_file}" if token_file else "UPDATE_GITOPS_REPO_TOKEN"
        log.warn(f"{which} is used: it comes before the GitHub App that GITHUB_APP_* configure")
        return None
    if not issuers:
        raise UsageError(
            f"{keys[0][0]} is set but not the App's ID: set GITHUB_APP_CLIENT_ID (the App's client ID, "
            "Iv23…, on its settings page) or GITHUB_APP_ID"
        )
    if not keys:
        raise UsageError(
            f"{issuers[0][0]} is set but not the App's private key: set GITHUB_APP_PRIVATE_KEY_FILE (the "
            ".pem file generated in the App's settings) or GITHUB_APP_PRIVATE_KEY (its content)"
        )
    if len(keys) > 1:
        raise UsageError(
            "both GITHUB_APP_PRIVATE_KEY_FILE and GITHUB_APP_PRIVATE_KEY are set: set only one of them"
        )
    issuer_source, issuer = issuers[0]  # the client ID first, as GitHub recommends
    if not (issuer.isascii() and all(c.isalnum() or c in "._-" for c in issuer)):
        raise UsageError(f"{issuer_source}={issuer} is neither a numeric App ID nor a client ID (Iv23…)")
    installation_id = None
    if installation is not None:
        if not installation.isdigit():
            raise UsageError(
                f"{INSTALLATION_VARIABLE}={installation} is not a number: the installation's ID is the "
                "number at the end of its settings URL (…/settings/installations/ID)"
            )
        installation_id = int(installation)
    key_source, value = keys[0]
    return App(issuer, issuer_source, _private_key(key_source, value), key_source, installation_id)


def _private_key(source: str, value: str) -> Any:
    """The RSA private key, from a file or from the variable's content; never quoted in a message."""
    if source == "GITHUB_APP_PRIVATE_KEY_FILE":
        where = f"{source} {value}"
        try:
            with open(value, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise UsageError(f"{where}: cannot read it ({exc.strerror})") from None
    else:
        where = source
        data = value.encode()
        if b"-----BEGIN" not in data and b"\\n" not in data:
            import binascii

            try:  # the whole PEM base64-encoded, as some secret stores keep multi-line values
                data = binascii.a2b_base64(data)
            except (binascii.Error, ValueError):
                data = value.encode()
        data = data.replace(b"\\n", b"\n")  # a PEM written on one line with \n escapes
    text = data.decode("utf-8", "replace").strip()
    redact.register(text)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("-----")]
    for part in ("".join(lines), *lines):  # the body whole and each line of it, however a message cut it
        redact.register(part)
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError) as exc:
        encrypted = "encrypted" in str(exc).lower() or "password" in str(exc).lower()
        why = (
            "it is encrypted; use the unencrypted .pem GitHub generated"
            if encrypted
            else "not a PEM private key"
        )
        raise UsageError(
            f"{where}: {why} (GitHub generates one per App as a .pem file, -----BEGIN RSA PRIVATE KEY-----)"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise UsageError(f"{where}: not an RSA private key; GitHub Apps sign their JWTs with RSA (RS256)")
    return key


# -- minting ---------------------------------------------------------------------------------------------


def settle(
    opts: Options,
    origin: Origin,
    ca_bundle: str | None,
    refuse_plain_http: Callable[[str, str, bool], None],
) -> Credential | None:
    """The installation token as the run's credential, when an App is configured (else None)."""
    app = configured(opts.token_file or None)
    if app is None:
        return None
    from updater import values

    api = values.github_api_base(origin, opts.api_endpoint or None)
    refuse_plain_http(api, "the API endpoint", opts.allow_insecure_http)
    return mint(
        app,
        origin,
        api,
        ca_bundle,
        need_pull_requests=opts.create_pull_request,
        team_reviewers=any("/" in r for r in opts.reviewers),
    )


def mint(
    app: App,
    origin: Origin,
    api: str,
    ca_bundle: str | None = None,
    *,
    need_pull_requests: bool = True,
    team_reviewers: bool = False,
) -> Credential:
    """Find the installation (unless given), mint one token for this repository, check its permissions."""
    from updater import log
    from updater.values import Credential, github_repo

    owner, repo = github_repo(origin)
    call = _Caller(app, owner, repo, ca_bundle)
    installation_id = app.installation_id
    slug = None
    if installation_id is None:
        found = call("GET", f"{api}/repos/{owner}/{repo}/installation", None)
        installation_id, slug = int(found["id"]), found.get("app_slug")
        log.debug(f"{app.label}: installation {installation_id} serves {owner}/{repo}")
    url = f"{api}/app/installations/{installation_id}/access_tokens"
    minted = call("POST", url, installation_id, {"repositories": [repo]})
    token = minted.get("token")
    if not isinstance(token, str) or not token:
        raise ProviderError(f"{app.label}: GitHub's answer to POST {url} holds no token")
    redact.register(token, GIT_USERNAME)
    source = f"{app.label}, installation {installation_id}"
    _check_permissions(minted.get("permissions") or {}, source, need_pull_requests, team_reviewers)
    log.debug(
        f"{source}: minted an installation token for {owner}/{repo}, expiring {minted.get('expires_at')}"
        + (f"; commits name the App if git config sets user.name '{slug}[bot]'" if slug else "")
    )
    return Credential(token, GIT_USERNAME, "token", source)


def _session(ca_bundle: str | None) -> Any:
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    session = requests.Session()
    retry = Retry(
        total=RETRIES,
        backoff_factor=BACKOFF,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=None,  # the mint too: a second token for the same run does no harm
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    session.mount("https://", HTTPAdapter(max_retries=retry))
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.verify = ca_bundle or True
    session.headers.update(
        {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "update-gitops-repo",
        }
    )
    return session


class _Caller:
    """The App's requests for one run: one JWT, one session, the same wording for every refusal."""

    def __init__(self, app: App, owner: str, repo: str, ca_bundle: str | None) -> None:
        self.app, self.owner, self.repo, self.ca_bundle = app, owner, repo, ca_bundle
        self.session = _session(ca_bundle)
        self.jwt = app.jwt()

    def __call__(
        self, method: str, url: str, installation_id: int | None, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        import requests

        what, label = f"{method} {url}", self.app.label
        try:
            response = self.session.request(
                method, url, json=body, headers={"Authorization": f"Bearer {self.jwt}"}, timeout=TIMEOUT
            )
        except requests.exceptions.SSLError:
            from updater.values import tls_hint

            raise ProviderError(
                f"{label}: TLS verification failed for {what}; {tls_hint(self.ca_bundle)}"
            ) from None
        except requests.RequestException as exc:
            raise ProviderError(
                f"{label}: cannot reach {what} ({type(exc).__name__}) to mint an installation token; "
                "check -api-endpoint, the network and any proxy"
            ) from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code in (200, 201) and isinstance(payload, dict):
            return payload
        message = _one_line(payload.get("message") if isinstance(payload, dict) else response.text)
        refusal = _refusal(
            response.status_code, message, what, self.app, self.owner, self.repo, installation_id
        )
        raise ProviderError(redact.redact(refusal))


def _refusal(
    status: int,
    message: str,
    what: str,
    app: App,
    owner: str,
    repo: str,
    installation_id: int | None,
) -> str:
    answer = f"{status} {message}".strip()
    lowered = message.lower()
    if status == 401 and ("'exp'" in lowered or "'iat'" in lowered or "expiration" in lowered):
        return (
            f"GitHub refused the JWT of {app.label} ({answer}; {what}): this machine's clock is off by "
            f"more than a minute (the JWT runs from {JWT_BACKDATE} s before its now to {JWT_LIFETIME // 60} "
            "minutes after); synchronise the clock (NTP) and rerun"
        )
    if status == 401:
        return (
            f"GitHub refused the JWT of {app.label} ({answer}; {what}): the private key from "
            f"{app.key_source} is not a current key of that App (wrong App ID or client ID, or a deleted "
            "key); generate a private key in the App's settings, or fix the ID"
        )
    if status == 404 and "integration not found" in lowered:
        return (
            f"GitHub has no {app.label} ({answer}; {what}): check the App's client ID or ID on its "
            "settings page, and -api-endpoint for GitHub Enterprise"
        )
    if status == 404 and installation_id is None:
        return (
            f"{app.label} is not installed on {owner}/{repo} ({answer}; {what}): install the App on the "
            f"repository or its organisation, or set {INSTALLATION_VARIABLE}"
        )
    if status == 404:
        return (
            f"{app.label} has no installation {installation_id} ({answer}; {what}): check "
            f"{INSTALLATION_VARIABLE}, or unset it to find the installation from the repository"
        )
    if status == 422 and "repositor" in lowered:
        return (
            f"installation {installation_id} of {app.label} cannot reach {owner}/{repo} ({answer}; {what}): "
            "add the repository to the installation's repository access (organisation settings, GitHub "
            "Apps, Configure)"
        )
    if status in (403, 422):
        return (
            f"GitHub refused to mint an installation token for {app.label}, installation "
            f"{installation_id} ({answer}; {what}): check that the installation is active and has the "
            "permissions the App asks for (Contents and Pull requests: read and write)"
        )
    return f"GitHub answered {answer} to {what} for {app.label}; rerun later, or check -api-endpoint"


_LEVELS = {"read": 1, "write": 2, "admin": 3}


def _check_permissions(
    permissions: dict[str, str], source: str, need_pull_requests: bool, team_reviewers: bool
) -> None:
    """What the run needs of the token, checked before anything is pushed."""
    needs = [("contents", "Contents", "push the branch")]
    if need_pull_requests:
        needs.append(("pull_requests", "Pull requests", "open the pull request"))
    missing = [
        f"{label}: read and write to {why} (it has {permissions.get(key, 'none')})"
        for key, label, why in needs
        if _LEVELS.get(permissions.get(key, ""), 0) < _LEVELS["write"]
    ]
    if missing:
        raise ProviderError(
            f"the installation token of {source} lacks " + "; ".join(missing) + ": add the permissions in "
            "the App's settings, then accept them for the installation (a changed App asks the owner first)"
        )
    if team_reviewers and "members" not in permissions:
        from updater import log

        log.warn(f"{source} has no Members: read permission: requesting review from a team may fail")


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())[:300]
