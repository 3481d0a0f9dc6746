"""A stateful fake of Bitbucket Server / Data Center's REST API 1.0 (the parts the adapter uses).

No machine-readable description of the Data Center API can be had here; this follows Atlassian's
REST documentation (developer.atlassian.com/server/bitbucket/rest, "Pull requests" and
"Repository" groups) and the bodies the real server is known to send (Atlassian KB articles,
Renovate's Bitbucket Server platform code and tests):

- Everything lives under [/context]/rest/api/1.0 (or /rest/api/latest); repositories are
  /projects/{projectKey}/repos/{slug}; personal repositories use the project key `~USER` (and the
  alternative /users/{userSlug}/repos/{slug}). Project keys and slugs match case-insensitively,
  as clone URLs carry the key lower-cased.
- Errors use the envelope `{"errors":[{"context":…,"message":…,"exceptionName":…}]}`.
  Failed authentication is 401 IncorrectPasswordAuthenticationException; missing permission is 401
  `com.atlassian.bitbucket.AuthorisationException`; unknown project/repository/pull request 404.
- Auth: `Authorization: Bearer <HTTP access token>`, or Basic with username + password (or
  username + token).
- Paging: `start`/`limit` (default 25) → `size`, `limit`, `isLastPage`, `values`, `start`, and
  `nextPageStart` when there is a next page.
- Pull requests carry a `version`; PUT and merge must send the current one (else 409
  PullRequestOutOfDateException with currentVersion/expectedVersion). Creating a second open PR for
  the same refs is 409 DuplicatePullRequestException (with existingPullRequest); unknown reviewers
  are 409 InvalidPullRequestReviewersException (reviewerErrors, validReviewers). A PUT replaces the
  reviewer list (the cautious reading Renovate also follows: a client that omits it loses them).
- Merge: `POST …/merge?version=N`, optional JSON body with `strategyId`; a vetoed merge is 409
  PullRequestMergeVetoedException with `vetoes[].summaryMessage/detailedMessage` (or `conflicted`).
  Which status and exception a *disabled* strategyId gets is not documented: the fake answers 409
  with a plain message, and the adapter does not depend on it (it reads the repository's merge
  settings to explain).
- `draft` is honoured when `supports_drafts` (Data Center 8.18+); otherwise ignored and omitted.
- Rate limiting (Data Center's token buckets, "Improving instance stability with rate limiting"):
  429 with `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Interval-Seconds`,
  `X-RateLimit-FillRate` and `Retry-After` (seconds until new tokens), no reset time
  (`rate_limit_next`).
- A merge that took effect but whose answer was lost (`fail_next(502, processed=True)`, or
  `stall_next`) leaves the pull request MERGED with a new `version`: the resent merge gets 409
  PullRequestOutOfDateException carrying the current `pullRequest`.

- Auto-merge (Data Center 8.15+; the 8.19 REST description, RestPullRequestMergeRequest and
  RestAutoMergeRequest): the merge call asks for it with `autoMerge: true` in its body. Nothing vetoing,
  the server merges at once; vetoed by merge checks (not by conflicts) in a repository whose auto-merge
  setting is on (`auto_merge=True`, off by default), the server records an auto-merge request and
  answers 200 with the pull request still OPEN; `GET …/pull-requests/{id}/auto-merge` shows it (404
  without one). A server before 8.15 (`version`) or a repository with auto-merge off ignores the flag:
  the usual 409 veto. `pass_builds`/`approve` satisfy the checks, and a recorded auto-merge then merges.
  `GET …/application-properties` reports `version`; `GET …/pull-requests/{id}/merge` says whether the
  pull request can be merged (`canMerge`, `conflicted`, `outcome`, `vetoes`).

Server-side state is plain dicts; keys prefixed `_` are knobs tests turn (`_conflicted`,
`_approvals`, `_builds_ok`, …) and never appear in responses.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import time
import urllib.parse
from typing import Any

from tests.fakes._fake_http import FakeService, RawRequest, Reply

LEVELS = {"REPO_READ": 1, "REPO_WRITE": 2, "REPO_ADMIN": 3}
STRATEGIES = {
    "no-ff": (
        "Merge commit",
        "--no-ff",
        "Always create a new merge commit and update the target branch to it.",
    ),
    "ff": ("Fast-forward", "--ff", "Fast-forward if possible, otherwise create a merge commit."),
    "ff-only": ("Fast-forward only", "--ff-only", "Reject unless the target branch can be fast-forwarded."),
    "rebase-no-ff": (
        "Rebase, merge",
        "rebase + merge --no-ff",
        "Rebase onto the target, then a merge commit.",
    ),
    "rebase-ff-only": (
        "Rebase, fast-forward",
        "rebase + merge --ff-only",
        "Rebase onto the target, then ff.",
    ),
    "squash": (
        "Squash",
        "--squash",
        "Combine all commits into one new non-merge commit on the target branch.",
    ),
    "squash-ff-only": ("Squash, fast-forward only", "--squash --ff-only", "Squash, only if up to date."),
}
AUTHORISATION = "com.atlassian.bitbucket.AuthorisationException"


def _error(status: int, message: str, exception: str | None = None, **extra: Any) -> Reply:
    entry: dict[str, Any] = {"context": None, "message": message, "exceptionName": exception}
    entry.update(extra)
    return Reply.json(status, {"errors": [entry]})


def _sha(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


class FakeBitbucketServer(FakeService):
    """Bitbucket Server at http://127.0.0.1:PORT[context]; its REST API at `.api_url`."""

    def __init__(self, context: str = "", *, supports_drafts: bool = True) -> None:
        super().__init__()
        self.context = context.rstrip("/")
        self.api_prefix = f"{self.context}/rest/api/1.0"
        self.supports_drafts = supports_drafts
        self.version = "8.19.1"  # GET /application-properties; auto-merge needs 8.15+
        self.users: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, str] = {}  # token -> username
        self.repos: dict[tuple[str, str], dict[str, Any]] = {}  # (KEY, slug) upper/lower-cased
        self.pulls: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    # -- set-up ---------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self.root_url + self.context

    @property
    def api_url(self) -> str:
        return self.base_url + "/rest/api/1.0"

    def add_user(self, name: str, *, password: str | None = None) -> dict[str, Any]:
        user = {
            "name": name,
            "emailAddress": f"{name}@example.com",
            "id": next(self._ids),
            "displayName": name.title(),
            "active": True,
            "slug": name.lower(),
            "type": "NORMAL",
            "_password": password,
        }
        self.users[name.lower()] = user
        return user

    def add_token(self, token: str, username: str) -> None:
        """An HTTP access token acting as `username` (a project/repository token's bot user, too)."""
        if username.lower() not in self.users:
            self.add_user(username)
        self.tokens[token] = username.lower()

    def add_repo(
        self,
        key: str,
        slug: str,
        *,
        default_branch: str | None = "main",
        permissions: dict[str, str] | None = None,
        public: bool = False,
        strategies: tuple[str, ...] = ("no-ff",),
        default_strategy: str = "no-ff",
        required_approvals: int = 0,
        required_builds: int = 0,
        auto_merge: bool = False,
    ) -> dict[str, Any]:
        """A repository; `permissions`: username -> REPO_READ/REPO_WRITE/REPO_ADMIN."""
        for username in permissions or {}:
            if username.lower() not in self.users:
                self.add_user(username)
        personal = key.startswith("~")
        owner = key[1:].lower()
        project: dict[str, Any] = {
            "key": key.upper(),
            "id": next(self._ids),
            "name": owner.title() if personal else key.title(),
            "public": public,
            "type": "PERSONAL" if personal else "NORMAL",
            "links": {"self": [{"href": self._project_web(key)}]},
        }
        if personal:
            if owner not in self.users:
                self.add_user(owner)
            project["owner"] = self._user(self.users[owner])
        scm = key.lower()
        repo = {
            "slug": slug.lower(),
            "id": next(self._ids),
            "name": slug,
            "hierarchyId": _sha("hierarchy", key, slug)[:20],
            "scmId": "git",
            "state": "AVAILABLE",
            "statusMessage": "Available",
            "forkable": True,
            "project": project,
            "public": public,
            "archived": False,
            "links": {
                "clone": [
                    {"href": f"{self.base_url}/scm/{scm}/{slug.lower()}.git", "name": "http"},
                    {"href": f"ssh://git@127.0.0.1:7999/{scm}/{slug.lower()}.git", "name": "ssh"},
                ],
                "self": [{"href": f"{self._project_web(key)}/repos/{slug.lower()}/browse"}],
            },
            "_default_branch": default_branch,
            "_permissions": {k.lower(): v for k, v in (permissions or {}).items()},
            "_strategies": set(strategies),
            "_default_strategy": default_strategy,
            "_required_approvals": required_approvals,
            "_required_builds": required_builds,
            "_auto_merge": auto_merge,
        }
        self.repos[(key.upper(), slug.lower())] = repo
        return repo

    def add_pull(
        self, key: str, slug: str, source: str, target: str, title: str, *, author: str, description: str = ""
    ) -> dict[str, Any]:
        """Seed an open pull request, as if opened earlier through the UI."""
        with self.lock:
            repo = self.repos[(key.upper(), slug.lower())]
            return self._new_pull(
                repo, self.users[author.lower()], source, target, title, description, [], False
            )

    def pull(self, key: str, slug: str, pull_id: int) -> dict[str, Any]:
        repo = self.repos[(key.upper(), slug.lower())]
        return next(p for p in self.pulls if p["_repo"] is repo and p["id"] == pull_id)

    def pass_builds(self, key: str, slug: str, pull_id: int) -> None:
        """The required builds report success; a recorded auto-merge merges once nothing vetoes."""
        with self.lock:
            pull = self.pull(key, slug, pull_id)
            pull["_builds_ok"] = True
            self._auto_merge_if_ready(pull)

    def approve(self, key: str, slug: str, pull_id: int, count: int = 1) -> None:
        with self.lock:
            pull = self.pull(key, slug, pull_id)
            pull["_approvals"] += count
            self._auto_merge_if_ready(pull)

    def _auto_merge_if_ready(self, pull: dict[str, Any]) -> None:
        request = pull.get("_auto_merge_request")
        if request and pull["state"] == "OPEN" and not pull["_conflicted"] and not self._vetoes(pull):
            self._complete_merge(pull, request["strategyId"])

    def _version(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.version.split(".")[:2])

    def rate_limit_next(
        self, count: int = 1, *, retry_after: int = 5, method: str | None = None, path: str | None = None
    ) -> None:
        """The token bucket is empty for the next `count` matching requests: 429 with Retry-After."""
        headers = {
            "X-RateLimit-Limit": "60",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Interval-Seconds": "1",
            "X-RateLimit-FillRate": "5",
            "Retry-After": str(retry_after),
        }
        self.fail_next(429, count=count, method=method, path=path, headers=headers)

    def default_fault_body(self, status: int) -> Any:
        message = {429: "You have been rate limited; try again later."}.get(status, f"HTTP {status}")
        return {"errors": [{"context": None, "message": message, "exceptionName": None}]}

    def relative(self, raw_path: str) -> str | None:
        for prefix in (self.api_prefix, f"{self.context}/rest/api/latest"):
            if raw_path == prefix or raw_path.startswith(prefix + "/"):
                return raw_path[len(prefix) :] or "/"
        return None

    # -- routing --------------------------------------------------------------------------------------

    def handle(self, request: RawRequest, relative: str | None) -> Reply:
        if relative is None:
            return Reply(404, b"<html><body>Not Found</body></html>", {"Content-Type": "text/html"})
        user = self._authenticate(request)
        if isinstance(user, Reply):
            return user
        if relative == "/application-properties" and request.method == "GET":
            return Reply.json(
                200,
                {
                    "version": self.version,
                    "buildNumber": self.version.replace(".", "0"),
                    "displayName": "Bitbucket",
                },
            )
        match = re.fullmatch(r"/(projects|users)/([^/]+)/repos/([^/]+)(/.*)?", relative)
        if not match:
            return _error(404, f"No resource at {relative}")
        kind, owner, slug = match[1], urllib.parse.unquote(match[2]), urllib.parse.unquote(match[3])
        key = f"~{owner}" if kind == "users" else owner
        rest = match[4] or ""
        project_exists = any(k == key.upper() for k, _ in self.repos)
        repo = self.repos.get((key.upper(), slug.lower()))
        if repo is None:
            if not project_exists:
                return _error(
                    404,
                    f"Project {key} does not exist.",
                    "com.atlassian.bitbucket.project.NoSuchProjectException",
                )
            return _error(
                404,
                f"Repository {key}/{slug} does not exist.",
                "com.atlassian.bitbucket.repository.NoSuchRepositoryException",
            )
        level = self._level(repo, user)
        if level < LEVELS["REPO_READ"] and not repo["public"]:
            return _error(401, "You are not permitted to access this resource", AUTHORISATION)
        method = request.method

        if rest == "" and method == "GET":
            return Reply.json(200, self._public(repo))
        if rest == "/branches/default" and method == "GET":
            return self._default_branch(repo)
        if rest == "/settings/pull-requests" and method == "GET":
            return Reply.json(200, self._settings(repo))
        if rest == "/pull-requests" and method == "GET":
            return self._list_pulls(request, repo)
        if rest == "/pull-requests" and method == "POST":
            return self._create(request, repo, user, level)
        pr_match = re.fullmatch(r"/pull-requests/(\d+)(/merge|/auto-merge)?", rest)
        if pr_match:
            pull = next((p for p in self.pulls if p["_repo"] is repo and p["id"] == int(pr_match[1])), None)
            if pull is None:
                return _error(
                    404,
                    f"Pull request {pr_match[1]} does not exist in {key}/{slug}.",
                    "com.atlassian.bitbucket.pull.NoSuchPullRequestException",
                )
            if pr_match[2] is None and method == "GET":
                return Reply.json(200, self._render(pull))
            if pr_match[2] is None and method == "PUT":
                return self._update(request, pull, user, level)
            if pr_match[2] == "/merge" and method == "POST":
                return self._merge(request, pull, user, level)
            if pr_match[2] == "/merge" and method == "GET":
                vetoes = self._vetoes(pull)
                can = pull["state"] == "OPEN" and not pull["_conflicted"] and not vetoes
                outcome = "CONFLICTED" if pull["_conflicted"] else "CLEAN"
                return Reply.json(
                    200,
                    {
                        "canMerge": can,
                        "conflicted": pull["_conflicted"],
                        "outcome": outcome,
                        "vetoes": vetoes,
                    },
                )
            if pr_match[2] == "/auto-merge" and method == "GET" and self._version() >= (8, 15):
                request_ = pull.get("_auto_merge_request")
                if not request_:
                    return _error(404, f"Pull request {pull['id']} has no auto-merge request.")
                return Reply.json(200, {k: v for k, v in request_.items() if k != "user"})
        return _error(405, f"{method} is not supported for {relative}")

    def _authenticate(self, request: RawRequest) -> dict[str, Any] | Reply | None:
        header = request.header("authorization") or ""
        failed = _error(
            401,
            "Authentication failed. Please check your credentials and try again.",
            "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException",
        )
        if header.lower().startswith("bearer "):
            name = self.tokens.get(header[7:].strip())
            return self.users[name] if name else failed
        if header.lower().startswith("basic "):
            try:
                username, _, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return failed
            user = self.users.get(username.lower())
            if user is None:
                return failed
            if secret and (secret == user["_password"] or self.tokens.get(secret) == username.lower()):
                return user
            return failed
        return None

    def _level(self, repo: dict[str, Any], user: dict[str, Any] | None) -> int:
        if user is None:
            return 0
        if repo["project"]["type"] == "PERSONAL" and repo["project"]["key"] == f"~{user['slug'].upper()}":
            return LEVELS["REPO_ADMIN"]
        return LEVELS.get(repo["_permissions"].get(user["name"].lower(), ""), 0)

    # -- endpoints ------------------------------------------------------------------------------------

    def _default_branch(self, repo: dict[str, Any]) -> Reply:
        branch = repo["_default_branch"]
        if branch is None:
            return Reply(204)  # an empty repository has no default branch yet
        head = _sha("branch", repo["id"], branch)
        return Reply.json(
            200,
            {
                "id": f"refs/heads/{branch}",
                "displayId": branch,
                "type": "BRANCH",
                "latestCommit": head,
                "latestChangeset": head,
                "isDefault": True,
            },
        )

    def _list_pulls(self, request: RawRequest, repo: dict[str, Any]) -> Reply:
        state = (request.param("state") or "OPEN").upper()
        direction = (request.param("direction") or "INCOMING").upper()
        at = request.param("at")
        pulls = [p for p in self.pulls if p["_repo"] is repo]
        if state != "ALL":
            pulls = [p for p in pulls if p["state"] == state]
        if at:
            ref = at if at.startswith("refs/") else f"refs/heads/{at}"
            side = "fromRef" if direction == "OUTGOING" else "toRef"
            pulls = [p for p in pulls if p[side]["id"] == ref]
        newest_first = (request.param("order") or "NEWEST").upper() == "NEWEST"
        pulls.sort(key=lambda p: p["id"], reverse=newest_first)
        return self._page(request, [self._render(p) for p in pulls])

    def _create(
        self, request: RawRequest, repo: dict[str, Any], user: dict[str, Any] | None, level: int
    ) -> Reply:
        if user is None:
            return _error(401, "You are not permitted to access this resource", AUTHORISATION)
        data = request.json()
        title = (data.get("title") or "").strip()
        if not title:
            return Reply.json(
                400,
                {"errors": [{"context": "title", "message": "A title is required.", "exceptionName": None}]},
            )
        refs = []
        for side in ("fromRef", "toRef"):
            ref = data.get(side) or {}
            ref_id = ref.get("id") or ""
            target = ref.get("repository") or {}
            if target and (
                (target.get("slug") or "").lower() != repo["slug"]
                or ((target.get("project") or {}).get("key") or "").upper() != repo["project"]["key"]
            ):
                return _error(
                    400, f"{side} must be a ref of {repo['project']['key']}/{repo['slug']} in this fake"
                )
            if not ref_id:
                return Reply.json(
                    400,
                    {"errors": [{"context": side, "message": f"{side} is required.", "exceptionName": None}]},
                )
            refs.append(ref_id if ref_id.startswith("refs/") else f"refs/heads/{ref_id}")
        for other in self.pulls:
            if (
                other["_repo"] is repo
                and other["state"] == "OPEN"
                and [other["fromRef"]["id"], other["toRef"]["id"]] == refs
            ):
                return _error(
                    409,
                    "Only one pull request may be open for a given source and target branch",
                    "com.atlassian.bitbucket.pull.DuplicatePullRequestException",
                    existingPullRequest=self._render(other),
                )
        reviewers, problem = self._reviewers(repo, data.get("reviewers") or [], user)
        if problem is not None:
            return problem
        draft = bool(data.get("draft")) and self.supports_drafts
        pull = self._new_pull(
            repo,
            user,
            refs[0].removeprefix("refs/heads/"),
            refs[1].removeprefix("refs/heads/"),
            title,
            data.get("description") or "",
            reviewers,
            draft,
        )
        return Reply.json(201, self._render(pull))

    def _update(
        self, request: RawRequest, pull: dict[str, Any], user: dict[str, Any] | None, level: int
    ) -> Reply:
        if user is None or (level < LEVELS["REPO_WRITE"] and pull["author"]["user"]["name"] != user["name"]):
            return _error(401, "You are not permitted to access this resource", AUTHORISATION)
        data = request.json()
        stale = self._stale(pull, data.get("version"))
        if stale:
            return stale
        reviewers, problem = self._reviewers(pull["_repo"], data.get("reviewers") or [], user)
        if problem is not None:
            return problem
        if data.get("title"):
            pull["title"] = data["title"]
        if "description" in data:
            pull["description"] = data["description"] or ""
        pull["_reviewers"] = reviewers  # the list replaces the reviewers
        if "draft" in data and self.supports_drafts:
            pull["_draft"] = bool(data["draft"])
        pull["version"] += 1
        pull["updatedDate"] = int(time.time() * 1000)
        return Reply.json(200, self._render(pull))

    def _merge(
        self, request: RawRequest, pull: dict[str, Any], user: dict[str, Any] | None, level: int
    ) -> Reply:
        if user is None or level < LEVELS["REPO_WRITE"]:
            return _error(401, "You are not permitted to access this resource", AUTHORISATION)
        data = request.json() if request.body else {}
        version = request.param("version")
        stale = self._stale(pull, version if version is not None else data.get("version", -1))
        if stale:
            return stale
        if pull["state"] != "OPEN":
            return _error(
                409,
                f"Pull request {pull['id']} is {pull['state'].lower()} and cannot be merged.",
                "com.atlassian.bitbucket.pull.IllegalPullRequestStateException",
            )
        repo = pull["_repo"]
        strategy = data.get("strategyId") or repo["_default_strategy"]
        if strategy not in STRATEGIES:
            return _error(400, f"{strategy} is not a merge strategy.")
        if strategy not in repo["_strategies"]:
            return _error(
                409, f'The merge strategy "{STRATEGIES[strategy][0]}" is not enabled for this repository.'
            )
        if pull["_conflicted"]:
            return _error(
                409,
                "The pull request has conflicts and cannot be merged.",
                "com.atlassian.bitbucket.pull.PullRequestMergeVetoedException",
                conflicted=True,
                vetoes=[],
            )
        vetoes = self._vetoes(pull)
        auto = bool(data.get("autoMerge")) and self._version() >= (8, 15) and repo["_auto_merge"]
        if vetoes and auto:
            pull["_auto_merge_request"] = {
                "autoSubject": True,
                "createdDate": int(time.time() * 1000),
                "fromHash": pull["fromRef"]["latestCommit"],
                "strategyId": strategy,
                "toRefId": pull["toRef"]["id"],
                "user": user["name"],
            }
            return Reply.json(200, self._render(pull))
        if vetoes:
            return _error(
                409,
                "Merging the pull request has been vetoed.",
                "com.atlassian.bitbucket.pull.PullRequestMergeVetoedException",
                conflicted=False,
                vetoes=vetoes,
            )
        self._complete_merge(pull, strategy)
        return Reply.json(200, self._render(pull))

    def _vetoes(self, pull: dict[str, Any]) -> list[dict[str, str]]:
        repo = pull["_repo"]
        vetoes = []
        missing = repo["_required_approvals"] - pull["_approvals"]
        if missing > 0:
            vetoes.append(
                {
                    "summaryMessage": "Requires approvals",
                    "detailedMessage": f"You still need {missing} approvals before this pull request can "
                    "be merged.",
                }
            )
        if repo["_required_builds"] and not pull["_builds_ok"]:
            vetoes.append(
                {
                    "summaryMessage": "Not all required builds are successful yet",
                    "detailedMessage": "You still need a minimum of one successful build before this pull "
                    "request can be merged.",
                }
            )
        return vetoes

    def _complete_merge(self, pull: dict[str, Any], strategy: str) -> None:
        repo = pull["_repo"]
        now = int(time.time() * 1000)
        commit = _sha("merge", repo["id"], pull["id"], strategy)
        pull.update(state="MERGED", version=pull["version"] + 1, updatedDate=now, closedDate=now)
        pull["_strategy"] = strategy
        pull["_merge_commit"] = {"displayId": commit[:11], "id": commit}
        pull["_auto_merge_request"] = None

    # -- model ----------------------------------------------------------------------------------------

    def _reviewers(
        self, repo: dict[str, Any], entries: list[Any], author: dict[str, Any]
    ) -> tuple[list[str], Reply | None]:
        names = [((e or {}).get("user") or {}).get("name") or "" for e in entries]
        valid = [n.lower() for n in names if n.lower() in self.users]
        invalid = [n for n in names if n.lower() not in self.users]
        if invalid:
            return valid, _error(
                409,
                "Errors encountered while adding some reviewers to this pull request.",
                "com.atlassian.bitbucket.pull.InvalidPullRequestReviewersException",
                reviewerErrors=[
                    {"context": n, "message": f"{n} is not a user.", "exceptionName": None} for n in invalid
                ],
                validReviewers=[self._user(self.users[n]) for n in valid],
            )
        return valid, None

    def _stale(self, pull: dict[str, Any], sent: Any) -> Reply | None:
        try:
            expected = int(sent) if sent is not None else -1
        except (TypeError, ValueError):
            expected = -1
        if expected == pull["version"]:
            return None
        return _error(
            409,
            "You are attempting to modify a pull request based on out-of-date information.",
            "com.atlassian.bitbucket.pull.PullRequestOutOfDateException",
            currentVersion=pull["version"],
            expectedVersion=expected,
            pullRequest=self._render(pull),
        )

    def _new_pull(
        self,
        repo: dict[str, Any],
        author: dict[str, Any],
        source: str,
        target: str,
        title: str,
        description: str,
        reviewers: list[str],
        draft: bool,
    ) -> dict[str, Any]:
        now = int(time.time() * 1000)
        pull_id = 1 + max((p["id"] for p in self.pulls if p["_repo"] is repo), default=0)
        pull: dict[str, Any] = {
            "id": pull_id,
            "version": 0,
            "title": title,
            "description": description,
            "state": "OPEN",
            "createdDate": now,
            "updatedDate": now,
            "fromRef": self._ref(repo, source),
            "toRef": self._ref(repo, target),
            "locked": False,
            "author": {
                "user": self._user(author),
                "role": "AUTHOR",
                "approved": False,
                "status": "UNAPPROVED",
            },
            "participants": [],
            "_repo": repo,
            "_reviewers": reviewers,
            "_draft": draft,
            "_conflicted": False,
            "_approvals": 0,
            "_builds_ok": False,
            "_strategy": None,
            "_merge_commit": None,
        }
        self.pulls.append(pull)
        return pull

    def _render(self, pull: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in pull.items() if not k.startswith("_")}
        out["open"] = pull["state"] == "OPEN"
        out["closed"] = pull["state"] != "OPEN"
        if self.supports_drafts:
            out["draft"] = pull["_draft"]
        out["reviewers"] = [
            {
                "user": self._user(self.users[name]),
                "role": "REVIEWER",
                "approved": False,
                "status": "UNAPPROVED",
            }
            for name in pull["_reviewers"]
        ]
        if pull["_merge_commit"]:
            out["properties"] = {"mergeCommit": pull["_merge_commit"]}
        repo = pull["_repo"]
        web = f"{self._project_web(repo['project']['key'])}/repos/{repo['slug']}"
        out["links"] = {"self": [{"href": f"{web}/pull-requests/{pull['id']}"}]}
        return out

    def _ref(self, repo: dict[str, Any], branch: str) -> dict[str, Any]:
        return {
            "id": f"refs/heads/{branch}",
            "displayId": branch,
            "latestCommit": _sha("branch", repo["id"], branch),
            "type": "BRANCH",
            "repository": self._public(repo),
        }

    def _settings(self, repo: dict[str, Any]) -> dict[str, Any]:
        def strategy(sid: str) -> dict[str, Any]:
            name, flag, description = STRATEGIES[sid]
            return {
                "description": description,
                "enabled": sid in repo["_strategies"],
                "flag": flag,
                "id": sid,
                "name": name,
                "links": {},
            }

        return {
            "mergeConfig": {
                "commitSummaries": 20,
                "defaultStrategy": strategy(repo["_default_strategy"]),
                "strategies": [strategy(sid) for sid in STRATEGIES],
                "type": "REPOSITORY",
            },
            "requiredAllApprovers": False,
            "requiredAllTasksComplete": False,
            "requiredApprovers": repo["_required_approvals"],
            "requiredSuccessfulBuilds": repo["_required_builds"],
        }

    def _page(self, request: RawRequest, items: list[dict[str, Any]]) -> Reply:
        try:
            start = max(0, int(request.param("start") or 0))
            limit = max(1, min(1000, int(request.param("limit") or 25)))
        except ValueError:
            return _error(400, "start and limit must be numbers")
        chunk = items[start : start + limit]
        last = start + limit >= len(items)
        page: dict[str, Any] = {
            "size": len(chunk),
            "limit": limit,
            "isLastPage": last,
            "values": chunk,
            "start": start,
        }
        if not last:
            page["nextPageStart"] = start + len(chunk)
        return Reply.json(200, page)

    def _public(self, repo: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in repo.items() if not k.startswith("_")}

    def _user(self, user: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in user.items() if not k.startswith("_")}
        out["links"] = {"self": [{"href": f"{self.base_url}/users/{user['slug']}"}]}
        return out

    def _project_web(self, key: str) -> str:
        if key.startswith("~"):
            return f"{self.base_url}/users/{key[1:].lower()}"
        return f"{self.base_url}/projects/{key.upper()}"
