"""A stateful fake of the GitHub REST API (the part the adapter uses), on a real socket on 127.0.0.1.

It behaves like github.com / GitHub Enterprise where it matters to a client: token checks (401 Bad
credentials, 404 for private repositories a token cannot see, 403 for a read-only token or missing SSO
authorisation), repositories with a default branch and allowed merge methods, branch protection, pull
requests with GitHub's validation errors, list filters and Link-header pagination, labels, review
requests, merges refused with GitHub's own messages, and scriptable faults: 5xx; the secondary rate
limit's 403 (with or without Retry-After); the primary rate limit's 403 or 429 with
`x-ratelimit-remaining: 0` and `x-ratelimit-reset` (UTC epoch seconds), as docs.github.com's "Rate
limits for the REST API" describes it; a fault after the work was done (`processed=True`: a merge
that took effect, answered 502 by a gateway); and an answer held back past the client's read
timeout (`stall_next`). Every payload carries all the properties the OpenAPI description
marks required, and `url` fields point back here, because PyGithub follows them.

Every exchange is logged (`.requests`, with the token masked) for call counting and for validation
against tests/openapi/github-slice.json (tests/fakes/openapi_check.py).

GraphQL (`POST /graphql` beside api.github.com's root, `/api/graphql` beside Enterprise's `/api/v3`),
the two operations the adapter sends, recognised by the field they ask for (no GraphQL parser):
`enablePullRequestAutoMerge` (docs.github.com/graphql/reference/mutations#enablepullrequestautomerge)
and `repository { pullRequest(number:) { state merged mergeStateStatus autoMergeRequest
commits(last: 1) { ... statusCheckRollup { state contexts { ... on StatusContext { context state
isRequired } } } } } }`. Errors come as GitHub sends them: HTTP 200 with `errors: [{type, path,
locations, message}]` and `data.enablePullRequestAutoMerge: null`: "Pull request Pull request is in
clean status" (or unstable: it could be merged right now, which is how auto-merge behaves without
branch protection; github.com/orgs/community/discussions/53088), "Auto merge is not allowed for this
repository" (the repository setting `allow_auto_merge`, off by default; gh prints it as `GraphQL: Auto
merge is not allowed for this repository (enablePullRequestAutoMerge)`), "Pull request Pull request is
closed", FORBIDDEN "Resource not accessible by personal access token" for a read-only token; a bad
token is HTTP 401 as on REST. Auto-merge state lives on the pull request: `pass_check`/`approve`
merge it as GitHub would once branch protection is satisfied; `fail_check` reports a failed status;
`disable_auto_merge` is GitHub turning it off (a push by someone without write access).

Usable from any test, including ones that run the CLI as a subprocess:

    with FakeGitHub() as gh:                       # serves http://127.0.0.1:PORT/api/v3
        gh.add_token("t0ken")
        gh.add_repo("acme/gitops", default_branch="main", branches=["main", "feature"])
        ... point the client at gh.api_url ...
        assert [p.title for p in gh.pulls("acme/gitops")] == [...]

Branches: pass `branches=` (names, given fake SHAs; `add_branch` adds more), or `git_dir=` a bare
repository on disk (the one a fake git server pushes into), whose refs are then read live.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import ssl
import subprocess
import threading
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from tests.fakes.openapi_check import Exchange

DOCS = "https://docs.github.com/rest"
SECONDARY_WRITE = (
    "You have exceeded a secondary rate limit and have been temporarily blocked from content creation. "
    "Please retry your request again later."
)
SECONDARY_READ = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID 0000:0000:0000:0000:0000."
)
SSO_MESSAGE = (
    "Resource protected by organization SAML enforcement. You must grant your Personal Access token "
    "access to this organization."
)
MERGE_NOT_ALLOWED = {
    "merge": "Merge commits are not allowed on this repository.",
    "squash": "Squash merges are not allowed on this repository.",
    "rebase": "Rebase merges are not allowed on this repository.",
}


@dataclass
class Token:
    login: str
    access: str = "write"  # "write", "read" (403 on writes) or "none" (private repos answer 404)
    sso: bool = False  # the org enforces SAML SSO and this token is not authorised for it


@dataclass
class Protection:
    required_approvals: int = 0
    required_checks: tuple[str, ...] = ()


@dataclass
class FakePull:
    number: int
    title: str
    body: str | None
    head: str
    base: str
    head_sha: str
    base_sha: str
    user: str
    state: str = "open"
    draft: bool = False
    merged: bool = False
    merge_method: str | None = None
    merge_commit_sha: str | None = None
    merged_by: str | None = None
    conflict: bool = False  # the head cannot be merged cleanly into the base
    labels: list[str] = field(default_factory=list)
    reviewers: list[str] = field(default_factory=list)
    team_reviewers: list[str] = field(default_factory=list)
    approvals: int = 0
    passed_checks: set[str] = field(default_factory=set)
    failed_checks: set[str] = field(default_factory=set)
    auto_merge: dict[str, Any] | None = None  # {"enabledAt", "mergeMethod", "enabledBy"} while it is on
    created_at: str = ""
    updated_at: str = ""
    closed_at: str | None = None
    merged_at: str | None = None


@dataclass
class FakeRepo:
    owner: str
    name: str
    id: int
    default_branch: str = "main"
    private: bool = True
    allow_merge_commit: bool = True
    allow_squash_merge: bool = True
    allow_rebase_merge: bool = True
    drafts_supported: bool = True
    allow_auto_merge: bool = False  # GitHub's default: an admin turns it on
    branches: dict[str, str] = field(default_factory=dict)  # name -> sha, when git_dir is None
    git_dir: Path | None = None
    collaborators: set[str] = field(default_factory=set)
    teams: set[str] = field(default_factory=set)
    protection: dict[str, Protection] = field(default_factory=dict)
    pulls: dict[int, FakePull] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)  # name -> id
    next_number: int = 1
    created_at: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def branch_sha(self, branch: str) -> str | None:
        if self.git_dir is None:
            return self.branches.get(branch)
        done = subprocess.run(
            [
                "git",
                "--git-dir",
                str(self.git_dir),
                "rev-parse",
                "--verify",
                "--quiet",
                f"refs/heads/{branch}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip() or None

    def has_commits_between(self, base: str, head: str) -> bool:
        """Whether head has commits that base lacks (GitHub's "No commits between" check)."""
        if self.git_dir is None:
            return self.branches.get(head) != self.branches.get(base)
        done = subprocess.run(
            [
                "git",
                "--git-dir",
                str(self.git_dir),
                "merge-base",
                "--is-ancestor",
                f"refs/heads/{head}",
                f"refs/heads/{base}",
            ],
            capture_output=True,
            check=False,
        )
        return done.returncode != 0


PRIMARY_LIMIT = (
    "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the "
    "request ID 0000:0000:0000:0000:0000 and timestamp 2026-01-01 00:00:00 UTC."
)
RATE_LIMIT_DOC = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
NO_ANSWER = 0  # a stall that is never processed: the connection closes without an answer


@dataclass
class Fault:
    status: int
    remaining: int
    retry_after: str | None = None
    method: str | None = None
    path: str | None = None  # regex searched in the path below the API root
    reset_in: float | None = None  # the primary rate limit, used up until this many seconds from now
    processed: bool = False  # the request takes effect first; the fault replaces its answer
    stall: float = 0.0  # hold the answer this long (past the client's read timeout)

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path is None or re.search(self.path, path) is not None
        )


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha(*parts: object) -> str:
    return hashlib.sha1("/".join(str(p) for p in parts).encode()).hexdigest()


def _id(*parts: object) -> int:
    return int(_sha(*parts)[:8], 16)


class GitHubError(Exception):
    """An error answer, shaped as GitHub shapes it."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        doc: str = DOCS,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, "documentation_url": doc, "status": str(status)}
        if errors is not None:
            self.body["errors"] = errors
        self.headers = headers or {}


def _validation(*errors: dict[str, Any], doc: str = DOCS) -> GitHubError:
    return GitHubError(422, "Validation Failed", list(errors), doc=doc)


class FakeGitHub:
    """The fake server: `prefix="/api/v3"` is Enterprise's layout, `prefix=""` acts as api.github.com."""

    def __init__(
        self, prefix: str = "/api/v3", host: str = "127.0.0.1", ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.prefix = prefix.rstrip("/")
        self.host = host
        self.ssl_context = ssl_context  # serve https:// with this context (tests/tls.py makes one)
        self.tokens: dict[str, Token] = {}
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[Exchange] = []
        self.faults: list[Fault] = []
        self._lock = threading.RLock()
        self._stopping = threading.Event()  # ends every stalled answer when the fake stops
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self._routes = Map(
            [
                Rule("/repos/<owner>/<repo>", endpoint="get_repo", methods=["GET"]),
                Rule("/repos/<owner>/<repo>/pulls", endpoint="list_pulls", methods=["GET"]),
                Rule("/repos/<owner>/<repo>/pulls", endpoint="create_pull", methods=["POST"]),
                Rule("/repos/<owner>/<repo>/pulls/<int:number>", endpoint="get_pull", methods=["GET"]),
                Rule("/repos/<owner>/<repo>/pulls/<int:number>", endpoint="update_pull", methods=["PATCH"]),
                Rule(
                    "/repos/<owner>/<repo>/pulls/<int:number>/merge", endpoint="merge_pull", methods=["PUT"]
                ),
                Rule(
                    "/repos/<owner>/<repo>/pulls/<int:number>/requested_reviewers",
                    endpoint="request_reviewers",
                    methods=["POST"],
                ),
                Rule(
                    "/repos/<owner>/<repo>/issues/<int:number>/labels",
                    endpoint="add_labels",
                    methods=["POST"],
                ),
            ],
            strict_slashes=False,
        )

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FakeGitHub:
        self._server = make_server(
            self.host,
            0,
            self._wsgi,
            threaded=True,
            request_handler=_QuietHandler,
            ssl_context=self.ssl_context,
        )
        self.port = self._server.port
        server = self._server
        # A short poll interval keeps stop() (and so each test's teardown) at a few milliseconds.
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.02), name="fake-github", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def web_url(self) -> str:
        return f"{'https' if self.ssl_context is not None else 'http'}://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.web_url}{self.prefix}"

    # -- scripting --------------------------------------------------------------------------------

    def add_token(self, token: str, login: str = "ci-bot", access: str = "write", sso: bool = False) -> None:
        assert access in ("write", "read", "none"), access
        self.tokens[token] = Token(login, access, sso)

    def add_repo(
        self,
        full_name: str,
        default_branch: str = "main",
        *,
        branches: Iterable[str] | None = None,
        git_dir: str | Path | None = None,
        private: bool = True,
        allow_merge_commit: bool = True,
        allow_squash_merge: bool = True,
        allow_rebase_merge: bool = True,
        drafts_supported: bool = True,
        allow_auto_merge: bool = False,
        collaborators: Iterable[str] = (),
        teams: Iterable[str] = (),
        protection: dict[str, Protection] | None = None,
    ) -> FakeRepo:
        owner, name = full_name.split("/")
        repo = FakeRepo(
            owner=owner,
            name=name,
            id=_id("repo", full_name),
            default_branch=default_branch,
            private=private,
            allow_merge_commit=allow_merge_commit,
            allow_squash_merge=allow_squash_merge,
            allow_rebase_merge=allow_rebase_merge,
            drafts_supported=drafts_supported,
            allow_auto_merge=allow_auto_merge,
            git_dir=Path(git_dir) if git_dir else None,
            collaborators=set(collaborators),
            teams=set(teams),
            protection=dict(protection or {}),
            created_at=_now(),
        )
        if repo.git_dir is None:
            for branch in {default_branch, *(branches or ())}:
                repo.branches[branch] = _sha(full_name, branch, 0)
        self.repos[full_name.lower()] = repo
        return repo

    def add_branch(self, full_name: str, branch: str, sha: str | None = None) -> str:
        repo = self.repos[full_name.lower()]
        repo.branches[branch] = sha or _sha(full_name, branch, len(repo.branches))
        return repo.branches[branch]

    def add_pull(
        self,
        full_name: str,
        head: str,
        base: str | None = None,
        *,
        title: str = "existing",
        body: str | None = "",
        state: str = "open",
        merged: bool = False,
        draft: bool = False,
        user: str = "someone",
    ) -> FakePull:
        """A pull request that existed before the test (no request logged)."""
        repo = self.repos[full_name.lower()]
        with self._lock:
            pull = self._new_pull(repo, title, body, head, base or repo.default_branch, user, draft)
            if merged or state == "closed":
                pull.state, pull.closed_at = "closed", _now()
            if merged:
                pull.merged, pull.merged_at, pull.merge_commit_sha = (
                    True,
                    pull.closed_at,
                    _sha("m", pull.number),
                )
        return pull

    def pulls(self, full_name: str) -> list[FakePull]:
        return list(self.repos[full_name.lower()].pulls.values())

    def approve(self, full_name: str, number: int, count: int = 1) -> None:
        with self._lock:
            repo = self.repos[full_name.lower()]
            repo.pulls[number].approvals += count
            self._auto_merge_if_ready(repo, repo.pulls[number])

    def pass_check(self, full_name: str, number: int, context: str) -> None:
        """A status `context` reports success on the head; auto-merge merges once protection is met."""
        with self._lock:
            repo = self.repos[full_name.lower()]
            pull = repo.pulls[number]
            pull.passed_checks.add(context)
            pull.failed_checks.discard(context)
            self._auto_merge_if_ready(repo, pull)

    def fail_check(self, full_name: str, number: int, context: str) -> None:
        pull = self.repos[full_name.lower()].pulls[number]
        pull.failed_checks.add(context)
        pull.passed_checks.discard(context)

    def disable_auto_merge(self, full_name: str, number: int) -> None:
        self.repos[full_name.lower()].pulls[number].auto_merge = None

    @property
    def graphql_path(self) -> str:
        """Where GitHub serves GraphQL: /graphql on api.github.com, /api/graphql on Enterprise Server."""
        return (self.prefix[: -len("/v3")] if self.prefix.endswith("/v3") else self.prefix) + "/graphql"

    def fail_next(
        self,
        status: int,
        times: int = 1,
        *,
        retry_after: float | str | None = None,
        method: str | None = None,
        path: str | None = None,
        reset_in: float | None = None,
        processed: bool = False,
    ) -> None:
        """The next `times` matching requests answer `status`.

        403 is the secondary rate limit; 403 or 429 with `reset_in` the primary one (quota used up,
        resetting `reset_in` seconds from now); a 429 without it is the primary limit an hour from its
        reset. processed: the request takes effect first and the fault replaces GitHub's answer (a
        gateway's 502 after the merge went through).
        """
        self.faults.append(
            Fault(
                status,
                times,
                None if retry_after is None else str(retry_after),
                method,
                path,
                reset_in=reset_in,
                processed=processed,
            )
        )

    def stall_next(
        self,
        seconds: float,
        times: int = 1,
        *,
        method: str | None = None,
        path: str | None = None,
        processed: bool = True,
    ) -> None:
        """Hold the answer to the next `times` matching requests for `seconds` (or until stop()).

        processed: the request takes effect and GitHub's answer comes late; otherwise it never takes
        effect and the connection closes without an answer.
        """
        self.faults.append(Fault(NO_ANSWER, times, None, method, path, processed=processed, stall=seconds))

    def calls(self, method: str | None = None, path: str | None = None) -> list[Exchange]:
        """Logged exchanges, optionally filtered by method and a regex on the path."""
        return [
            e
            for e in self.requests
            if (method is None or e.method == method.upper()) and (path is None or re.search(path, e.path))
        ]

    # -- WSGI -------------------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self._respond(request)
        stall = float(environ.get("fake.stall", 0.0))
        drop = bool(environ.get("fake.drop"))
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        auth = request.headers.get("Authorization")
        if auth:
            headers["Authorization"] = auth.split(" ", 1)[0] + " ***"
        path = request.path[len(self.prefix) :] if request.path.startswith(self.prefix) else request.path
        with self._lock:
            self.requests.append(
                Exchange(
                    method=request.method,
                    path=path or "/",
                    query=request.query_string.decode(),
                    request_headers=headers,
                    request_body=request.get_data(),
                    status=NO_ANSWER if drop else response.status_code,
                    response_headers={} if drop else dict(response.headers.items()),
                    response_body=b"" if drop else response.get_data(),
                )
            )
        if stall:
            self._stopping.wait(stall)
        if drop:
            # No status line: the client sees the connection drop (werkzeug takes a ConnectionError
            # from the application as a dropped connection and sends nothing).
            with contextlib.suppress(OSError):
                environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
            raise ConnectionAbortedError("the fake drops this request")
        return response(environ, start_response)

    def _respond(self, request: Request) -> Response:
        try:
            with self._lock:
                return self._dispatch(request)
        except GitHubError as err:
            return self._json(err.body, err.status, err.headers)

    def _dispatch(self, request: Request) -> Response:
        if request.path == self.graphql_path and request.method == "POST":
            return self._graphql(request)
        if not request.path.startswith(self.prefix + "/") and request.path != self.prefix:
            raise GitHubError(404, "Not Found")
        path = request.path[len(self.prefix) :] or "/"
        for fault in self.faults:
            if fault.remaining > 0 and fault.matches(request.method, path):
                fault.remaining -= 1
                request.environ["fake.stall"] = fault.stall
                request.environ["fake.drop"] = fault.status == NO_ANSWER and not fault.processed
                if not fault.processed:
                    return self._fault(fault, request.method)
                try:
                    real = self._handle(request, path)
                except GitHubError as err:
                    real = self._json(err.body, err.status, err.headers)
                return real if fault.status == NO_ANSWER else self._fault(fault, request.method)
        return self._handle(request, path)

    def _handle(self, request: Request, path: str) -> Response:
        token = self._authenticate(request)
        try:
            endpoint, args = self._routes.bind("fake").match(path, method=request.method)
        except HTTPException:
            raise GitHubError(404, "Not Found") from None
        repo = self._repo_for(args.pop("owner"), args.pop("repo"), token, write=request.method != "GET")
        handler = getattr(self, f"_h_{endpoint}")
        status, payload, headers = handler(request, repo, token, **args)
        return self._json(payload, status, headers)

    def _fault(self, fault: Fault, method: str) -> Response:
        headers: dict[str, str] = {}
        if fault.status == NO_ANSWER:
            return Response(b"", status=200)  # never sent: _wsgi drops the connection (fake.drop)
        if fault.retry_after is not None:
            headers["Retry-After"] = fault.retry_after
        if fault.status in (403, 429) and fault.reset_in is not None:
            # The primary rate limit (docs.github.com, "Exceeding the rate limit").
            reset = int(datetime.now(UTC).timestamp() + fault.reset_in)
            headers.update(
                {
                    "X-RateLimit-Limit": "5000",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Used": "5000",
                    "X-RateLimit-Reset": str(reset),
                    "X-RateLimit-Resource": "core",
                }
            )
            body: dict[str, Any] = {
                "message": PRIMARY_LIMIT,
                "documentation_url": RATE_LIMIT_DOC,
                "status": str(fault.status),
            }
        elif fault.status == 403:
            message = SECONDARY_WRITE if method != "GET" else SECONDARY_READ
            doc = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
            body = {"message": message, "documentation_url": doc, "status": "403"}
        elif fault.status == 429:
            headers.update({"X-RateLimit-Remaining": "0", "X-RateLimit-Limit": "5000"})
            body = {"message": PRIMARY_LIMIT, "documentation_url": RATE_LIMIT_DOC, "status": "429"}
        else:
            text = {500: "Server Error", 502: "Server Error", 503: "Service Unavailable"}.get(
                fault.status, "Error"
            )
            body = {"message": text, "documentation_url": DOCS, "status": str(fault.status)}
        return self._json(body, fault.status, headers)

    def _json(self, payload: Any, status: int, headers: dict[str, str] | None = None) -> Response:
        response = Response(
            json.dumps(payload) if payload is not None else b"",
            status=status,
            content_type="application/json; charset=utf-8",
        )
        response.headers["X-GitHub-Media-Type"] = "github.v3; format=json"
        response.headers["X-RateLimit-Limit"] = "5000"
        response.headers["X-RateLimit-Remaining"] = "4999"
        response.headers["X-RateLimit-Reset"] = str(int(datetime.now(UTC).timestamp()) + 3600)
        for key, value in (headers or {}).items():
            response.headers[key] = value
        return response

    # -- auth and lookup ---------------------------------------------------------------------------

    def _authenticate(self, request: Request) -> Token | None:
        header = request.headers.get("Authorization", "")
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        token = self.tokens.get(value.strip()) if scheme.lower() in ("token", "bearer") else None
        if token is None:
            raise GitHubError(401, "Bad credentials")
        return token

    def _repo_for(self, owner: str, name: str, token: Token | None, write: bool) -> FakeRepo:
        repo = self.repos.get(f"{owner}/{name}".lower())
        if repo is None:
            raise GitHubError(404, "Not Found", doc=f"{DOCS}/repos/repos#get-a-repository")
        if token is None:
            if repo.private:
                raise GitHubError(404, "Not Found", doc=f"{DOCS}/repos/repos#get-a-repository")
            if write:
                raise GitHubError(401, "Requires authentication")
            return repo
        if token.sso:
            sso_url = f"{self.web_url}/orgs/{repo.owner}/sso?authorization_request=1"
            raise GitHubError(
                403,
                SSO_MESSAGE,
                headers={"X-GitHub-SSO": f"required; url={sso_url}"},
                doc="https://docs.github.com/articles/authenticating-to-a-github-organization-with-saml-single-sign-on/",
            )
        if token.access == "none" and repo.private:
            raise GitHubError(404, "Not Found", doc=f"{DOCS}/repos/repos#get-a-repository")
        if write and token.access != "write":
            raise GitHubError(403, "Resource not accessible by personal access token")
        return repo

    def _pull(self, repo: FakeRepo, number: int) -> FakePull:
        pull = repo.pulls.get(number)
        if pull is None:
            raise GitHubError(404, "Not Found", doc=f"{DOCS}/pulls/pulls#get-a-pull-request")
        return pull

    @staticmethod
    def _body(request: Request) -> Any:
        try:
            return json.loads(request.get_data() or b"null")
        except ValueError:
            raise GitHubError(400, "Problems parsing JSON") from None

    # -- handlers: each returns (status, payload, headers) -------------------------------------------

    def _h_get_repo(
        self, request: Request, repo: FakeRepo, token: Token | None
    ) -> tuple[int, Any, dict[str, str]]:
        return 200, self._full_repo(repo, token), {}

    def _h_list_pulls(
        self, request: Request, repo: FakeRepo, token: Token | None
    ) -> tuple[int, Any, dict[str, str]]:
        args = request.args
        state = args.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise _validation({"resource": "Search", "field": "state", "code": "invalid"})
        pulls = [p for p in repo.pulls.values() if state == "all" or p.state == state]
        head = args.get("head")
        if head and ":" in head:
            # GitHub ignores a head filter without the "owner:" part; so do we.
            head_owner, _, head_ref = head.partition(":")
            pulls = [p for p in pulls if head_owner.lower() == repo.owner.lower() and p.head == head_ref]
        if args.get("base"):
            pulls = [p for p in pulls if p.base == args["base"]]
        sort = args.get("sort", "created")
        key = "updated_at" if sort == "updated" else "number"
        descending = args.get("direction", "desc" if sort in ("created", "updated") else "asc") == "desc"
        pulls.sort(key=lambda p: (getattr(p, key), p.number), reverse=descending)
        try:
            per_page = max(1, min(100, int(args.get("per_page", 30))))
            page = max(1, int(args.get("page", 1)))
        except ValueError:
            raise _validation({"resource": "Search", "field": "per_page", "code": "invalid"}) from None
        chunk = pulls[(page - 1) * per_page : page * per_page]
        last = max(1, -(-len(pulls) // per_page))
        headers = {}
        links = self._links(request, repo, page, last)
        if links:
            headers["Link"] = links
        return 200, [self._pull_json(repo, p, simple=True) for p in chunk], headers

    def _links(self, request: Request, repo: FakeRepo, page: int, last: int) -> str:
        base_query = [(k, v) for k, v in request.args.items(multi=True) if k != "page"]

        def url(n: int) -> str:
            query = urllib.parse.urlencode([*base_query, ("page", str(n))])
            return f"<{self.api_url}/repos/{repo.full_name}/pulls?{query}>"

        parts = []
        if page > 1:
            parts += [f'{url(page - 1)}; rel="prev"']
        if page < last:
            parts += [f'{url(page + 1)}; rel="next"', f'{url(last)}; rel="last"']
        if page > 1:
            parts += [f'{url(1)}; rel="first"']
        return ", ".join(parts)

    def _h_create_pull(
        self, request: Request, repo: FakeRepo, token: Token | None
    ) -> tuple[int, Any, dict[str, str]]:
        assert token is not None
        doc = f"{DOCS}/pulls/pulls#create-a-pull-request"
        body = self._body(request)
        if not isinstance(body, dict):
            raise GitHubError(400, "Problems parsing JSON")
        for name in ("head", "base", "title"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise _validation(
                    {"resource": "PullRequest", "code": "missing_field", "field": name}, doc=doc
                )
        head: str = body["head"]
        if ":" in head:
            head_owner, _, head = head.partition(":")
            if head_owner.lower() != repo.owner.lower():
                raise _validation({"resource": "PullRequest", "field": "head", "code": "invalid"}, doc=doc)
        base: str = body["base"]
        head_sha, base_sha = repo.branch_sha(head), repo.branch_sha(base)
        if base_sha is None:
            raise _validation({"resource": "PullRequest", "field": "base", "code": "invalid"}, doc=doc)
        if head_sha is None:
            raise _validation({"resource": "PullRequest", "field": "head", "code": "invalid"}, doc=doc)
        for pull in repo.pulls.values():
            if pull.state == "open" and pull.head == head and pull.base == base:
                raise _validation(
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": f"A pull request already exists for {repo.owner}:{head}.",
                    },
                    doc=doc,
                )
        if not repo.has_commits_between(base, head):
            raise _validation(
                {
                    "resource": "PullRequest",
                    "code": "custom",
                    "message": f"No commits between {base} and {head}",
                },
                doc=doc,
            )
        draft = bool(body.get("draft", False))
        if draft and not repo.drafts_supported:
            raise _validation(
                {
                    "resource": "PullRequest",
                    "code": "custom",
                    "message": "Draft pull requests are not supported in this repository.",
                },
                doc=doc,
            )
        pull = self._new_pull(repo, body["title"], body.get("body"), head, base, token.login, draft)
        payload = self._pull_json(repo, pull)
        return 201, payload, {"Location": payload["url"]}

    def _new_pull(
        self, repo: FakeRepo, title: str, body: str | None, head: str, base: str, user: str, draft: bool
    ) -> FakePull:
        now = _now()
        number = repo.next_number
        repo.next_number += 1
        pull = FakePull(
            number=number,
            title=title,
            body=body,
            head=head,
            base=base,
            head_sha=repo.branch_sha(head) or _sha(repo.full_name, head),
            base_sha=repo.branch_sha(base) or _sha(repo.full_name, base),
            user=user,
            draft=draft,
            created_at=now,
            updated_at=now,
        )
        repo.pulls[number] = pull
        return pull

    def _h_get_pull(
        self, request: Request, repo: FakeRepo, token: Token | None, number: int
    ) -> tuple[int, Any, dict[str, str]]:
        return 200, self._pull_json(repo, self._pull(repo, number)), {}

    def _h_update_pull(
        self, request: Request, repo: FakeRepo, token: Token | None, number: int
    ) -> tuple[int, Any, dict[str, str]]:
        pull = self._pull(repo, number)
        body = self._body(request)
        if not isinstance(body, dict):
            raise GitHubError(400, "Problems parsing JSON")
        for name in ("title", "body", "base", "state"):
            if name in body and not isinstance(body[name], str):
                raise _validation({"resource": "PullRequest", "code": "invalid", "field": name})
        if "state" in body and body["state"] not in ("open", "closed"):
            raise _validation({"resource": "PullRequest", "code": "invalid", "field": "state"})
        if "base" in body and repo.branch_sha(body["base"]) is None:
            raise _validation({"resource": "PullRequest", "code": "invalid", "field": "base"})
        if pull.merged and "state" in body:
            raise _validation(
                {
                    "resource": "PullRequest",
                    "code": "custom",
                    "message": "Cannot change a merged pull request.",
                }
            )
        pull.title = body.get("title", pull.title)
        pull.body = body.get("body", pull.body)
        pull.base = body.get("base", pull.base)
        if body.get("state") and body["state"] != pull.state:
            pull.state = body["state"]
            pull.closed_at = _now() if pull.state == "closed" else None
        pull.updated_at = _now()
        return 200, self._pull_json(repo, pull), {}

    def _h_merge_pull(
        self, request: Request, repo: FakeRepo, token: Token | None, number: int
    ) -> tuple[int, Any, dict[str, str]]:
        assert token is not None
        doc = f"{DOCS}/pulls/pulls#merge-a-pull-request"
        pull = self._pull(repo, number)
        body = self._body(request) or {}
        if not isinstance(body, dict):
            raise GitHubError(400, "Problems parsing JSON")
        method = body.get("merge_method", "merge")
        if method not in MERGE_NOT_ALLOWED:
            raise _validation(
                {"resource": "PullRequest", "code": "invalid", "field": "merge_method"}, doc=doc
            )
        if pull.state != "open" or pull.conflict:
            raise GitHubError(405, "Pull Request is not mergeable", doc=doc)
        if pull.draft:
            raise GitHubError(405, "Pull Request is still a draft", doc=doc)
        if not getattr(repo, f"allow_{'merge_commit' if method == 'merge' else method + '_merge'}"):
            raise GitHubError(405, MERGE_NOT_ALLOWED[method], doc=doc)
        pull.head_sha = repo.branch_sha(pull.head) or pull.head_sha
        if "sha" in body and body["sha"] != pull.head_sha:
            raise GitHubError(409, "Head branch was modified. Review and try the merge again.", doc=doc)
        rules = repo.protection.get(pull.base)
        if rules is not None:
            protected = "https://docs.github.com/articles/about-protected-branches"
            if pull.approvals < rules.required_approvals:
                n = rules.required_approvals
                message = (
                    f"At least {n} approving review is required by reviewers with write access."
                    if n == 1
                    else f"At least {n} approving reviews are required by reviewers with write access."
                )
                raise GitHubError(405, message, doc=protected)
            missing = [c for c in rules.required_checks if c not in pull.passed_checks]
            if len(missing) == 1:
                raise GitHubError(405, f'Required status check "{missing[0]}" is expected.', doc=protected)
            if missing:
                total = len(rules.required_checks)
                raise GitHubError(
                    405, f"{len(missing)} of {total} required status checks are expected.", doc=protected
                )
        self._merge_now(repo, pull, method, token.login)
        return (
            200,
            {"sha": pull.merge_commit_sha, "merged": True, "message": "Pull Request successfully merged"},
            {},
        )

    def _merge_now(self, repo: FakeRepo, pull: FakePull, method: str, login: str) -> None:
        now = _now()
        pull.state, pull.merged, pull.merge_method = "closed", True, method
        pull.merged_at = pull.closed_at = pull.updated_at = now
        pull.merged_by = login
        pull.auto_merge = None
        pull.merge_commit_sha = _sha("merge", repo.full_name, pull.number, method)
        if repo.git_dir is None:
            repo.branches[pull.base] = pull.merge_commit_sha

    def _blocked(self, repo: FakeRepo, pull: FakePull) -> bool:
        rules = repo.protection.get(pull.base)
        return rules is not None and (
            pull.approvals < rules.required_approvals
            or any(c not in pull.passed_checks for c in rules.required_checks)
        )

    def _merge_state_status(self, repo: FakeRepo, pull: FakePull) -> str:
        """GraphQL's mergeStateStatus (REST's mergeable_state, upper-cased)."""
        if pull.state != "open":
            return "UNKNOWN"
        if pull.conflict:
            return "DIRTY"
        if pull.draft:
            return "DRAFT"
        if self._blocked(repo, pull):
            return "BLOCKED"
        return "UNSTABLE" if pull.failed_checks else "CLEAN"

    def _auto_merge_if_ready(self, repo: FakeRepo, pull: FakePull) -> None:
        if (
            pull.auto_merge
            and pull.state == "open"
            and self._merge_state_status(repo, pull) in ("CLEAN", "UNSTABLE")
        ):
            self._merge_now(repo, pull, pull.auto_merge["mergeMethod"].lower(), pull.auto_merge["enabledBy"])

    # -- GraphQL ------------------------------------------------------------------------------------

    def _graphql(self, request: Request) -> Response:
        token = self._authenticate(request)
        if token is None:
            raise GitHubError(401, "This endpoint requires you to be authenticated.", doc=f"{DOCS}/graphql")
        body = self._body(request)
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            raise GitHubError(400, "Problems parsing JSON")
        query, variables = body["query"], body.get("variables") or {}
        if "enablePullRequestAutoMerge" in query:
            data, errors = self._gql_enable_auto_merge(token, variables)
        elif "pullRequest(number:" in query:
            data, errors = self._gql_pull_request(token, variables)
        else:
            data, errors = None, [{"message": "this fake answers two GraphQL operations only"}]
        payload: dict[str, Any] = {"data": data}
        if errors:
            payload["errors"] = errors
        return self._json(payload, 200)

    def _gql_enable_auto_merge(
        self, token: Token, variables: dict[str, Any]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        def error(message: str, kind: str = "UNPROCESSABLE") -> tuple[dict[str, Any], list[dict[str, Any]]]:
            where = {"path": ["enablePullRequestAutoMerge"], "locations": [{"line": 3, "column": 3}]}
            return {"enablePullRequestAutoMerge": None}, [{"type": kind, **where, "message": message}]

        node_id = variables.get("pullRequestId")
        found = [
            (repo, pull)
            for repo in self.repos.values()
            for pull in repo.pulls.values()
            if f"PR_{_sha('pull', repo.full_name, pull.number)[:12]}" == node_id
        ]
        if not found:
            return error(f"Could not resolve to a node with the global id of '{node_id}'", "NOT_FOUND")
        repo, pull = found[0]
        if token.access != "write":
            return error("Resource not accessible by personal access token", "FORBIDDEN")
        if not repo.allow_auto_merge:
            return error("Auto merge is not allowed for this repository")
        if pull.state != "open":
            return error("Pull request Pull request is closed")
        status = self._merge_state_status(repo, pull)
        if status in ("CLEAN", "UNSTABLE"):
            return error(f"Pull request Pull request is in {status.lower()} status")
        method = str(variables.get("mergeMethod") or "MERGE")
        pull.auto_merge = {"enabledAt": _now(), "mergeMethod": method, "enabledBy": token.login}
        request = {"enabledAt": pull.auto_merge["enabledAt"], "mergeMethod": method}
        return {
            "enablePullRequestAutoMerge": {
                "pullRequest": {"number": pull.number, "autoMergeRequest": request}
            }
        }, []

    def _gql_pull_request(
        self, token: Token, variables: dict[str, Any]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        repo = self.repos.get(f"{variables.get('owner')}/{variables.get('name')}".lower())
        pull = repo.pulls.get(int(variables.get("number") or 0)) if repo is not None else None
        if repo is None or pull is None or (token.access == "none" and repo.private):
            message = "Could not resolve to a PullRequest with the number of {}.".format(
                variables.get("number")
            )
            return {"repository": None}, [{"type": "NOT_FOUND", "path": ["repository"], "message": message}]
        required = set(repo.protection[pull.base].required_checks) if pull.base in repo.protection else set()
        names = sorted(required | pull.passed_checks | pull.failed_checks)
        contexts = []
        for name in names:
            state = (
                "SUCCESS"
                if name in pull.passed_checks
                else "FAILURE"
                if name in pull.failed_checks
                else "EXPECTED"
            )
            contexts.append(
                {
                    "__typename": "StatusContext",
                    "context": name,
                    "state": state,
                    "isRequired": name in required,
                }
            )
        rollup = None
        if contexts:
            states = {c["state"] for c in contexts}
            overall = "FAILURE" if "FAILURE" in states else "PENDING" if "EXPECTED" in states else "SUCCESS"
            rollup = {"state": overall, "contexts": {"nodes": contexts}}
        auto = pull.auto_merge
        node = {
            "state": "MERGED" if pull.merged else pull.state.upper(),
            "merged": pull.merged,
            "mergeStateStatus": self._merge_state_status(repo, pull),
            "autoMergeRequest": None
            if auto is None
            else {"enabledAt": auto["enabledAt"], "mergeMethod": auto["mergeMethod"]},
            "commits": {
                "nodes": [
                    {
                        "commit": {
                            "oid": repo.branch_sha(pull.head) or pull.head_sha,
                            "statusCheckRollup": rollup,
                        }
                    }
                ]
            },
        }
        return {"repository": {"pullRequest": node}}, []

    def _h_request_reviewers(
        self, request: Request, repo: FakeRepo, token: Token | None, number: int
    ) -> tuple[int, Any, dict[str, str]]:
        pull = self._pull(repo, number)
        body = self._body(request)
        if not isinstance(body, dict):
            raise GitHubError(400, "Problems parsing JSON")
        users, teams = body.get("reviewers") or [], body.get("team_reviewers") or []
        if not isinstance(users, list) or not isinstance(teams, list) or not (users or teams):
            raise _validation({"resource": "PullRequest", "code": "invalid", "field": "reviewers"})
        if pull.user in users:
            raise GitHubError(422, "Review cannot be requested from pull request author.")
        if any(u not in repo.collaborators for u in users) or any(t not in repo.teams for t in teams):
            raise GitHubError(
                422,
                "Reviews may only be requested from collaborators. One or more of the users or teams you "
                f"specified is not a collaborator of the {repo.full_name} repository.",
            )
        pull.reviewers += [u for u in users if u not in pull.reviewers]
        pull.team_reviewers += [t for t in teams if t not in pull.team_reviewers]
        return 201, self._pull_json(repo, pull, simple=True), {}

    def _h_add_labels(
        self, request: Request, repo: FakeRepo, token: Token | None, number: int
    ) -> tuple[int, Any, dict[str, str]]:
        pull = repo.pulls.get(number)  # issues and pulls share numbers; this fake only has pulls
        if pull is None:
            raise GitHubError(404, "Not Found", doc=f"{DOCS}/issues/labels#add-labels-to-an-issue")
        body = self._body(request)
        names = body.get("labels") if isinstance(body, dict) else body
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names:
            raise _validation({"resource": "Label", "code": "missing_field", "field": "labels"})
        for item in names:
            name = item.get("name") if isinstance(item, dict) else item
            if not isinstance(name, str) or not name:
                raise _validation({"resource": "Label", "code": "invalid", "field": "name"})
            # GitHub creates a label that does not exist yet, with the default colour.
            repo.labels.setdefault(name, _id("label", repo.full_name, name))
            if name not in pull.labels:
                pull.labels.append(name)
        pull.updated_at = _now()
        return 200, [self._label_json(repo, n) for n in pull.labels], {}

    # -- payloads: every property the description marks required -------------------------------------

    def _user_json(self, login: str) -> dict[str, Any]:
        api, web = f"{self.api_url}/users/{login}", f"{self.web_url}/{login}"
        return {
            "login": login,
            "id": _id("user", login),
            "node_id": f"U_{_sha('user', login)[:12]}",
            "avatar_url": f"{self.web_url}/avatars/u/{_id('user', login)}",
            "gravatar_id": "",
            "url": api,
            "html_url": web,
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": "User",
            "site_admin": False,
            "user_view_type": "public",
        }

    def _team_json(self, repo: FakeRepo, slug: str) -> dict[str, Any]:
        api = f"{self.api_url}/orgs/{repo.owner}/teams/{slug}"
        return {
            "id": _id("team", repo.owner, slug),
            "node_id": f"T_{_sha('team', slug)[:12]}",
            "name": slug,
            "slug": slug,
            "description": None,
            "privacy": "closed",
            "notification_setting": "notifications_enabled",
            "permission": "push",
            "url": api,
            "html_url": f"{self.web_url}/orgs/{repo.owner}/teams/{slug}",
            "members_url": f"{api}/members{{/member}}",
            "repositories_url": f"{api}/repos",
            "type": "organization",
            "parent": None,
        }

    def _label_json(self, repo: FakeRepo, name: str) -> dict[str, Any]:
        quoted = urllib.parse.quote(name, safe="")
        return {
            "id": repo.labels[name],
            "node_id": f"LA_{_sha('label', name)[:12]}",
            "url": f"{self.api_url}/repos/{repo.full_name}/labels/{quoted}",
            "name": name,
            # GitHub sends null for a label without one, but pull-request-simple declares it a
            # non-nullable string; "" satisfies every schema that embeds a label.
            "description": "",
            "color": "ededed",
            "default": False,
        }

    def _repo_json(self, repo: FakeRepo) -> dict[str, Any]:
        """The `repository` schema (as nested in pulls)."""
        api, web = f"{self.api_url}/repos/{repo.full_name}", f"{self.web_url}/{repo.full_name}"
        return {
            "id": repo.id,
            "node_id": f"R_{_sha('repo', repo.full_name)[:12]}",
            "name": repo.name,
            "full_name": repo.full_name,
            "license": None,
            "forks": 0,
            "owner": self._user_json(repo.owner),
            "private": repo.private,
            "html_url": web,
            "description": None,
            "fork": False,
            "url": api,
            "archive_url": f"{api}/{{archive_format}}{{/ref}}",
            "assignees_url": f"{api}/assignees{{/user}}",
            "blobs_url": f"{api}/git/blobs{{/sha}}",
            "branches_url": f"{api}/branches{{/branch}}",
            "collaborators_url": f"{api}/collaborators{{/collaborator}}",
            "comments_url": f"{api}/comments{{/number}}",
            "commits_url": f"{api}/commits{{/sha}}",
            "compare_url": f"{api}/compare/{{base}}...{{head}}",
            "contents_url": f"{api}/contents/{{+path}}",
            "contributors_url": f"{api}/contributors",
            "deployments_url": f"{api}/deployments",
            "downloads_url": f"{api}/downloads",
            "events_url": f"{api}/events",
            "forks_url": f"{api}/forks",
            "git_commits_url": f"{api}/git/commits{{/sha}}",
            "git_refs_url": f"{api}/git/refs{{/sha}}",
            "git_tags_url": f"{api}/git/tags{{/sha}}",
            "git_url": f"git://{self.host}/{repo.full_name}.git",
            "issue_comment_url": f"{api}/issues/comments{{/number}}",
            "issue_events_url": f"{api}/issues/events{{/number}}",
            "issues_url": f"{api}/issues{{/number}}",
            "keys_url": f"{api}/keys{{/key_id}}",
            "labels_url": f"{api}/labels{{/name}}",
            "languages_url": f"{api}/languages",
            "merges_url": f"{api}/merges",
            "milestones_url": f"{api}/milestones{{/number}}",
            "notifications_url": f"{api}/notifications{{?since,all,participating}}",
            "pulls_url": f"{api}/pulls{{/number}}",
            "releases_url": f"{api}/releases{{/id}}",
            "ssh_url": f"git@{self.host}:{repo.full_name}.git",
            "stargazers_url": f"{api}/stargazers",
            "statuses_url": f"{api}/statuses/{{sha}}",
            "subscribers_url": f"{api}/subscribers",
            "subscription_url": f"{api}/subscription",
            "tags_url": f"{api}/tags",
            "teams_url": f"{api}/teams",
            "trees_url": f"{api}/git/trees{{/sha}}",
            "clone_url": f"{web}.git",
            "mirror_url": None,
            "hooks_url": f"{api}/hooks",
            "svn_url": web,
            "homepage": None,
            "language": None,
            "forks_count": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "size": 1,
            "default_branch": repo.default_branch,
            "open_issues_count": sum(1 for p in repo.pulls.values() if p.state == "open"),
            "is_template": False,
            "topics": [],
            "has_issues": True,
            "has_projects": True,
            "has_wiki": False,
            "has_pages": False,
            "has_downloads": True,
            "has_discussions": False,
            "archived": False,
            "disabled": False,
            "visibility": "private" if repo.private else "public",
            "pushed_at": repo.created_at,
            "created_at": repo.created_at,
            "updated_at": repo.created_at,
            "open_issues": sum(1 for p in repo.pulls.values() if p.state == "open"),
            "watchers": 0,
        }

    def _full_repo(self, repo: FakeRepo, token: Token | None) -> dict[str, Any]:
        data = self._repo_json(repo)
        push = token is not None and token.access == "write"
        data.update(
            {
                "permissions": {
                    "admin": False,
                    "maintain": False,
                    "push": push,
                    "triage": push,
                    "pull": True,
                },
                "allow_merge_commit": repo.allow_merge_commit,
                "allow_squash_merge": repo.allow_squash_merge,
                "allow_rebase_merge": repo.allow_rebase_merge,
                "allow_auto_merge": repo.allow_auto_merge,
                "delete_branch_on_merge": False,
                "allow_update_branch": False,
                "allow_forking": True,
                "web_commit_signoff_required": False,
                "subscribers_count": 1,
                "network_count": 0,
            }
        )
        return data

    def _pull_json(self, repo: FakeRepo, pull: FakePull, simple: bool = False) -> dict[str, Any]:
        """`pull-request-simple` (lists, review requests) or the full `pull-request`."""
        api = f"{self.api_url}/repos/{repo.full_name}"
        url, issue = f"{api}/pulls/{pull.number}", f"{api}/issues/{pull.number}"
        html = f"{self.web_url}/{repo.full_name}/pull/{pull.number}"
        head_sha = (repo.branch_sha(pull.head) or pull.head_sha) if pull.state == "open" else pull.head_sha
        repo_json = self._repo_json(repo)
        owner = self._user_json(repo.owner)
        data: dict[str, Any] = {
            "url": url,
            "id": _id("pull", repo.full_name, pull.number),
            "node_id": f"PR_{_sha('pull', repo.full_name, pull.number)[:12]}",
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": issue,
            "commits_url": f"{url}/commits",
            "review_comments_url": f"{url}/comments",
            "review_comment_url": f"{api}/pulls/comments{{/number}}",
            "comments_url": f"{issue}/comments",
            "statuses_url": f"{api}/statuses/{head_sha}",
            "number": pull.number,
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "user": self._user_json(pull.user),
            "body": pull.body,
            "labels": [self._label_json(repo, n) for n in pull.labels],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": pull.created_at,
            "updated_at": pull.updated_at,
            "closed_at": pull.closed_at,
            "merged_at": pull.merged_at,
            "merge_commit_sha": pull.merge_commit_sha,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [self._user_json(u) for u in pull.reviewers],
            "requested_teams": [self._team_json(repo, t) for t in pull.team_reviewers],
            "head": {
                "label": f"{repo.owner}:{pull.head}",
                "ref": pull.head,
                "sha": head_sha,
                "user": owner,
                "repo": repo_json,
            },
            "base": {
                "label": f"{repo.owner}:{pull.base}",
                "ref": pull.base,
                "sha": repo.branch_sha(pull.base) or pull.base_sha,
                "user": owner,
                "repo": repo_json,
            },
            "_links": {
                "self": {"href": url},
                "html": {"href": html},
                "issue": {"href": issue},
                "comments": {"href": f"{issue}/comments"},
                "review_comments": {"href": f"{url}/comments"},
                "review_comment": {"href": f"{api}/pulls/comments{{/number}}"},
                "commits": {"href": f"{url}/commits"},
                "statuses": {"href": f"{api}/statuses/{head_sha}"},
            },
            "author_association": "COLLABORATOR",
            "auto_merge": None
            if pull.auto_merge is None
            else {
                "enabled_by": self._user_json(pull.auto_merge["enabledBy"]),
                "merge_method": pull.auto_merge["mergeMethod"].lower(),
                "commit_title": pull.title,
                "commit_message": "",
            },
            "draft": pull.draft,
        }
        if simple:
            return data
        protection = repo.protection.get(pull.base)
        blocked = protection is not None and (
            pull.approvals < protection.required_approvals
            or any(c not in pull.passed_checks for c in protection.required_checks)
        )
        mergeable = None if pull.merged else not pull.conflict
        if pull.merged:
            state = "unknown"
        elif pull.conflict:
            state = "dirty"
        elif pull.draft:
            state = "draft"
        else:
            state = "blocked" if blocked else "clean"
        data["requested_teams"] = [
            {k: v for k, v in self._team_json(repo, t).items() if k != "parent"} for t in pull.team_reviewers
        ]
        data.update(
            {
                "merged": pull.merged,
                "mergeable": mergeable,
                "rebaseable": mergeable,
                "mergeable_state": state,
                "merged_by": self._user_json(pull.merged_by) if pull.merged_by else None,
                "comments": 0,
                "review_comments": 0,
                "maintainer_can_modify": False,
                "commits": 1,
                "additions": 1,
                "deletions": 1,
                "changed_files": 1,
            }
        )
        return data
