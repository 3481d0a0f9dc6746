"""A stateful fake of the Bitbucket Cloud REST API 2.0, on a real socket (pytest-httpserver).

It serves the part of https://api.bitbucket.org/2.0 that providers/bitbucket_cloud.py (and the
atlassian-python-api object model) use, and behaves like the real service where that matters:

- auth, as Atlassian documents it since app passwords went (2026-07-28): an Atlassian API token is
  Basic `e-mail:token` on the REST API (the Bitbucket username does not work there), and git over
  HTTPS takes it with the Bitbucket username or `x-bitbucket-api-token-auth` but not the e-mail
  (`accepts_git`); an access token is `Bearer <token>` (git: `x-token-auth`); an app password
  (Basic `username:app-password`) works until `app_passwords_removed` is set. A failed Basic login
  answers 401 in plain text ("Login failed due to incorrect login credentials or method." and a link,
  as the service does), a failed Bearer token 401 with the JSON error "Token is invalid, expired, or
  not supported for this endpoint."; both with `WWW-Authenticate: Basic realm="Bitbucket.org HTTP"`.
  Each credential carries scopes (an API token the granular `read:pullrequest:bitbucket` kind), and
  an endpoint the scopes do not cover answers 403 with Bitbucket's "lack one or more required
  privilege scopes" error (detail = required/granted, an object);
- repositories with a main branch; pull requests with state, source/destination, author, reviewers
  (left out of listings, as the real service does), draft, tasks and approvals;
- listings paginated with `pagelen`, `page`, `size`, `next`, `previous`, `values`, filtered by
  `state` (repeatable, default OPEN) and by the subset of BBQL `q` the adapter uses:
  `field = "string"` / `!=` / `~` joined with AND (anything else is a 400, so nobody relies on it);
- trailing slashes accepted on every path (the SDK lists `.../pullrequests/`);
- create (title and source required, reviewers by {uuid} or account_id, unknown ones refused with
  "Malformed reviewers list"), update (PUT: title required, omitted reviewers are dropped),
  merge (the six strategies, checked against what the destination branch allows, which every pull
  request shows as destination.branch.merge_strategies/default_merge_strategy; draft, conflicts,
  approvals, unresolved tasks, an already merged pull request -> 400 error shape
  `{"type":"error","error":{"message":...}}`; a scripted refusal for other statuses such as 409;
  a scripted slow merge answers 202 + Location to a task-status resource that is PENDING, then
  SUCCESS with merge_result or a 400 error, as Atlassian documents; a scripted lost answer merges
  and then answers a 5xx, as a proxy whose upstream timed out would);
- commit statuses (builds) of a pull request's source commit, `GET …/pullrequests/{id}/statuses`
  (developer.atlassian.com/cloud/bitbucket/rest/api-group-pullrequests, "List commit statuses for a
  pull request"; the status object of api-group-commit-statuses: key, name, state SUCCESSFUL, FAILED,
  INPROGRESS or STOPPED, url, refname, created_on, updated_on), set with `set_status`; with
  `require_passing_builds` on the repository (the "no failed builds" / "minimum successful builds"
  merge checks), a merge is refused while a build is failed, stopped or in progress (400, approximated
  wording). Bitbucket Cloud has no auto-merge API;
- scriptable faults before auth (429 with Retry-After, 5xx from the edge), and a request log of
  `Exchange` records that tests/fakes/openapi_check.py validates against the vendor description.

Every object carries `type` and `links.self.href`/`links.html.href` pointing back at this fake, as
the SDK follows `links.self.href`. Status codes Atlassian does not document (merge refusals) are
the closest documented behaviour; messages mimic the real ones and are marked where approximated.

Usage (also from an end-to-end test that runs the CLI as a subprocess against `api_url`):

    with FakeBitbucketCloud() as bb:
        bb.add_user("ci-bot", "app-password")
        bb.add_repo("team", "gitops", mainbranch="main")
        ... -api-endpoint=bb.api_url ...
        assert bb.pulls[0].state == "OPEN"
"""

from __future__ import annotations

import base64
import hashlib
import html
import itertools
import json
import re
import subprocess
import threading
import traceback
import urllib.parse
import uuid as uuidlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.fakes.openapi_check import Exchange

STATES = ("OPEN", "MERGED", "DECLINED", "SUPERSEDED")
STRATEGIES = (
    "merge_commit",
    "squash",
    "fast_forward",
    "squash_fast_forward",
    "rebase_fast_forward",
    "rebase_merge",
)
API_TOKEN_GIT_USER = "x-bitbucket-api-token-auth"
# An Atlassian API token's default scopes here: what this tool needs (pushing and pull requests).
API_TOKEN_SCOPES = (
    "read:repository:bitbucket",
    "write:repository:bitbucket",
    "read:pullrequest:bitbucket",
    "write:pullrequest:bitbucket",
)
# The granular scope of an API token that stands for each classic scope an operation needs.
GRANULAR_SCOPES = {
    "repository": "read:repository:bitbucket",
    "repository:write": "write:repository:bitbucket",
    "pullrequest": "read:pullrequest:bitbucket",
    "pullrequest:write": "write:pullrequest:bitbucket",
}
# Observed answers to a failed login (a Basic one in plain text, a Bearer one as Bitbucket's error).
LOGIN_FAILED = (
    "Login failed due to incorrect login credentials or method.\n"
    "For information on authentication methods for Bitbucket Cloud APIs, visit:\n"
    "    https://developer.atlassian.com/cloud/bitbucket/rest/intro/#authentication\n"
)
TOKEN_INVALID = "Token is invalid, expired, or not supported for this endpoint."
MAX_PAGELEN = 50  # the real service's ceiling for pull request listings
DEFAULT_PAGELEN = 10
# What each scope implies (Bitbucket's scope documentation): pullrequest:write needs the repository
# writable to merge, so it implies repository:write.
IMPLIED_SCOPES: dict[str, frozenset[str]] = {
    "pullrequest:write": frozenset({"pullrequest", "repository:write", "repository"}),
    "pullrequest": frozenset({"repository"}),
    "repository:admin": frozenset({"repository:write", "repository"}),
    "repository:write": frozenset({"repository"}),
}
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Logged(Exchange):
    """An exchange plus what the fake knows about it."""

    fault: bool = False  # injected by fail_next(): an edge/proxy answer, not part of the API contract
    account: str | None = None  # display name of the authenticated credential


@dataclass(eq=False)
class Account:
    """A Bitbucket user (or the bot user behind an access token)."""

    display_name: str
    uuid: str
    account_id: str
    nickname: str
    username: str | None = None  # the Bitbucket username: Basic auth with an app password, git
    email: str | None = None  # the Atlassian account e-mail: Basic auth with an API token (REST)
    app_password: str | None = field(default=None, repr=False)
    api_token: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)  # an access token (Bearer)
    scopes: frozenset[str] = frozenset()

    def granted(self) -> frozenset[str]:
        scopes = set(self.scopes)
        for scope in self.scopes:
            scopes |= IMPLIED_SCOPES.get(scope, frozenset())
        return frozenset(scopes)

    def allows(self, scope: str, via_api_token: bool) -> bool:
        """Whether the credential used covers the classic `scope` an operation needs. An API token's
        granular scopes imply nothing: each operation needs its own."""
        if via_api_token:
            return GRANULAR_SCOPES[scope] in self.scopes
        return scope in self.granted()


@dataclass(eq=False)
class FakeRepo:
    workspace: str
    slug: str
    mainbranch: str | None = "main"
    branches: set[str] | None = None  # the branch names; None with git_dir None: accept any branch
    git_dir: Path | None = None  # a bare repository (the git server's) whose refs are read live
    merge_strategies: tuple[str, ...] = STRATEGIES
    default_merge_strategy: str = "merge_commit"
    # Per-branch settings (a branching model or branch restriction), else the repository's above.
    branch_merge_strategies: dict[str, tuple[str, ...]] = field(default_factory=dict)
    required_approvals: int = 0
    require_tasks_resolved: bool = False
    require_passing_builds: bool = False
    private: bool = True
    uuid: str = field(default_factory=lambda: "{" + str(uuidlib.uuid4()) + "}")
    next_id: int = 1

    @property
    def full_name(self) -> str:
        return f"{self.workspace}/{self.slug}"

    def strategies_for(self, branch: str) -> tuple[str, ...]:
        return self.branch_merge_strategies.get(branch, self.merge_strategies)

    def default_strategy_for(self, branch: str) -> str:
        allowed = self.strategies_for(branch)
        return self.default_merge_strategy if self.default_merge_strategy in allowed else allowed[0]

    def has_branch(self, name: str) -> bool:
        if self.git_dir is not None:
            return self._git("rev-parse", "--verify", "--quiet", f"refs/heads/{name}").returncode == 0
        return self.branches is None or name in self.branches

    def commit_of(self, name: str) -> str | None:
        """The branch tip's hash as Bitbucket abbreviates it (12 digits), when the repo knows it."""
        if self.git_dir is None:
            return None
        done = self._git("rev-parse", "--verify", "--quiet", f"refs/heads/{name}")
        return done.stdout.strip()[:12] or None

    def has_changes(self, source: str, destination: str) -> bool:
        """Whether source has commits destination lacks ("There are no changes to be pulled")."""
        if self.git_dir is None:
            return True
        return (
            self._git(
                "merge-base", "--is-ancestor", f"refs/heads/{source}", f"refs/heads/{destination}"
            ).returncode
            != 0
        )

    def _git(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "--git-dir", str(self.git_dir), *args], capture_output=True, text=True, check=False
        )


@dataclass(eq=False)
class FakePull:
    id: int
    repo: FakeRepo
    title: str
    description: str
    source: str
    destination: str
    author: Account
    reviewers: list[Account] = field(default_factory=list)
    state: str = "OPEN"
    draft: bool = False
    close_source_branch: bool = False
    unresolved_tasks: int = 0
    approvals: set[str] = field(default_factory=set)  # account uuids
    conflicts: bool = False
    statuses: dict[str, str] = field(
        default_factory=dict
    )  # build key -> SUCCESSFUL/FAILED/INPROGRESS/STOPPED
    source_repo: FakeRepo | None = None  # a fork the change comes from; None: the same repository
    source_hash: str = ""
    destination_hash: str = ""
    merge_commit: str | None = None
    merge_strategy: str | None = None
    closed_by: Account | None = None
    created_on: datetime = _EPOCH
    updated_on: datetime = _EPOCH


@dataclass
class _Fault:
    status: int
    remaining: int
    retry_after: str | None
    body: bytes | None
    method: str | None
    path: str | None  # regex searched in the path relative to /2.0


@dataclass
class _MergeTask:
    pull: FakePull
    strategy: str
    close_source_branch: bool
    message: str | None
    account: Account
    pending_polls: int
    fail_message: str | None
    done: bool = False


class _Reply(Exception):
    """Unwinds a handler with an HTTP answer (errors mostly)."""

    def __init__(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None, *, edge: bool = False
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.edge = edge  # an answer of the edge/proxy, not of the API (logged as a fault)


def _error(
    status: int, message: str, *, fields: dict[str, list[str]] | None = None, detail: Any = None
) -> _Reply:
    error: dict[str, Any] = {"message": message}
    if fields:
        error["fields"] = fields
    if detail is not None:
        error["detail"] = detail
    return _Reply(status, {"type": "error", "error": error})


def _field_error(name: str, problem: str) -> _Reply:
    # The real service's validation error shape: one line in message, the details in fields.
    return _error(400, f"{name}: {problem}", fields={name: [problem]})


class FakeBitbucketCloud:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self._lock = threading.RLock()
        self._server = HTTPServer(host=host, port=0, threaded=True)
        self._server.expect_request(re.compile(".*")).respond_with_handler(self._app)
        self._server.start()
        self.reset()

    # -- lifecycle ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every repository, account, pull request, fault and logged request."""
        with self._lock:
            self.repos: dict[str, FakeRepo] = {}
            self.accounts: list[Account] = []
            self._pulls: list[FakePull] = []
            self.requests: list[Logged] = []
            self.errors: list[str] = []  # exceptions inside the fake: a test should fail on any
            self._faults: list[_Fault] = []
            self._merge_refusals: list[tuple[int, str]] = []
            self._slow_merges: list[tuple[int, str | None, str | None]] = []
            self._lost_merge_answers: list[int] = []
            # Atlassian removed app passwords on 2026-07-28; False plays the service before that day.
            self.app_passwords_removed = True
            self._tasks: dict[str, _MergeTask] = {}
            self._clock = itertools.count(1)
            self._hashes = itertools.count(1)

    def close(self) -> None:
        if self._server.is_running():
            self._server.stop()

    def __enter__(self) -> FakeBitbucketCloud:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def web_url(self) -> str:
        """Plays https://bitbucket.org: the host of `links.html.href`."""
        return self._server.url_for("/").rstrip("/")

    @property
    def api_url(self) -> str:
        """Plays https://api.bitbucket.org/2.0: what -api-endpoint should be set to."""
        return self._server.url_for("/2.0")

    # -- scripting ----------------------------------------------------------------------------

    def add_user(
        self,
        username: str,
        app_password: str,
        *,
        scopes: Iterable[str] = ("pullrequest:write",),
        display_name: str | None = None,
    ) -> Account:
        """An account with an app password: Basic `username:app_password`, until app_passwords_removed."""
        account = self._account(display_name or username, nickname=username)
        account.username, account.app_password, account.scopes = username, app_password, frozenset(scopes)
        return account

    def add_api_token(
        self,
        email: str,
        api_token: str,
        *,
        username: str,
        scopes: Iterable[str] = API_TOKEN_SCOPES,
        display_name: str | None = None,
    ) -> Account:
        """An Atlassian account with an API token: REST takes Basic `email:api_token`, git the token with
        `username` (the Bitbucket username) or x-bitbucket-api-token-auth."""
        account = self._account(display_name or username, nickname=username)
        account.username, account.email, account.api_token = username, email, api_token
        account.scopes = frozenset(scopes)
        return account

    def accepts_git(self, username: str, password: str) -> bool:
        """Whether git over HTTPS would be let in with Basic `username:password` (Atlassian's rules)."""
        with self._lock:
            for account in self.accounts:
                if account.api_token and password == account.api_token:
                    return username in (account.username, API_TOKEN_GIT_USER)
                if account.token and password == account.token:
                    return username == "x-token-auth"
                if account.app_password and password == account.app_password:
                    return username == account.username and not self.app_passwords_removed
            return False

    def add_access_token(
        self, token: str, *, scopes: Iterable[str] = ("pullrequest:write",), name: str = "gitops bot"
    ) -> Account:
        """A workspace/project/repository access token: Bearer auth, acting as a bot user."""
        account = self._account(name, nickname=re.sub(r"\W+", "-", name))
        account.token, account.scopes = token, frozenset(scopes)
        return account

    def add_account(self, display_name: str) -> Account:
        """A user without credentials here, e.g. a reviewer."""
        return self._account(display_name, nickname=re.sub(r"\W+", "-", display_name.lower()))

    def add_repo(
        self, workspace: str, slug: str, *, git_dir: str | Path | None = None, **settings: Any
    ) -> FakeRepo:
        """settings: mainbranch, branches, merge_strategies, default_merge_strategy,
        required_approvals, require_tasks_resolved, private.

        Branches: `branches=` a set of names, or `git_dir=` the bare repository a git server pushes
        into (its refs are read live, so a pull request needs its source branch pushed first), or
        neither to accept any branch name."""
        with self._lock:
            repo = FakeRepo(workspace, slug, git_dir=Path(git_dir) if git_dir else None, **settings)
            if repo.branches is not None and repo.mainbranch:
                repo.branches.add(repo.mainbranch)
            self.repos[repo.full_name.lower()] = repo
            return repo

    def add_pull(
        self,
        repo: FakeRepo,
        source: str,
        destination: str | None = None,
        *,
        title: str = "existing change",
        description: str = "",
        author: Account | None = None,
        state: str = "OPEN",
        reviewers: Iterable[Account] = (),
        **attributes: Any,
    ) -> FakePull:
        """A pull request that exists before the test (made in the web UI, by another run...)."""
        with self._lock:
            if author is None:
                author = self.accounts[0] if self.accounts else self.add_account("someone")
            pull = self._new_pull(
                repo, title, description, source, destination or repo.mainbranch or "main", author
            )
            pull.state = state
            pull.reviewers = list(reviewers)
            for name, value in attributes.items():
                setattr(pull, name, value)
            return pull

    def set_status(self, pull: FakePull, key: str, state: str) -> None:
        """A build reports `state` on the pull request's source commit."""
        assert state in ("SUCCESSFUL", "FAILED", "INPROGRESS", "STOPPED"), state
        with self._lock:
            pull.statuses[key] = state

    def pull(self, repo: FakeRepo, number: int) -> FakePull:
        return next(p for p in self._pulls if p.repo is repo and p.id == number)

    @property
    def pulls(self) -> list[FakePull]:
        with self._lock:
            return list(self._pulls)

    def fail_next(
        self,
        status: int,
        times: int = 1,
        *,
        retry_after: int | str | None = None,
        method: str | None = None,
        path: str | None = None,
        body: bytes | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status`, before auth, as an edge would."""
        with self._lock:
            after = None if retry_after is None else str(retry_after)
            self._faults.append(_Fault(status, times, after, body, method, path))

    def refuse_next_merge(self, status: int, message: str) -> None:
        """A merge refusal the model does not cover (a custom merge check, a concurrent change)."""
        with self._lock:
            self._merge_refusals.append((status, message))

    def lose_next_merge_answer(self, status: int = 502) -> None:
        """The next merge is carried out, but its answer is a `status` from the edge (the upstream
        timed out): what the client sees of a merge that in fact went through."""
        with self._lock:
            self._lost_merge_answers.append(status)

    def slow_next_merge(
        self, polls: int = 1, fail_message: str | None = None, *, location_base: str | None = None
    ) -> None:
        """The next merge answers 202 + Location; task-status is PENDING `polls` times, then done.

        location_base: the API root the Location names instead of this fake's (the real service names
        https://api.bitbucket.org/2.0 even to a client that came through a proxy)."""
        with self._lock:
            self._slow_merges.append((polls, fail_message, location_base))

    # -- the server ---------------------------------------------------------------------------

    def _app(self, request: Request) -> Response:
        with self._lock:
            rel = request.path[len("/2.0") :] if request.path.startswith("/2.0/") else None
            account: Account | None = None
            fault = self._take_fault(request.method, rel or request.path)
            try:
                if fault is not None:
                    raise fault
                if rel is None:
                    raise _error(404, "Resource not found")
                account, via_api_token = self._authenticate(request)
                reply = self._route(request, rel, account, via_api_token)
            except _Reply as answer:
                reply = answer
            except Exception:  # a bug in the fake: make it loud, never a plausible answer
                self.errors.append(traceback.format_exc())
                reply = _Reply(500, {"type": "error", "error": {"message": "fake crashed"}})
            headers = dict(reply.headers)
            if isinstance(reply.body, bytes):
                body = reply.body
            elif reply.body is None:
                body = b""
            else:
                body = json.dumps(reply.body).encode()
                headers.setdefault("Content-Type", "application/json")
            self.requests.append(
                Logged(
                    method=request.method,
                    path=rel if rel is not None else request.path,
                    query=request.query_string.decode("latin-1"),
                    request_headers=dict(request.headers),
                    request_body=request.get_data(),
                    status=reply.status,
                    response_headers=headers,
                    response_body=body,
                    fault=fault is not None or reply.edge,
                    account=account.display_name if account else None,
                )
            )
            return Response(body, status=reply.status, headers=headers)

    def _take_fault(self, method: str, path: str) -> _Reply | None:
        for fault in self._faults:
            if fault.method and fault.method.upper() != method.upper():
                continue
            if fault.path and not re.search(fault.path, path):
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            if fault.status == 429:
                headers["Content-Type"] = "text/plain"
                body = fault.body or b"Rate limit for this resource has been exceeded"
            else:
                headers["Content-Type"] = "text/html"
                body = (
                    fault.body
                    or f"<html><body><h1>{fault.status}</h1>upstream unavailable</body></html>".encode()
                )
            return _Reply(fault.status, body, headers)
        return None

    def _authenticate(self, request: Request) -> tuple[Account, bool]:
        """The account, and whether it came in with an API token (whose scopes are granular)."""
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        challenge = {"WWW-Authenticate": 'Basic realm="Bitbucket.org HTTP"'}
        if scheme.lower() == "basic":
            try:
                username, _, password = base64.b64decode(value).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                username, password = "", ""
            for account in self.accounts:
                # An API token goes with the account e-mail only: not the username, not git's static one.
                if account.api_token and (account.email, account.api_token) == (username, password):
                    return account, True
                # An app password goes with the username only, never the e-mail; and no more at all
                # once they are removed.
                if (
                    account.app_password
                    and not self.app_passwords_removed
                    and (account.username, account.app_password) == (username, password)
                ):
                    return account, False
            raise _Reply(401, LOGIN_FAILED.encode(), {**challenge, "Content-Type": "text/plain"})
        if scheme.lower() == "bearer":
            found = next((a for a in self.accounts if a.token and a.token == value.strip()), None)
            if found is not None:
                return found, False
            raise _Reply(401, {"type": "error", "error": {"message": TOKEN_INVALID}}, challenge)
        raise _Reply(401, LOGIN_FAILED.encode(), {**challenge, "Content-Type": "text/plain"})

    _REPO = r"^/repositories/(?P<ws>[^/]+)/(?P<slug>[^/]+)"
    _ROUTES: tuple[tuple[str, str, str, str], ...] = (
        # (method, path regex, handler, scope the operation needs)
        ("GET", _REPO + r"/?$", "_get_repo", "repository"),
        ("GET", _REPO + r"/pullrequests/?$", "_list_pulls", "pullrequest"),
        ("POST", _REPO + r"/pullrequests/?$", "_create_pull", "pullrequest:write"),
        ("GET", _REPO + r"/pullrequests/(?P<id>\d+)/?$", "_get_pull", "pullrequest"),
        ("PUT", _REPO + r"/pullrequests/(?P<id>\d+)/?$", "_update_pull", "pullrequest:write"),
        ("POST", _REPO + r"/pullrequests/(?P<id>\d+)/merge/?$", "_merge_pull", "pullrequest:write"),
        ("GET", _REPO + r"/pullrequests/(?P<id>\d+)/statuses/?$", "_list_statuses", "pullrequest"),
        (
            "GET",
            _REPO + r"/pullrequests/(?P<id>\d+)/merge/task-status/(?P<task>[^/]+)/?$",
            "_merge_task_status",
            "pullrequest",
        ),
    )

    def _route(self, request: Request, rel: str, account: Account, via_api_token: bool) -> _Reply:
        path_matched = False
        for method, pattern, handler_name, scope in self._ROUTES:
            match = re.match(pattern, rel)
            if match is None:
                continue
            path_matched = True
            if method != request.method:
                continue
            if not account.allows(scope, via_api_token):
                # Approximated for API tokens: the same error, naming the granular scope.
                required = GRANULAR_SCOPES[scope] if via_api_token else scope
                raise _error(
                    403,
                    "Your credentials lack one or more required privilege scopes.",
                    detail={"required": [required], "granted": sorted(account.scopes)},
                )
            repo = self.repos.get(f"{match['ws']}/{match['slug']}".lower())
            if repo is None:
                raise _error(
                    404,
                    "You may not have access to this repository or it no longer exists in this "
                    "workspace. If you think this repository exists and you have access, make sure you "
                    "are authenticated.",
                )
            handler: Callable[..., _Reply] = getattr(self, handler_name)
            params = {k: v for k, v in match.groupdict().items() if k not in ("ws", "slug")}
            return handler(request, account, repo, **params)
        if path_matched:
            raise _error(405, f"Method {request.method} is not allowed on this resource")
        raise _error(404, "Resource not found")

    # -- handlers -----------------------------------------------------------------------------

    def _get_repo(self, request: Request, account: Account, repo: FakeRepo) -> _Reply:
        return _Reply(200, self._repo_json(repo, full=True))

    def _list_pulls(self, request: Request, account: Account, repo: FakeRepo) -> _Reply:
        states = request.args.getlist("state") or ["OPEN"]
        for state in states:
            if state.upper() not in STATES:
                raise _error(400, f"state: '{state}' is not a valid pull request state")
        wanted = {s.upper() for s in states}
        match = _parse_query(request.args.get("q", ""))
        pagelen = _int_arg(request, "pagelen", DEFAULT_PAGELEN)
        page = _int_arg(request, "page", 1)
        pagelen = min(pagelen, MAX_PAGELEN)
        found = sorted(
            (p for p in self._pulls if p.repo is repo and p.state in wanted and match(p)),
            key=lambda p: -p.id,
        )
        start = (page - 1) * pagelen
        body: dict[str, Any] = {
            "pagelen": pagelen,
            "page": page,
            "size": len(found),
            # Listings leave out reviewers: the real service includes them only on the self URL.
            "values": [self._pull_json(p, full=False) for p in found[start : start + pagelen]],
        }
        if start + pagelen < len(found):
            body["next"] = self._page_url(request, page + 1)
        if page > 1:
            body["previous"] = self._page_url(request, page - 1)
        return _Reply(200, body)

    def _create_pull(self, request: Request, account: Account, repo: FakeRepo) -> _Reply:
        data = _json_body(request)
        title = data.get("title")
        if not isinstance(title, str) or not title:
            raise _field_error("title", "This field is required.")
        source = _branch_name(data, "source")
        if not source:
            raise _field_error("source", "This field is required.")
        destination = _branch_name(data, "destination") or repo.mainbranch
        if not destination:
            raise _field_error("destination", "This field is required.")
        for name, branch in (("source", source), ("destination", destination)):
            if not repo.has_branch(branch):
                raise _field_error(name, f"branch not found: {branch}")  # approximated wording
        if source == destination or not repo.has_changes(source, destination):
            raise _error(400, "There are no changes to be pulled")
        description = _optional(data, "description", str, "")
        close = _optional(data, "close_source_branch", bool, False)  # null accepted, as from the SDK
        draft = _optional(data, "draft", bool, False)
        reviewers = self._resolve_reviewers(data, account)
        pull = self._new_pull(repo, title, description, source, destination, account)
        pull.close_source_branch, pull.draft, pull.reviewers = close, draft, reviewers
        body = self._pull_json(pull, full=True)
        return _Reply(201, body, {"Location": body["links"]["self"]["href"]})

    def _get_pull(self, request: Request, account: Account, repo: FakeRepo, id: str) -> _Reply:
        return _Reply(200, self._pull_json(self._find_pull(repo, id), full=True))

    def _update_pull(self, request: Request, account: Account, repo: FakeRepo, id: str) -> _Reply:
        pull = self._find_pull(repo, id)
        if pull.state != "OPEN":
            raise _error(400, "Only open pull requests can be updated")  # approximated wording
        data = _json_body(request)
        title = data.get("title")
        # Observed: a PUT without the title is refused, whatever else it changes.
        if not isinstance(title, str) or not title:
            raise _field_error("title", "This field is required.")
        pull.title = title
        if "description" in data:
            pull.description = _optional(data, "description", str, "")
        # Observed: the reviewers list is replaced as a whole, and leaving it out removes everybody.
        pull.reviewers = self._resolve_reviewers(data, pull.author)
        if "close_source_branch" in data:
            pull.close_source_branch = _optional(data, "close_source_branch", bool, False)
        if "draft" in data:
            pull.draft = _optional(data, "draft", bool, False)
        pull.updated_on = self._now()
        return _Reply(200, self._pull_json(pull, full=True))

    def _list_statuses(self, request: Request, account: Account, repo: FakeRepo, id: str) -> _Reply:
        pull = self._find_pull(repo, id)
        now = _iso(self._now())
        values = [
            {
                "type": "build",
                "key": key,
                "name": key,
                "state": state,
                "refname": pull.source,
                "url": f"{self.web_url}/ci/{key}",
                "description": "",
                "created_on": now,
                "updated_on": now,
                "links": {
                    "self": {
                        "href": f"{self._repo_href(repo)}/commit/{pull.source_hash}/statuses/build/{key}"
                    },
                    "commit": {"href": f"{self._repo_href(repo)}/commit/{pull.source_hash}"},
                },
            }
            for key, state in sorted(pull.statuses.items())
        ]
        return _Reply(200, {"pagelen": 10, "page": 1, "size": len(values), "values": values})

    def _merge_pull(self, request: Request, account: Account, repo: FakeRepo, id: str) -> _Reply:
        pull = self._find_pull(repo, id)
        data = _json_body(request) if request.get_data() else {}
        strategy = data.get("merge_strategy") or repo.default_strategy_for(pull.destination)
        if strategy not in STRATEGIES:
            raise _field_error("merge_strategy", f"'{strategy}' is not a valid merge strategy")
        close = _optional(data, "close_source_branch", bool, pull.close_source_branch)
        message = _optional(data, "message", str, None)
        if pull.state != "OPEN":
            raise _error(400, f"You can't merge a pull request that is {pull.state.lower()}.")  # approximated
        if pull.draft:
            raise _error(400, "You can't merge a draft pull request. Mark it as ready for review first.")
        allowed = repo.strategies_for(pull.destination)
        if strategy not in allowed:
            raise _error(  # approximated wording
                400,
                f"The {strategy} merge strategy is not allowed on {pull.destination} "
                f"(allowed: {', '.join(allowed)}).",
            )
        if self._merge_refusals:
            status, refusal = self._merge_refusals.pop(0)
            raise _error(status, refusal)
        if pull.conflicts:
            raise _error(400, "Conflicts during merge.")
        if len(pull.approvals) < repo.required_approvals:
            raise _error(
                400,
                f"You can't merge until this pull request has {repo.required_approvals} approval(s) "
                f"(it has {len(pull.approvals)}).",
            )
        if repo.require_passing_builds and any(s != "SUCCESSFUL" for s in pull.statuses.values()):
            raise _error(400, "You can't merge until all builds have passed.")  # approximated
        if repo.require_tasks_resolved and pull.unresolved_tasks:
            raise _error(400, f"You can't merge until all tasks are resolved ({pull.unresolved_tasks} open).")
        if self._slow_merges:
            polls, fail_message, location_base = self._slow_merges.pop(0)
            task_id = uuidlib.uuid4().hex
            self._tasks[task_id] = _MergeTask(pull, strategy, close, message, account, polls, fail_message)
            location = f"{self._pull_href(pull)}/merge/task-status/{task_id}"
            if location_base:
                location = location_base + location[len(self.api_url) :]
            return _Reply(202, None, {"Location": location})
        self._apply_merge(pull, strategy, close, account)
        if self._lost_merge_answers:
            status = self._lost_merge_answers.pop(0)
            body = f"<html><body><h1>{status}</h1>upstream request timeout</body></html>".encode()
            return _Reply(status, body, {"Content-Type": "text/html"}, edge=True)
        return _Reply(200, self._pull_json(pull, full=True))

    def _merge_task_status(
        self, request: Request, account: Account, repo: FakeRepo, id: str, task: str
    ) -> _Reply:
        pull = self._find_pull(repo, id)
        merge = self._tasks.get(task)
        if merge is None or merge.pull is not pull:
            raise _error(404, "Task not found")
        links = {"self": {"href": f"{self._pull_href(pull)}/merge/task-status/{task}"}}
        if merge.pending_polls > 0:
            merge.pending_polls -= 1
            return _Reply(200, {"task_status": "PENDING", "links": links})
        if merge.fail_message is not None:
            raise _error(400, merge.fail_message)
        if not merge.done:
            self._apply_merge(pull, merge.strategy, merge.close_source_branch, merge.account)
            merge.done = True
        return _Reply(
            200, {"task_status": "SUCCESS", "links": links, "merge_result": self._pull_json(pull, full=True)}
        )

    # -- model --------------------------------------------------------------------------------

    def _account(self, display_name: str, *, nickname: str) -> Account:
        with self._lock:
            number = len(self.accounts) + 1
            account = Account(
                display_name=display_name,
                uuid="{" + str(uuidlib.UUID(int=number)) + "}",
                account_id=f"557058:{uuidlib.UUID(int=1000 + number)}",
                nickname=nickname,
            )
            self.accounts.append(account)
            return account

    def _new_pull(
        self, repo: FakeRepo, title: str, description: str, source: str, destination: str, author: Account
    ) -> FakePull:
        now = self._now()
        pull = FakePull(
            id=repo.next_id,
            repo=repo,
            title=title,
            description=description,
            source=source,
            destination=destination,
            author=author,
            source_hash=repo.commit_of(source) or self._hash(source),
            destination_hash=repo.commit_of(destination) or self._hash(destination),
            created_on=now,
            updated_on=now,
        )
        repo.next_id += 1
        self._pulls.append(pull)
        return pull

    def _find_pull(self, repo: FakeRepo, number: str) -> FakePull:
        for pull in self._pulls:
            if pull.repo is repo and pull.id == int(number):
                return pull
        raise _error(404, f"Pull request {number} not found")  # approximated wording

    def _resolve_reviewers(self, data: dict[str, Any], author: Account) -> list[Account]:
        items = data.get("reviewers") or []
        if not isinstance(items, list):
            raise _field_error("reviewers", "Malformed reviewers list")
        reviewers: list[Account] = []
        for item in items:
            if not isinstance(item, dict):
                raise _field_error("reviewers", "Malformed reviewers list")
            found = next(
                (
                    a
                    for a in self.accounts
                    if (item.get("uuid") and a.uuid == item["uuid"])
                    or (item.get("account_id") and a.account_id == item["account_id"])
                ),
                None,
            )
            if found is None:
                raise _field_error("reviewers", "Malformed reviewers list")
            if found is author:
                raise _field_error(
                    "reviewers", f"{found.display_name} is the author and cannot be included as a reviewer."
                )
            if found not in reviewers:
                reviewers.append(found)
        return reviewers

    def _apply_merge(self, pull: FakePull, strategy: str, close: bool, account: Account) -> None:
        pull.state = "MERGED"
        pull.merge_strategy = strategy
        pull.merge_commit = self._hash(f"merge {pull.id}")
        pull.closed_by = account
        pull.updated_on = self._now()
        if close and pull.repo.branches is not None:
            pull.repo.branches.discard(pull.source)

    def _now(self) -> datetime:
        return _EPOCH + timedelta(seconds=next(self._clock))

    def _hash(self, seed: str) -> str:
        return hashlib.sha1(f"{seed}/{next(self._hashes)}".encode()).hexdigest()[:12]

    # -- JSON views ---------------------------------------------------------------------------

    def _repo_href(self, repo: FakeRepo) -> str:
        return f"{self.api_url}/repositories/{repo.workspace}/{repo.slug}"

    def _pull_href(self, pull: FakePull) -> str:
        return f"{self._repo_href(pull.repo)}/pullrequests/{pull.id}"

    def _page_url(self, request: Request, page: int) -> str:
        args = [(k, v) for k, v in request.args.items(multi=True) if k != "page"] + [("page", str(page))]
        return f"{self.api_url}{request.path[len('/2.0') :]}?{urllib.parse.urlencode(args)}"

    def _account_json(self, account: Account) -> dict[str, Any]:
        return {
            "type": "user",
            "uuid": account.uuid,
            "account_id": account.account_id,
            "display_name": account.display_name,
            "nickname": account.nickname,
            "links": {
                "self": {"href": f"{self.api_url}/users/{urllib.parse.quote(account.uuid)}"},
                "html": {"href": f"{self.web_url}/{urllib.parse.quote(account.uuid)}/"},
                "avatar": {"href": f"{self.web_url}/account/{account.nickname}/avatar/"},
            },
        }

    def _repo_json(self, repo: FakeRepo, *, full: bool) -> dict[str, Any]:
        href = self._repo_href(repo)
        web = f"{self.web_url}/{repo.workspace}/{repo.slug}"
        body: dict[str, Any] = {
            "type": "repository",
            "uuid": repo.uuid,
            "full_name": repo.full_name,
            "name": repo.slug,
            "links": {
                "self": {"href": href},
                "html": {"href": web},
                "avatar": {"href": f"{web}/avatar/32/"},
            },
        }
        if not full:
            return body
        body.update(
            {
                "slug": repo.slug,
                "scm": "git",
                "is_private": repo.private,
                "fork_policy": "no_public_forks",
                "description": "",
                "language": "",
                "has_issues": False,
                "has_wiki": False,
                "size": 0,
                "created_on": _iso(_EPOCH),
                "updated_on": _iso(_EPOCH),
            }
        )
        body["links"].update(
            {
                "pullrequests": {"href": f"{href}/pullrequests"},
                "commits": {"href": f"{href}/commits"},
                "clone": [{"name": "https", "href": f"{web}.git"}],
            }
        )
        if repo.mainbranch:
            # An empty repository has no main branch; the key is then left out.
            body["mainbranch"] = {
                "type": "branch",
                "name": repo.mainbranch,
                "merge_strategies": list(repo.strategies_for(repo.mainbranch)),
                "default_merge_strategy": repo.default_strategy_for(repo.mainbranch),
            }
        return body

    def _pull_json(self, pull: FakePull, *, full: bool) -> dict[str, Any]:
        href = self._pull_href(pull)
        repo = self._repo_json(pull.repo, full=False)
        source_repo = self._repo_json(pull.source_repo, full=False) if pull.source_repo else repo
        body: dict[str, Any] = {
            "type": "pullrequest",
            "id": pull.id,
            "title": pull.title,
            "description": pull.description,
            "summary": {
                "raw": pull.description,
                "markup": "markdown",
                "html": f"<p>{html.escape(pull.description)}</p>",
            },
            "state": pull.state,
            "draft": pull.draft,
            "author": self._account_json(pull.author),
            "source": {
                "branch": {"name": pull.source},
                "commit": {"hash": pull.source_hash},
                "repository": source_repo,
            },
            "destination": {
                "branch": {
                    "name": pull.destination,
                    "merge_strategies": list(pull.repo.strategies_for(pull.destination)),
                    "default_merge_strategy": pull.repo.default_strategy_for(pull.destination),
                },
                "commit": {"hash": pull.destination_hash},
                "repository": repo,
            },
            "close_source_branch": pull.close_source_branch,
            "comment_count": 0,
            "task_count": pull.unresolved_tasks,
            "created_on": _iso(pull.created_on),
            "updated_on": _iso(pull.updated_on),
            "reason": "",
            "links": {
                "self": {"href": href},
                "html": {"href": f"{self.web_url}/{pull.repo.full_name}/pull-requests/{pull.id}"},
                "commits": {"href": f"{href}/commits"},
                "approve": {"href": f"{href}/approve"},
                "diff": {"href": f"{href}/diff"},
                "diffstat": {"href": f"{href}/diffstat"},
                "comments": {"href": f"{href}/comments"},
                "activity": {"href": f"{href}/activity"},
                "merge": {"href": f"{href}/merge"},
                "decline": {"href": f"{href}/decline"},
            },
        }
        # The real service sends null for these until the pull request is merged; the description
        # types them as non-nullable objects, so the fake leaves them out instead.
        if pull.merge_commit:
            body["merge_commit"] = {"hash": pull.merge_commit}
        if pull.closed_by:
            body["closed_by"] = self._account_json(pull.closed_by)
        if full:
            body["reviewers"] = [self._account_json(a) for a in pull.reviewers]
            body["participants"] = [
                {
                    "type": "participant",
                    "user": self._account_json(a),
                    "role": "REVIEWER",
                    "approved": a.uuid in pull.approvals,
                }
                for a in pull.reviewers
            ]
        return body


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _int_arg(request: Request, name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _error(400, f"{name}: '{raw}' is not a number") from None
    if value < 1:
        raise _error(400, f"{name}: must be at least 1")
    return value


def _json_body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(request.get_data() or b"null")
    except ValueError:
        raise _error(400, "Malformed JSON request body") from None
    if not isinstance(data, dict):
        raise _error(400, "The request body must be a JSON object")
    return data


def _branch_name(data: dict[str, Any], side: str) -> str | None:
    endpoint = data.get(side)
    if endpoint is None:
        return None
    branch = endpoint.get("branch") if isinstance(endpoint, dict) else None
    name = branch.get("name") if isinstance(branch, dict) else None
    if not isinstance(name, str) or not name:
        raise _field_error(side, "Malformed branch reference")
    return name


def _optional(data: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise _field_error(name, f"expected a {kind.__name__}")
    return value


# -- BBQL, the subset the adapter uses -------------------------------------------------------------

_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<number>\d+)|(?P<op>!=|=|~)|(?P<word>[A-Za-z_][\w.]*)|(?P<bad>\S))'
)
_FIELDS: dict[str, Callable[[FakePull], Any]] = {
    "source.branch.name": lambda p: p.source,
    "destination.branch.name": lambda p: p.destination,
    "state": lambda p: p.state,
    "title": lambda p: p.title,
    "id": lambda p: p.id,
    "author.uuid": lambda p: p.author.uuid,
    "source.repository.full_name": lambda p: (p.source_repo or p.repo).full_name,
}


def _parse_query(query: str) -> Callable[[FakePull], bool]:
    """`field op value [AND field op value]...`; 400 for anything else, like a syntax error upstream."""
    if not query.strip():
        return lambda _p: True
    tokens: list[tuple[str, str]] = []
    for match in _TOKEN.finditer(query):
        kind = match.lastgroup or "bad"
        tokens.append((kind, match[kind]))
    if any(kind == "bad" for kind, _ in tokens):
        raise _error(400, f"Invalid query: unexpected character in {query!r}")
    conditions: list[Callable[[FakePull], bool]] = []
    position = 0
    while True:
        if position + 3 > len(tokens):
            raise _error(400, f"Invalid query: incomplete condition in {query!r}")
        (kind_f, name), (kind_o, op), (kind_v, raw) = tokens[position : position + 3]
        if kind_f != "word" or kind_o != "op" or kind_v not in ("string", "number"):
            raise _error(400, f"Invalid query: expected field operator value in {query!r}")
        if name not in _FIELDS:
            raise _error(400, f"Invalid query: unsupported field '{name}'")
        value: Any = int(raw) if kind_v == "number" else re.sub(r"\\(.)", r"\1", raw[1:-1])
        conditions.append(_condition(_FIELDS[name], op, value))
        position += 3
        if position == len(tokens):
            break
        if tokens[position] != ("word", "AND"):
            raise _error(400, f"Invalid query: only AND is supported by this fake, in {query!r}")
        position += 1
    return lambda pull: all(condition(pull) for condition in conditions)


def _condition(getter: Callable[[FakePull], Any], op: str, value: Any) -> Callable[[FakePull], bool]:
    if op == "=":
        return lambda pull: bool(getter(pull) == value)
    if op == "!=":
        return lambda pull: bool(getter(pull) != value)
    return lambda pull: str(value).lower() in str(getter(pull)).lower()
