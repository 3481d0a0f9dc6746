"""GitHub Apps on the fake GitHub: JWT authentication, installations, installation access tokens.

Modelled on docs.github.com ("Generating a JSON Web Token (JWT) for a GitHub App", "Generating an
installation access token for a GitHub App", the REST reference for `GET /repos/{owner}/{repo}/installation`
and `POST /app/installations/{installation_id}/access_tokens`) and on the answers GitHub gives as users
report them verbatim:

- the JWT must be RS256, signed with one of the App's keys, `iss` the App's client ID or its numeric ID;
  an `iss` naming no App → 404 *Integration not found*; a signature that does not verify (another key,
  another App's ID) or a token that is no JWT → 401 *A JSON web token could not be decoded*;
- `exp` at most 10 minutes after the server's now (else 401 *'Expiration time' claim ('exp') is too far in
  the future*), and in the future (else 401 *'Expiration time' claim ('exp') must be a numeric value
  representing the future time at which the assertion expires*); `iat` not after the server's now (401
  *'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued*).
  `clock_offset` moves the fake's clock to play a CI machine whose clock is off;
- the repository's installation: 404 when the App is not installed on it (or cannot see it);
- a token for an installation of another App, or none → 404; a suspended installation → 403 *This
  installation has been suspended*; `repositories` naming one the installation cannot reach → 422 *There
  is at least one repository that does not exist or is not accessible to the parent installation.*;
  `permissions` beyond the installation's → 422 *The permissions requested are not granted to this
  installation.*;
- a token (`ghs_…`) with `expires_at` one hour ahead and the installation's `permissions`, accepted by the
  fake's REST API within those permissions and repositories (else 403 *Resource not accessible by
  integration* with `X-Accepted-GitHub-Permissions`, or 404 for a repository outside the token), and
  handed to `on_token` (e.g. `GitServer.allow_token`) so that git accepts it too.

    with FakeGitHubApps(on_token=git_server.allow_token) as gh:
        app = gh.add_app("gitops-bot")
        gh.install(app, "acme")                       # every repository of acme
        ... GITHUB_APP_ID=app.id, GITHUB_APP_PRIVATE_KEY=app.private_key_pem ...
"""

from __future__ import annotations

import functools
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.wrappers import Request, Response

from tests.fakes.github import DOCS, FakeGitHub, GitHubError, Token, _id, _now

APPS_DOCS = f"{DOCS}/apps/apps"
JWT_NOT_DECODED = "A JSON web token could not be decoded"
EXP_TOO_FAR = "'Expiration time' claim ('exp') is too far in the future"
EXP_PAST = (
    "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the "
    "assertion expires"
)
IAT_FUTURE = (
    "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
)
REPOS_NOT_ACCESSIBLE = (
    "There is at least one repository that does not exist or is not accessible to the parent installation."
)
PERMISSIONS_NOT_GRANTED = "The permissions requested are not granted to this installation."
SUSPENDED = "This installation has been suspended"
NOT_ACCESSIBLE = "Resource not accessible by integration"
DEFAULT_PERMISSIONS = {"contents": "write", "pull_requests": "write", "metadata": "read", "members": "read"}
_LEVEL = {"read": 1, "write": 2, "admin": 3}


@functools.lru_cache(maxsize=8)
def _key(name: str) -> rsa.RSAPrivateKey:
    """One RSA key per name, made once per test process (2048 bits, as GitHub's)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class FakeApp:
    id: int
    client_id: str
    slug: str
    key: rsa.RSAPrivateKey
    permissions: dict[str, str]
    owner: str = "acme"

    @property
    def private_key_pem(self) -> str:
        """What GitHub's "Generate a private key" downloads: PKCS#1, -----BEGIN RSA PRIVATE KEY-----."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()

    @property
    def bot_login(self) -> str:
        return f"{self.slug}[bot]"


@dataclass
class FakeInstallation:
    id: int
    app: FakeApp
    account: str
    repositories: set[str] | None  # repository names; None: all of the account's
    permissions: dict[str, str]
    suspended: bool = False
    created_at: str = ""

    def reaches(self, owner: str, name: str) -> bool:
        return owner.lower() == self.account.lower() and (
            self.repositories is None or name.lower() in {r.lower() for r in self.repositories}
        )


@dataclass
class MintedToken:
    token: str
    installation: FakeInstallation
    permissions: dict[str, str]
    repositories: set[str] | None  # names the token is scoped to; None: the installation's
    expires_at: float
    minted_at: float = field(default_factory=time.time)


class FakeGitHubApps(FakeGitHub):
    """FakeGitHub that also answers as GitHub does to Apps (see the module's docstring)."""

    def __init__(
        self,
        prefix: str = "/api/v3",
        host: str = "127.0.0.1",
        *,
        on_token: Callable[[str], None] | None = None,
        clock_offset: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(prefix, host, **kwargs)
        self.apps: dict[int, FakeApp] = {}
        self.installations: dict[int, FakeInstallation] = {}
        self.minted: dict[str, MintedToken] = {}
        self.on_token = on_token
        self.clock_offset = clock_offset  # seconds the fake's clock is ahead of this machine's

    # -- scripting ------------------------------------------------------------------------------------

    def add_app(
        self, slug: str = "gitops-bot", *, permissions: dict[str, str] | None = None, owner: str = "acme"
    ) -> FakeApp:
        app_id = 100000 + len(self.apps) + 1
        client_id = f"Iv23li{secrets.token_hex(7)}"
        app = FakeApp(app_id, client_id, slug, _key(slug), dict(permissions or DEFAULT_PERMISSIONS), owner)
        self.apps[app_id] = app
        return app

    def install(
        self,
        app: FakeApp,
        account: str,
        repositories: Iterable[str] | None = None,
        *,
        permissions: dict[str, str] | None = None,
        suspended: bool = False,
    ) -> FakeInstallation:
        installation = FakeInstallation(
            id=_id("installation", app.id, account) % 90_000_000 + 10_000_000,
            app=app,
            account=account,
            repositories=None if repositories is None else set(repositories),
            permissions=dict(permissions if permissions is not None else app.permissions),
            suspended=suspended,
            created_at=_now(),
        )
        self.installations[installation.id] = installation
        return installation

    def minted_tokens(self) -> list[MintedToken]:
        return list(self.minted.values())

    # -- dispatch -------------------------------------------------------------------------------------

    def _handle(self, request: Request, path: str) -> Response:
        if match := re.fullmatch(r"/app/installations/(\d+)/access_tokens", path):
            if request.method != "POST":
                raise GitHubError(404, "Not Found")
            return self._mint(request, int(match[1]))
        if (match := re.fullmatch(r"/repos/([^/]+)/([^/]+)/installation", path)) and request.method == "GET":
            return self._repo_installation(request, match[1], match[2])
        self._check_installation_token(request, path)
        return super()._handle(request, path)

    def _now(self) -> float:
        return time.time() + self.clock_offset

    def _app_from_jwt(self, request: Request) -> FakeApp:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or value.count(".") != 2:
            raise GitHubError(401, JWT_NOT_DECODED)
        try:
            claims = jwt.decode(value, options={"verify_signature": False})
            header = jwt.get_unverified_header(value)
        except jwt.PyJWTError:
            raise GitHubError(401, JWT_NOT_DECODED) from None
        issuer = str(claims.get("iss", ""))
        app = next((a for a in self.apps.values() if issuer in (str(a.id), a.client_id)), None)
        if app is None:
            raise GitHubError(404, "Integration not found")
        if header.get("alg") != "RS256":
            raise GitHubError(401, JWT_NOT_DECODED)
        try:
            jwt.decode(
                value,
                app.key.public_key(),
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False},
            )
        except jwt.PyJWTError:
            raise GitHubError(401, JWT_NOT_DECODED) from None
        now, exp, iat = self._now(), claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or exp <= now:
            raise GitHubError(401, EXP_PAST)
        if exp > now + 600:
            raise GitHubError(401, EXP_TOO_FAR)
        if not isinstance(iat, int) or iat > now:
            raise GitHubError(401, IAT_FUTURE)
        return app

    def _repo_installation(self, request: Request, owner: str, name: str) -> Response:
        app = self._app_from_jwt(request)
        doc = f"{APPS_DOCS}#get-a-repository-installation-for-the-authenticated-app"
        repo = self.repos.get(f"{owner}/{name}".lower())
        found = next(
            (
                i
                for i in self.installations.values()
                if i.app is app and repo is not None and i.reaches(repo.owner, repo.name)
            ),
            None,
        )
        if found is None:
            raise GitHubError(404, "Not Found", doc=doc)
        return self._json(self._installation_json(found), 200)

    def _mint(self, request: Request, installation_id: int) -> Response:
        app = self._app_from_jwt(request)
        doc = f"{APPS_DOCS}#create-an-installation-access-token-for-an-app"
        installation = self.installations.get(installation_id)
        if installation is None or installation.app is not app:
            raise GitHubError(404, "Not Found", doc=doc)
        if installation.suspended:
            raise GitHubError(403, SUSPENDED, doc=doc)
        body = self._body(request) or {}
        if not isinstance(body, dict):
            raise GitHubError(400, "Problems parsing JSON")
        names = body.get("repositories")
        scoped: set[str] | None = None
        if names is not None:
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise GitHubError(422, "Invalid request.", doc=doc)
            for name in names:
                repo = self.repos.get(f"{installation.account}/{name}".lower())
                if repo is None or not installation.reaches(repo.owner, repo.name):
                    raise GitHubError(422, REPOS_NOT_ACCESSIBLE, doc=doc)
            scoped = {n.lower() for n in names}
        permissions = dict(installation.permissions)
        asked = body.get("permissions")
        if asked is not None:
            if not isinstance(asked, dict) or any(
                _LEVEL.get(level, 9) > _LEVEL.get(installation.permissions.get(name, ""), 0)
                for name, level in asked.items()
            ):
                raise GitHubError(422, PERMISSIONS_NOT_GRANTED, doc=doc)
            permissions = dict(asked)
        token = "ghs_" + secrets.token_hex(18)
        expires = self._now() + 3600
        self.minted[token] = MintedToken(token, installation, permissions, scoped, expires)
        self.tokens[token] = Token(app.bot_login, "write")
        if self.on_token is not None:
            self.on_token(token)
        repos = [
            r
            for r in self.repos.values()
            if installation.reaches(r.owner, r.name) and (scoped is None or r.name.lower() in scoped)
        ]
        payload = {
            "token": token,
            "expires_at": _iso(expires),
            "permissions": permissions,
            "repository_selection": "selected" if scoped is not None or installation.repositories else "all",
            "repositories": [self._repo_json(r) for r in repos],
        }
        return self._json(payload, 201)

    def _check_installation_token(self, request: Request, path: str) -> None:
        """An installation token reaches its repositories with its permissions, nothing more."""
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        minted = self.minted.get(value.strip()) if scheme.lower() in ("token", "bearer") else None
        if minted is None:
            return
        if minted.expires_at <= self._now():
            raise GitHubError(401, "Bad credentials")
        match = re.match(r"/repos/([^/]+)/([^/]+)(/.*)?$", path)
        if match is None:
            raise GitHubError(403, NOT_ACCESSIBLE)
        owner, name, rest = match[1], match[2], match[3] or ""
        repo = self.repos.get(f"{owner}/{name}".lower())
        reachable = minted.installation.reaches(owner, name) and (
            minted.repositories is None or name.lower() in minted.repositories
        )
        if repo is None or not reachable:
            raise GitHubError(404, "Not Found", doc=f"{DOCS}/repos/repos#get-a-repository")
        need = _permission_for(request.method, rest)
        if need is None:
            return
        permission, level = need
        if _LEVEL.get(minted.permissions.get(permission, ""), 0) < _LEVEL[level]:
            raise GitHubError(
                403, NOT_ACCESSIBLE, headers={"X-Accepted-GitHub-Permissions": f"{permission}={level}"}
            )

    def _installation_json(self, installation: FakeInstallation) -> dict[str, Any]:
        app = installation.app
        return {
            "id": installation.id,
            "client_id": app.client_id,
            "account": self._user_json(installation.account),
            "repository_selection": "all" if installation.repositories is None else "selected",
            "access_tokens_url": f"{self.api_url}/app/installations/{installation.id}/access_tokens",
            "repositories_url": f"{self.api_url}/installation/repositories",
            "html_url": f"{self.web_url}/organizations/{installation.account}/settings/installations/{installation.id}",
            "app_id": app.id,
            "app_slug": app.slug,
            "target_id": _id("user", installation.account),
            "target_type": "Organization",
            "permissions": dict(installation.permissions),
            "events": ["pull_request", "push"],
            "created_at": installation.created_at,
            "updated_at": installation.created_at,
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "suspended_by": None,
            "suspended_at": None,
        }


def _permission_for(method: str, rest: str) -> tuple[str, str] | None:
    """The permission GitHub's REST reference lists for each call the adapter makes."""
    write = method not in ("GET", "HEAD")
    if rest == "":
        return ("metadata", "read")
    if rest.startswith("/pulls") and rest.endswith("/merge"):
        return ("contents", "write")
    if rest.startswith("/pulls"):
        return ("pull_requests", "write" if write else "read")
    if rest.startswith("/issues"):
        return ("pull_requests", "write" if write else "read")
    return None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
