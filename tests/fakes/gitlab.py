"""A stateful fake of the GitLab REST API v4 (the parts the adapter uses), on a real socket.

No machine-readable description of GitLab's API can be had here, so this follows the REST
documentation (docs.gitlab.com/ee/api/merge_requests.html, projects.html, users.html,
rest/index.html#pagination) and GitLab's own API code (lib/api/merge_requests.rb) for the status
codes and bodies the adapter depends on:

- Projects are addressed by numeric id or URL-encoded full path (`group%2Fsub%2Frepo`); the fake
  sees the raw request line, so an unencoded path does not match (404 `{"error":"404 Not Found"}`).
- Auth (docs.gitlab.com/api/rest/authentication, ci/jobs/ci_job_token, api/oauth2): personal, project
  and group access tokens in `PRIVATE-TOKEN` (or `private_token`) or as `Authorization: Bearer`;
  OAuth2 access tokens only as Bearer (or `access_token`) — in `PRIVATE-TOKEN` they are unknown, 401;
  an expired or revoked OAuth token is 401 `{"error":"invalid_token","error_description":...}` with a
  `WWW-Authenticate: Bearer` header; any other bad token is 401 `{"message":"401 Unauthorized"}`; a
  `read_api` token writing is 403 `{"error":"insufficient_scope",...,"scope":"api"}`; a project the
  user cannot see is 404 `{"message":"404 Project Not Found"}`. A CI job token (`JOB-TOKEN`) counts
  only on the endpoints GitLab opens to job tokens (here `GET /job`; merge-request reads only when
  `job_token_can_read_merge_requests`): elsewhere GitLab ignores it and the request is anonymous, so
  reading a private project is 404 and any merge-request write 401 (`authenticate_non_get!`).
- Merge requests: `iid` per project, global `id`, states opened/closed/merged, `Draft:` title prefix,
  409 with a list message for a duplicate open MR, merge refusals 401 (may not merge into a protected
  branch), 405 (not mergeable: draft, closed, pipeline, approvals, threads, still checking),
  422 "Branch cannot be merged" (conflicts, fast-forward impossible, squash not allowed), 409 (sha
  mismatch); asynchronous rebase (`PUT .../rebase` → 202, `rebase_in_progress` until done).
- Branches (`GET /projects/:id/repository/branches/:branch`) come from the repository, current at
  once; a merge request's `sha` follows a push to its branch only after GitLab's asynchronous
  refresh (`push(..., refresh_after=N)` scripts that delay).
- Pagination: `page`/`per_page` (default 20, max 100) with `X-Page`, `X-Per-Page`, `X-Total`,
  `X-Total-Pages`, `X-Next-Page`, `X-Prev-Page` and `Link` (first/prev/next/last) headers.
- Rate limits (docs.gitlab.com, "User and IP rate limits", response headers): Rack::Attack answers
  429 `Retry later` (plain text) with `RateLimit-Name`, `RateLimit-Limit`, `RateLimit-Observed`,
  `RateLimit-Remaining: 0`, `RateLimit-Reset` (Unix time), `RateLimit-ResetTime` (RFC 2616) and
  `Retry-After` (seconds); some proxies in front of GitLab drop `Retry-After` (`throttle_next`).
- Faults after the work was done (`fail_next(..., processed=True)`: a merge GitLab carried out,
  answered 502 by the load balancer) and answers that never come in time (`stall_next`).

Auto-merge (docs.gitlab.com/api/merge_requests, "Merge a merge request"; lib/api/merge_requests.rb):
`PUT …/merge` with `auto_merge: true` (GitLab 17.11+; `merge_when_pipeline_succeeds: true`, its older
name, still works and the API ORs the two; a server older than `version` 17.11 does not know
`auto_merge` and ignores it). With either set, GitLab takes an auto-merge strategy when one applies
("merge when checks pass" from 17.0: a running pipeline, missing approvals, unresolved threads, a
draft, still checking; before 17.0 only a running pipeline), setting `merge_when_pipeline_succeeds`
on the merge request and answering 200 with it still `opened`; with no strategy it merges at once
when the pipeline allows it (no pipeline, or a successful one), else 405. `finish_pipeline` ends the
head pipeline; an auto-merge then merges, as GitLab does when the pipeline succeeds (a failed
pipeline leaves it set).

Server-side state is plain dicts: `merge_requests` holds each MR as rendered by the API plus knobs
prefixed `_` that tests turn to script a situation (`_conflicts`, `_pipeline`, `_checking`, ...).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from tests.fakes._fake_http import FakeService, RawRequest, Reply

GUEST, REPORTER, DEVELOPER, MAINTAINER, OWNER = 10, 20, 30, 40, 50
_DRAFT = re.compile(r"^\s*(\[draft\]|\(draft\)|draft:|draft\s-\s|\[wip\]|wip:)\s*", re.IGNORECASE)
_NOT_FOUND = {"error": "404 Not Found"}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _sha(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


class FakeGitLab(FakeService):
    """GitLab at http://127.0.0.1:PORT[relative_root]; the API at `.api_url`."""

    def __init__(self, relative_root: str = "") -> None:
        super().__init__()
        self.relative_root = relative_root.rstrip("/")
        self.api_prefix = f"{self.relative_root}/api/v4"
        self.users: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.projects: dict[str, dict[str, Any]] = {}  # full path (lower-cased) -> project
        self.merge_requests: list[dict[str, Any]] = []
        # No merge-request endpoint is in GitLab's job-token feature list; a server whose fine-grained
        # job-token permissions open merge-request reads is modelled by turning this on.
        self.job_token_can_read_merge_requests = False
        self.version = (18, 5)  # what GET /version reports; before (17, 11) `auto_merge` is ignored
        self._ids = itertools.count(101)

    # -- set-up ---------------------------------------------------------------------------------------

    @property
    def web_url(self) -> str:
        return self.root_url + self.relative_root

    @property
    def api_url(self) -> str:
        return self.web_url + "/api/v4"

    def add_user(self, username: str, name: str | None = None) -> dict[str, Any]:
        user = {
            "id": next(self._ids),
            "username": username,
            "name": name or username.title(),
            "state": "active",
            "locked": False,
            "avatar_url": None,
        }
        self.users[username.lower()] = user
        return user

    def add_token(
        self,
        token: str,
        username: str,
        *,
        scopes: tuple[str, ...] = ("api",),
        kind: str = "personal",
        expired: bool = False,
        revoked: bool = False,
    ) -> None:
        """kind: personal/project/group access token, "oauth" for an OAuth2 access token (Bearer only),
        or "job" for a CI job token (sent as JOB-TOKEN). expired/revoked: an OAuth token's states."""
        if username.lower() not in self.users:
            self.add_user(username)
        self.tokens[token] = {
            "user": username.lower(),
            "scopes": set(scopes),
            "kind": kind,
            "expired": expired,
            "revoked": revoked,
        }

    def add_repo(
        self,
        path: str,
        *,
        default_branch: str = "main",
        members: dict[str, int] | None = None,
        visibility: str = "private",
        merge_method: str = "merge",
        squash_option: str = "default_off",
        pipeline_must_succeed: bool = False,
        protected_branches: tuple[str, ...] | None = None,
        approvals_required: int = 0,
    ) -> dict[str, Any]:
        """A project at `path` (nested groups allowed). members: username -> access level."""
        for username in members or {}:
            if username.lower() not in self.users:
                self.add_user(username)
        namespace = path.rsplit("/", 1)[0]
        project = {
            "id": next(self._ids),
            "description": None,
            "name": path.rsplit("/", 1)[-1],
            "name_with_namespace": " / ".join(path.split("/")),
            "path": path.rsplit("/", 1)[-1],
            "path_with_namespace": path,
            "created_at": _now(),
            "default_branch": default_branch,
            "tag_list": [],
            "topics": [],
            "ssh_url_to_repo": f"git@127.0.0.1:{path}.git",
            "http_url_to_repo": f"{self.web_url}/{path}.git",
            "web_url": f"{self.web_url}/{path}",
            "readme_url": None,
            "avatar_url": None,
            "forks_count": 0,
            "star_count": 0,
            "last_activity_at": _now(),
            "namespace": {
                "id": next(self._ids),
                "name": namespace.rsplit("/", 1)[-1],
                "path": namespace.rsplit("/", 1)[-1],
                "kind": "group",
                "full_path": namespace,
                "parent_id": None,
                "avatar_url": None,
                "web_url": f"{self.web_url}/groups/{namespace}",
            },
            "visibility": visibility,
            "archived": False,
            "empty_repo": False,
            "merge_requests_enabled": True,
            "merge_method": merge_method,
            "squash_option": squash_option,
            "only_allow_merge_if_pipeline_succeeds": pipeline_must_succeed,
            "only_allow_merge_if_all_discussions_are_resolved": False,
            "_members": {k.lower(): v for k, v in (members or {}).items()},
            "_protected": set(protected_branches if protected_branches is not None else (default_branch,)),
            "_approvals_required": approvals_required,
            "_branches": {default_branch: _sha("branch", path, default_branch)},
            "_next_iid": 1,
        }
        self.projects[path.lower()] = project
        return project

    def add_merge_request(
        self, path: str, source: str, target: str, title: str, *, author: str, description: str = ""
    ) -> dict[str, Any]:
        """Seed an existing open MR, as if opened earlier through the UI."""
        with self.lock:
            project = self.projects[path.lower()]
            return self._new_mr(
                project, self.users[author.lower()], source, target, title, description, [], []
            )

    def mr(self, path: str, iid: int) -> dict[str, Any]:
        project = self.projects[path.lower()]
        return next(m for m in self.merge_requests if m["project_id"] == project["id"] and m["iid"] == iid)

    def push(self, path: str, branch: str, *, refresh_after: int = 0) -> str:
        """A new commit on `branch`; open MRs from it show it after `refresh_after` more looks."""
        with self.lock:
            project = self.projects[path.lower()]
            head = _sha("push", path, branch, next(self._ids))
            project["_branches"][branch] = head
            for mr in self.merge_requests:
                if (
                    mr["project_id"] == project["id"]
                    and mr["source_branch"] == branch
                    and mr["state"] == "opened"
                ):
                    mr["_refresh_in"] = refresh_after
                    if refresh_after == 0:
                        mr["sha"] = head
            return head

    def finish_pipeline(self, path: str, iid: int, status: str = "success") -> None:
        """The MR's head pipeline ends; an auto-merge set on it merges once it is mergeable."""
        with self.lock:
            project = self.projects[path.lower()]
            mr = self.mr(path, iid)
            mr["_pipeline"] = status
            auto = mr.get("_auto_merge")
            if auto and mr["state"] == "opened" and self._detailed_status(project, mr) == "mergeable":
                self._complete_merge(project, mr, auto["user"], auto["squash"])

    def throttle_next(
        self,
        count: int = 1,
        *,
        reset_in: float = 30.0,
        retry_after: bool = True,
        method: str | None = None,
        path: str | None = None,
    ) -> int:
        """Rack::Attack's 429 for the next `count` matching requests; the quota resets `reset_in` s from now.

        Returns the reset's Unix time. retry_after=False leaves `Retry-After` out (as some proxies do).
        """
        reset = math.ceil(datetime.now(UTC).timestamp() + reset_in)
        headers = {
            "RateLimit-Name": "throttle_authenticated_api",
            "RateLimit-Limit": "60",
            "RateLimit-Observed": "67",
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(reset),
            "RateLimit-ResetTime": datetime.fromtimestamp(reset, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT"),
        }
        if retry_after:
            headers["Retry-After"] = str(max(0, math.ceil(reset_in)))
        self.fail_next(429, count=count, method=method, path=path, headers=headers)
        return reset

    def default_fault_body(self, status: int) -> Any:
        if status == 429:
            return "Retry later\n"  # Rack::Attack's throttle answer, plain text
        return super().default_fault_body(status)

    # -- routing --------------------------------------------------------------------------------------

    def handle(self, request: RawRequest, relative: str | None) -> Reply:
        if relative is None:
            return Reply(404, b"Not Found", {"Content-Type": "text/html"})
        auth = self._authenticate(request)
        if isinstance(auth, Reply):
            return auth
        method = request.method
        if relative == "/job" and method == "GET":
            # "Get job tokens job": the one endpoint here that takes a job token and nothing else.
            if auth is None or auth["kind"] != "job":
                return Reply.json(401, {"message": "401 Unauthorized"})
            return Reply.json(
                200, {"id": 4242, "status": "running", "user": self._user(self.users[auth["user"]])}
            )
        match = re.fullmatch(r"/projects/([^/]+)(/.*)?", relative)
        rest = (match[2] or "") if match else ""
        is_write = method in ("POST", "PUT", "DELETE")
        job_reads_mrs = self.job_token_can_read_merge_requests and rest.startswith("/merge_requests")
        if auth and auth["kind"] == "job" and (is_write or not job_reads_mrs):
            # Not a job-token endpoint: GitLab does not look at JOB-TOKEN, the request is anonymous.
            auth = None
        if relative == "/users" and method == "GET":
            return self._list_users(request)
        if relative == "/version" and method == "GET":
            return Reply.json(200, {"version": "{}.{}.0-ee".format(*self.version), "revision": "0123abcd"})
        if not match:
            return Reply.json(404, _NOT_FOUND)
        if not re.fullmatch(r"(/merge_requests(/\d+(/merge|/rebase)?)?|/repository/branches/[^/]+)?", rest):
            return Reply.json(404, _NOT_FOUND)  # no such route, as for an unencoded project path
        if auth is None and is_write:
            # lib/api/merge_requests.rb: `before { authenticate_non_get! }`, ahead of the project lookup.
            return Reply.json(401, {"message": "401 Unauthorized"})
        project = self._find_project(urllib.parse.unquote(match[1]))
        access = self._access(project, auth) if project else 0
        if project is None or (access < GUEST and project["visibility"] != "public"):
            return Reply.json(404, {"message": "404 Project Not Found"})
        if auth and "api" not in auth["scopes"] and is_write and auth["kind"] != "job":
            return Reply.json(
                403,
                {
                    "error": "insufficient_scope",
                    "error_description": "The request requires higher privileges than provided by the "
                    "access token.",
                    "scope": "api",
                },
            )

        if rest == "" and method == "GET":
            return Reply.json(200, self._public(project))
        if rest == "/merge_requests" and method == "GET":
            return self._list_mrs(request, project)
        if rest.startswith("/repository/branches/") and method == "GET":
            return self._branch(project, urllib.parse.unquote(rest.rsplit("/", 1)[1]))
        if rest == "/merge_requests" and method == "POST":
            return self._create_mr(request, project, auth, access)
        mr_match = re.fullmatch(r"/merge_requests/(\d+)(/merge|/rebase)?", rest)
        if mr_match:
            mr = self._find_mr(project, int(mr_match[1]))
            if mr is None:
                return Reply.json(404, {"message": "404 Not found"})
            action = mr_match[2]
            if action is None and method == "GET":
                return self._get_mr(request, project, mr)
            if action is None and method == "PUT":
                return self._update_mr(request, project, mr, access)
            if action == "/merge" and method == "PUT":
                return self._merge(request, project, mr, auth, access)
            if action == "/rebase" and method == "PUT":
                return self._rebase(project, mr, access)
        return Reply.json(404, _NOT_FOUND)

    def _authenticate(self, request: RawRequest) -> dict[str, Any] | Reply | None:
        token = request.header("private-token") or request.param("private_token")
        how = "private" if token else ""
        if not token and (token := request.header("job-token") or request.param("job_token")):
            how = "job"
        bearer = request.header("authorization") or ""
        if not token and bearer.lower().startswith("bearer "):
            token, how = bearer[7:].strip(), "bearer"
        if not token and (token := request.param("access_token")):
            how = "bearer"
        if not token:
            return None
        found = self.tokens.get(token)
        unauthorized = Reply.json(401, {"message": "401 Unauthorized"})
        if found is None or (found["kind"] == "job") != (how == "job"):
            return unauthorized
        if found["kind"] == "oauth":
            if how != "bearer":
                return unauthorized  # PRIVATE-TOKEN is looked up among access tokens only
            for state, words in (
                ("revoked", "Token was revoked. You have to re-authorize from the user."),
                ("expired", "Token is expired. You can either do re-authorization or token refresh."),
            ):
                if found[state]:
                    challenge = (
                        'Bearer realm="Protected by OAuth 2.0", error="invalid_token", '
                        f'error_description="{words}"'
                    )
                    return Reply.json(
                        401,
                        {"error": "invalid_token", "error_description": words},
                        {"WWW-Authenticate": challenge},
                    )
        return found

    def _find_project(self, ident: str) -> dict[str, Any] | None:
        if ident.isdigit():
            return next((p for p in self.projects.values() if p["id"] == int(ident)), None)
        return self.projects.get(ident.lower())  # GitLab looks full paths up case-insensitively

    def _access(self, project: dict[str, Any], auth: dict[str, Any] | None) -> int:
        if auth is None:
            return 0
        level: int = project["_members"].get(auth["user"], 0)
        return level

    # -- endpoints ------------------------------------------------------------------------------------

    def _branch(self, project: dict[str, Any], name: str) -> Reply:
        head = project["_branches"].get(name)
        if head is None:
            return Reply.json(404, {"message": "404 Branch Not Found"})
        commit = {"id": head, "short_id": head[:8], "title": f"commit on {name}", "parent_ids": []}
        return Reply.json(
            200,
            {
                "name": name,
                "commit": commit,
                "merged": False,
                "protected": name in project["_protected"],
                "developers_can_push": False,
                "developers_can_merge": False,
                "can_push": True,
                "default": name == project["default_branch"],
                "web_url": f"{project['web_url']}/-/tree/{name}",
            },
        )

    def _list_users(self, request: RawRequest) -> Reply:
        wanted = (request.param("username") or "").lower()
        users = [u for key, u in self.users.items() if not wanted or key == wanted]
        return self._page(request, [self._user(u) for u in users])

    def _list_mrs(self, request: RawRequest, project: dict[str, Any]) -> Reply:
        state = request.param("state", "all")
        mrs = [m for m in self.merge_requests if m["target_project_id"] == project["id"]]
        if state != "all":
            mrs = [m for m in mrs if m["state"] == state]
        for field in ("source_branch", "target_branch"):
            value = request.param(field)
            if value is not None:
                mrs = [m for m in mrs if m[field] == value]
        mrs.sort(key=lambda m: m["id"], reverse=True)  # order_by=created_at, sort=desc
        return self._page(request, [self._render(m, single=False) for m in mrs])

    def _get_mr(self, request: RawRequest, project: dict[str, Any], mr: dict[str, Any]) -> Reply:
        self._observe(mr)
        extra = {}
        if (request.param("include_rebase_in_progress") or "").lower() in ("true", "1"):
            extra["rebase_in_progress"] = mr["_rebase_polls"] > 0
        return Reply.json(200, {**self._render(mr, single=True), **extra})

    def _create_mr(
        self, request: RawRequest, project: dict[str, Any], auth: dict[str, Any] | None, access: int
    ) -> Reply:
        data = request.json()
        for required in ("title", "source_branch", "target_branch"):
            if not data.get(required):
                return Reply.json(400, {"error": f"{required} is missing"})
        if access < DEVELOPER:
            return Reply.json(403, {"message": "403 Forbidden"})
        source, target = data["source_branch"], data["target_branch"]
        if source == target:
            return Reply.json(422, {"message": ["You can't use same project/branch for source and target"]})
        for other in self.merge_requests:
            if (
                other["target_project_id"] == project["id"]
                and other["state"] == "opened"
                and (other["source_branch"], other["target_branch"]) == (source, target)
            ):
                message = f"Another open merge request already exists for this source branch: !{other['iid']}"
                return Reply.json(409, {"message": [message]})
        assert auth is not None
        mr = self._new_mr(
            project,
            self.users[auth["user"]],
            source,
            target,
            data["title"],
            data.get("description") or "",
            _list(data.get("labels")),
            [int(i) for i in _list(data.get("reviewer_ids"))],
        )
        return Reply.json(201, self._render(mr, single=True))

    def _update_mr(
        self, request: RawRequest, project: dict[str, Any], mr: dict[str, Any], access: int
    ) -> Reply:
        data = request.json()
        allowed = ("title", "description", "labels", "reviewer_ids", "state_event", "target_branch")
        if not any(k in data for k in allowed):
            return Reply.json(
                400, {"error": f"{', '.join(allowed)} are missing, at least one parameter must be provided"}
            )
        if access < DEVELOPER:
            return Reply.json(403, {"message": "403 Forbidden"})
        if "title" in data:
            if not data["title"]:
                return Reply.json(400, {"error": "title is empty"})
            mr["title"] = data["title"]
            mr["draft"] = mr["work_in_progress"] = bool(_DRAFT.match(mr["title"]))
        if "description" in data:
            mr["description"] = data["description"]
        if "labels" in data:
            mr["labels"] = _list(data["labels"])
        if "reviewer_ids" in data:
            mr["_reviewer_ids"] = [int(i) for i in _list(data["reviewer_ids"])]
        if data.get("state_event") == "close" and mr["state"] == "opened":
            mr["state"], mr["closed_at"] = "closed", _now()
        elif data.get("state_event") == "reopen" and mr["state"] == "closed":
            mr["state"], mr["closed_at"] = "opened", None
        mr["updated_at"] = _now()
        return Reply.json(200, self._render(mr, single=True))

    def _merge(
        self,
        request: RawRequest,
        project: dict[str, Any],
        mr: dict[str, Any],
        auth: dict[str, Any] | None,
        access: int,
    ) -> Reply:
        data = {**{k: v[-1] for k, v in request.params.items()}, **request.json()}
        needed = MAINTAINER if mr["target_branch"] in project["_protected"] else DEVELOPER
        if access < needed:
            # lib/api/merge_requests.rb: `unauthorized! unless merge_request.can_be_merged_by?(current_user)`
            return Reply.json(401, {"message": "401 Unauthorized"})
        status = self._detailed_status(project, mr)
        self._observe(mr)
        knows_auto_merge = self.version >= (17, 11)
        if _truthy(data.get("merge_when_pipeline_succeeds")) or (
            knows_auto_merge and _truthy(data.get("auto_merge"))
        ):
            waits_for = (
                {"ci_still_running", "not_approved", "discussions_not_resolved", "draft_status", "checking"}
                if self.version >= (17, 0)
                else {"ci_still_running"}
            )
            if mr["state"] == "opened" and status in waits_for:
                user = self.users[auth["user"]] if auth else None
                squash = _truthy(data.get("squash")) or mr["squash"]
                mr.update(merge_when_pipeline_succeeds=True, merge_user=self._user(user) if user else None)
                mr["_auto_merge"] = {"user": user, "squash": squash}
                return Reply.json(200, self._render(mr, single=True))
            if mr["_pipeline"] not in (None, "success"):
                return Reply.json(405, {"message": "405 Method Not Allowed"})
        if status not in ("mergeable", "conflict", "need_rebase"):
            return Reply.json(405, {"message": "405 Method Not Allowed"})
        if status in ("conflict", "need_rebase"):
            return Reply.json(422, {"message": "Branch cannot be merged"})
        if data.get("sha") and data["sha"] != mr["sha"]:
            return Reply.json(409, {"message": f"SHA does not match HEAD of source branch: {mr['sha']}"})
        squash = _truthy(data.get("squash")) or mr["squash"]
        if project["squash_option"] == "always":
            squash = True
        if squash and project["squash_option"] == "never":
            mr["merge_error"] = (
                "This project does not allow squashing commits when merge requests are accepted."
            )
            return Reply.json(422, {"message": "Branch cannot be merged"})
        self._complete_merge(project, mr, self.users[auth["user"]] if auth else None, squash)
        return Reply.json(200, self._render(mr, single=True))

    def _complete_merge(
        self, project: dict[str, Any], mr: dict[str, Any], user: dict[str, Any] | None, squash: bool
    ) -> None:
        mr.update(
            state="merged",
            merged_at=_now(),
            updated_at=_now(),
            merged_by=self._user(user) if user else None,
            merge_user=self._user(user) if user else None,
            squash=squash,
            squash_on_merge=squash,
            merge_commit_sha=None if project["merge_method"] == "ff" else _sha("merge", mr["id"]),
            squash_commit_sha=_sha("squash", mr["id"]) if squash else None,
            merge_error=None,
            _merged_head=mr["sha"],  # diff_head_sha: stale if GitLab has not refreshed after a push
            merge_when_pipeline_succeeds=False,
            _auto_merge=None,
        )

    def _rebase(self, project: dict[str, Any], mr: dict[str, Any], access: int) -> Reply:
        if access < DEVELOPER:
            return Reply.json(403, {"message": "403 Forbidden - Cannot push to source branch"})
        if mr["state"] != "opened":
            return Reply.json(403, {"message": "403 Forbidden - This merge request is not open"})
        mr["_rebase_polls"] = max(1, mr["_rebase_takes"])
        return Reply.json(202, {"rebase_in_progress": True})

    # -- model ----------------------------------------------------------------------------------------

    def _new_mr(
        self,
        project: dict[str, Any],
        author: dict[str, Any],
        source: str,
        target: str,
        title: str,
        description: str,
        labels: list[str],
        reviewer_ids: list[int],
    ) -> dict[str, Any]:
        iid = project["_next_iid"]
        project["_next_iid"] += 1
        draft = bool(_DRAFT.match(title))
        path = project["path_with_namespace"]
        head = project["_branches"].setdefault(source, _sha("head", project["id"], source, iid))
        mr: dict[str, Any] = {
            "id": next(self._ids),
            "iid": iid,
            "project_id": project["id"],
            "title": title,
            "description": description,
            "state": "opened",
            "created_at": _now(),
            "updated_at": _now(),
            "merged_by": None,
            "merge_user": None,
            "merged_at": None,
            "closed_by": None,
            "closed_at": None,
            "target_branch": target,
            "source_branch": source,
            "user_notes_count": 0,
            "upvotes": 0,
            "downvotes": 0,
            "author": self._user(author),
            "assignees": [],
            "assignee": None,
            "source_project_id": project["id"],
            "target_project_id": project["id"],
            "labels": labels,
            "draft": draft,
            "work_in_progress": draft,
            "milestone": None,
            "merge_when_pipeline_succeeds": False,
            "sha": head,
            "merge_commit_sha": None,
            "squash_commit_sha": None,
            "discussion_locked": None,
            "should_remove_source_branch": None,
            "force_remove_source_branch": False,
            "prepared_at": _now(),
            "reference": f"!{iid}",
            "references": {"short": f"!{iid}", "relative": f"!{iid}", "full": f"{path}!{iid}"},
            "web_url": f"{self.web_url}/{path}/-/merge_requests/{iid}",
            "time_stats": {
                "time_estimate": 0,
                "total_time_spent": 0,
                "human_time_estimate": None,
                "human_total_time_spent": None,
            },
            "squash": False,
            "squash_on_merge": False,
            "task_completion_status": {"count": 0, "completed_count": 0},
            "blocking_discussions_resolved": True,
            "approvals_before_merge": None,
            "merge_error": None,
            # knobs
            "_reviewer_ids": reviewer_ids,
            "_conflicts": False,
            "_diverged": False,  # target moved on since the branch was cut
            "_pipeline": None,  # None, "running", "success", "failed"
            "_checking": 0,  # observations left before GitLab finishes checking mergeability
            "_approvals": 0,
            "_rebase_polls": 0,  # GETs left before a started rebase finishes
            "_rebase_takes": 1,
            "_rebase_conflicts": False,
            "_refresh_in": 0,  # looks left before a push to the source branch shows in `sha`
            "_merged_head": None,  # the source commit the merge took
        }
        self.merge_requests.append(mr)
        return mr

    def _observe(self, mr: dict[str, Any]) -> None:
        """Time passes for asynchronous work each time a client looks at the MR."""
        if mr["_refresh_in"] > 0:
            mr["_refresh_in"] -= 1
            if mr["_refresh_in"] == 0:
                project = next(p for p in self.projects.values() if p["id"] == mr["project_id"])
                mr["sha"] = project["_branches"][mr["source_branch"]]
        if mr["_checking"] > 0:
            mr["_checking"] -= 1
        if mr["_rebase_polls"] > 0:
            mr["_rebase_polls"] -= 1
            if mr["_rebase_polls"] == 0:
                if mr["_rebase_conflicts"] or mr["_conflicts"]:
                    mr["merge_error"] = (
                        "Rebase failed: Rebase locally, resolve all conflicts, then push the branch."
                    )
                else:
                    rebased = _sha("rebased", mr["sha"])
                    mr.update(sha=rebased, _diverged=False, merge_error=None)
                    project = next(p for p in self.projects.values() if p["id"] == mr["project_id"])
                    project["_branches"][mr["source_branch"]] = rebased

    def _detailed_status(self, project: dict[str, Any], mr: dict[str, Any]) -> str:
        if mr["state"] != "opened":
            return "not_open"
        if mr["_checking"] > 0:
            return "checking"
        if mr["draft"]:
            return "draft_status"
        if project["only_allow_merge_if_pipeline_succeeds"] and mr["_pipeline"] != "success":
            return "ci_still_running" if mr["_pipeline"] == "running" else "ci_must_pass"
        if not mr["blocking_discussions_resolved"]:
            return "discussions_not_resolved"
        if mr["_conflicts"]:
            return "conflict"
        if project["merge_method"] in ("ff", "rebase_merge") and mr["_diverged"]:
            return "need_rebase"
        if mr["_approvals"] < project["_approvals_required"]:
            return "not_approved"
        return "mergeable"

    def _render(self, mr: dict[str, Any], *, single: bool) -> dict[str, Any]:
        project = next(p for p in self.projects.values() if p["id"] == mr["project_id"])
        status = self._detailed_status(project, mr)
        merge_status = {"checking": "checking", "conflict": "cannot_be_merged"}.get(status, "can_be_merged")
        by_id = {u["id"]: u for u in self.users.values()}
        out = {k: v for k, v in mr.items() if not k.startswith("_")}
        out.update(
            reviewers=[self._user(by_id[i]) for i in mr["_reviewer_ids"] if i in by_id],
            merge_status=merge_status if mr["state"] == "opened" else "can_be_merged",
            detailed_merge_status=status,
            has_conflicts=mr["_conflicts"],
        )
        if not single:
            out.pop("merge_error", None)
            return out
        pipeline = (
            None
            if mr["_pipeline"] is None
            else {
                "id": mr["id"] * 10,
                "sha": mr["sha"],
                "ref": mr["source_branch"],
                "status": mr["_pipeline"],
            }
        )
        out.update(
            subscribed=True,
            changes_count="1",
            latest_build_started_at=None,
            latest_build_finished_at=None,
            first_deployed_to_production_at=None,
            pipeline=pipeline,
            head_pipeline=pipeline,
            diff_refs={
                "base_sha": _sha("base", mr["target_branch"]),
                "head_sha": mr["sha"],
                "start_sha": _sha("base", mr["target_branch"]),
            },
            first_contribution=False,
            user={"can_merge": True},
        )
        return out

    def _public(self, project: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in project.items() if not k.startswith("_")}

    def _user(self, user: dict[str, Any]) -> dict[str, Any]:
        return {**user, "web_url": f"{self.web_url}/{user['username']}"}

    def _page(self, request: RawRequest, items: list[dict[str, Any]]) -> Reply:
        try:
            page = max(1, int(request.param("page") or 1))
            per_page = min(100, max(1, int(request.param("per_page") or 20)))
        except ValueError:
            return Reply.json(400, {"error": "page is invalid"})
        total_pages = max(1, math.ceil(len(items) / per_page))
        chunk = items[(page - 1) * per_page : page * per_page]

        def link(number: int) -> str:
            params = [(k, v) for k, vs in request.params.items() for v in vs if k not in ("page", "per_page")]
            params += [("page", str(number)), ("per_page", str(per_page))]
            return f"{self.root_url}{request.path}?{urllib.parse.urlencode(params)}"

        links = []
        if page > 1:
            links.append(f'<{link(page - 1)}>; rel="prev"')
        if page < total_pages:
            links.append(f'<{link(page + 1)}>; rel="next"')
        links.append(f'<{link(1)}>; rel="first"')
        links.append(f'<{link(total_pages)}>; rel="last"')
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(len(items)),
            "X-Total-Pages": str(total_pages),
            "X-Next-Page": str(page + 1) if page < total_pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
            "Link": ", ".join(links),
        }
        return Reply.json(200, chunk, headers)

    def _find_mr(self, project: dict[str, Any], iid: int) -> dict[str, Any] | None:
        return next(
            (m for m in self.merge_requests if m["project_id"] == project["id"] and m["iid"] == iid), None
        )


def _list(value: Any) -> list[str]:
    """GitLab takes arrays as JSON arrays or comma-separated strings."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")
