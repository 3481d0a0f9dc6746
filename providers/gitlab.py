"""GitLab (gitlab.com and self-managed), through python-gitlab (imported only here).

API calls, once the base branch is known: find (1) + create (1), plus one user lookup per reviewer;
a rerun that reuses the open merge request costs 1; update 1; merge 1, or 2 for a merge request
found rather than created (its branch head is read first, see `_caught_up_head`). The project
object is lazy, so nothing is fetched unless the default branch is asked for (and not even then
inside GitLab CI for the pipeline's own project: CI_DEFAULT_BRANCH answers it).

Merge methods. GitLab's merge method is a *project setting* (merge commit, merge commit with
semi-linear history, fast-forward); the API cannot pick one per merge. So:
  - merge  → `PUT .../merge`: whatever the project's method is;
  - squash → `PUT .../merge` with `squash: true` (refused if the project's squash option is "never");
  - rebase → `PUT .../rebase` (asynchronous: polled until done), then `PUT .../merge`: the source
    branch is rebased onto the target first, so history is linear with the fast-forward and
    semi-linear methods, and a merge commit on top of rebased commits with the plain merge method.
The merge passes the `sha` it saw, so a push that lands in between is never merged unseen. GitLab
checks mergeability asynchronously: right after the MR is opened it may answer 405/422 while still
"checking"; that state is waited out (within the deadline), anything else is reported with GitLab's
`detailed_merge_status` in words.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import requests
from gitlab import Gitlab
from gitlab.exceptions import GitlabError
from gitlab.v4.objects import Project

from providers import http
from providers.base import (
    MergeMethod,
    MergeState,
    ProviderConfig,
    PullRequest,
    PullRequestSpec,
    opened_after_all,
)
from updater import redact
from updater.errors import ProviderError
from updater.values import Origin

T = TypeVar("T")
API_SUFFIX = "/api/v4"
# Every SDK call gets these: python-gitlab would otherwise retry 429 itself (up to 10 times, sleeping
# Retry-After each time) on top of the shared session's retries, past the deadline.
_NO_SDK_RETRY: dict[str, Any] = {"obey_rate_limit": False, "retry_transient_errors": False}
# GitLab's draft markers (MergeRequest::DRAFT_REGEX, simplified): only a leading one counts.
_DRAFT_PREFIX = re.compile(r"^\s*(\[draft\]|\(draft\)|draft:|draft\s-\s|\[wip\]|wip:)\s*", re.IGNORECASE)
# Mergeability GitLab has not finished computing: worth waiting for, briefly.
_TRANSIENT = frozenset({"checking", "unchecked", "preparing", "approvals_syncing"})
_TRANSIENT_LEGACY = frozenset(
    {"checking", "unchecked", "cannot_be_merged_recheck", "cannot_be_merged_rechecking"}
)
# Merge statuses in which a pipeline (or another check) is still to run: auto-merge waits for them.
_CI_PENDING = frozenset({"ci_still_running", "ci_must_pass", "status_checks_must_pass"})
_WHY = {
    "not_open": "it is not open",
    "draft_status": "it is a draft; mark it ready first",
    "ci_must_pass": "the project requires a successful pipeline (Pipelines must succeed) and none has "
    "succeeded",
    "ci_still_running": "its pipeline is still running and the project requires it to succeed; merge it "
    "once the pipeline passes (or set auto-merge on the merge request)",
    "not_approved": "it needs approvals (the project's approval rules)",
    "discussions_not_resolved": "all threads must be resolved first",
    "conflict": "it has conflicts with the target branch; resolve them and rerun",
    "need_rebase": "the project merges fast-forward (or semi-linear) and the branch is behind its target; "
    "use the rebase merge method",
    "blocked_status": "it is blocked by another merge request",
    "merge_request_blocked": "it is blocked by another merge request",
    "broken_status": "GitLab considers it broken (the source branch is missing or has no commits)",
    "status_checks_must_pass": "external status checks must pass first",
    "jira_association_missing": "the project requires a Jira issue key in the title or description",
    "requested_changes": "a reviewer requested changes",
    "security_policy_violations": "security policies block it",
    "locked_paths": "it changes locked paths",
    "locked_lfs_files": "it changes locked LFS files",
    "title_regex": "its title does not match the project's required pattern",
    "merge_time": "it is scheduled to merge later (merge after)",
    "commits_status": "its commits fail the project's commit checks",
}


def api_base(origin: Origin, override: str | None = None) -> str:
    """The REST API root (…/api/v4) for this origin, without a trailing slash.

    -api-endpoint wins. Inside GitLab CI, CI_API_V4_URL names the pipeline's own server, relative
    URL included, so it is used when CI_SERVER_HOST is the origin's host. Otherwise the API is at
    <scheme>://<host[:port]>/api/v4 (ssh remotes → https://host, the ssh port is not the web port).

    A self-managed GitLab served under a relative URL (https://host/gitlab) cannot be recognised from
    a clone URL: https://host/gitlab/group/repo.git looks exactly like a project in a group named
    "gitlab". Such servers need -api-endpoint=https://host/gitlab/api/v4; repo_id then drops the
    "gitlab/" prefix from the project path.
    """
    if override:
        return override.rstrip("/")
    ci_host = os.environ.get("CI_SERVER_HOST", "").strip().lower()
    ci_api = os.environ.get("CI_API_V4_URL", "").strip()
    if ci_api and ci_host and ci_host == origin.host:
        return ci_api.rstrip("/")
    if not origin.host:
        raise ProviderError(
            "cannot derive the GitLab API endpoint from a local origin; pass -api-endpoint=https://HOST/api/v4"
        )
    return f"{origin.web_base}{API_SUFFIX}"


def server_url(api: str) -> str:
    """What python-gitlab wants as `url`: the server root, without /api/v4 (it appends that itself)."""
    return api[: -len(API_SUFFIX)] if api.endswith(API_SUFFIX) else api


def repo_id(origin: Origin, api: str | None = None) -> str:
    """The full project path, nested groups included ("group/sub/repo").

    When the API sits under a relative URL (https://host/gitlab/api/v4), clone URLs carry that
    prefix too (https://host/gitlab/group/repo.git); it is not part of the project path.
    """
    path = origin.path.strip("/")
    if api:
        root = urllib.parse.urlsplit(server_url(api)).path.strip("/")
        if root and path.startswith(root + "/"):
            path = path[len(root) + 1 :]
    if path.count("/") < 1:
        raise ProviderError(
            f"origin path '{origin.path}' is not a GitLab project path (group/repo or group/sub/repo); "
            "check the origin remote"
        )
    return path


def connect(config: ProviderConfig, *, backoff: float | None = None) -> GitLabAdapter:
    credential = config.credential
    if credential is None:
        raise ProviderError(
            f"no token for the GitLab API of {config.origin.host or 'this origin'}: set GITLAB_TOKEN or "
            "UPDATE_GITOPS_REPO_TOKEN to an access token with the api scope, or store one for the host "
            "in ~/.git-credentials"
        )
    if credential.kind == "job-token":
        # Refused before anything is written or pushed: GitLab opens no merge-request endpoint to job
        # tokens (it ignores JOB-TOKEN there: 404 on reads of a private project, 401 on writes).
        raise ProviderError(
            f"a CI job token ({credential.source}) cannot open merge requests: GitLab refuses job tokens on "
            "its merge-request API; set GITLAB_TOKEN (git and the API), or UPDATE_GITOPS_REPO_API_TOKEN or "
            "-api-token-file (the API only; git keeps the job token) to an access token with the api scope, "
            "or pass -create-pull-request=false"
        )
    api = api_base(config.origin, config.api_endpoint)
    path = repo_id(config.origin, api)
    if backoff is None:
        # Scaled to the deadline so a short deadline (tests, impatient CI) also waits briefly between tries.
        backoff = min(0.5, config.deadline / 40)
    session = http.session(config.deadline, backoff, config.ca_bundle)
    session.hooks["response"].append(_debug_hook(config.debug))
    client = Gitlab(
        server_url(api),
        session=session,
        timeout=config.timeout,
        retry_transient_errors=False,  # the session's retry policy does this, within the deadline
        # python-gitlab passes `verify` on every request, which would override the session's CA bundle.
        ssl_verify=config.ca_bundle or True,
        # Access tokens (personal, project, group) go in PRIVATE-TOKEN; an OAuth2 access token as
        # `Authorization: Bearer`, the only way GitLab takes it.
        oauth_token=credential.secret if credential.kind == "oauth" else None,
        private_token=None if credential.kind == "oauth" else credential.secret,
    )
    return GitLabAdapter(config, client, api, path, backoff, http.call_log(session))


@dataclass
class _Ref:
    """What update/merge need of an MR without fetching it again."""

    iid: int
    sha: str | None  # GitLab's diff head: up to date when we created the MR, maybe stale when found
    draft: bool
    source: str
    target: str
    created: bool = False


class GitLabAdapter:
    name = "gitlab"

    def __init__(
        self,
        config: ProviderConfig,
        client: Gitlab,
        api: str,
        path: str,
        poll: float,
        log: http.CallLog | None = None,
    ) -> None:
        self.config = config
        self.log = log  # what the last request went through (the session's retry policy keeps it)
        self.client = client
        self.api = api
        self.path = path
        self.poll = max(0.01, poll)
        self._project: Project = client.projects.get(path, lazy=True)  # no request

    # -- the Adapter protocol ---------------------------------------------------------------------

    def default_branch(self) -> str:
        if (
            os.environ.get("CI_DEFAULT_BRANCH")
            and os.environ.get("CI_PROJECT_PATH", "").lower() == self.path.lower()
            and os.environ.get("CI_SERVER_HOST", "").lower() == self.config.origin.host
        ):
            return os.environ["CI_DEFAULT_BRANCH"]
        project = self._call("read the project", lambda: self.client.projects.get(self.path, **_NO_SDK_RETRY))
        branch = project.attributes.get("default_branch")
        if not branch:
            raise ProviderError(
                f"GitLab project {self.path} has no default branch (an empty repository?); pass -base-branch"
            )
        return str(branch)

    def check_access(self) -> None:
        """One read of the project: the API credential works for it (before anything is pushed)."""
        self._call("read the project", lambda: self.client.projects.get(self.path, **_NO_SDK_RETRY))

    def find_open(self, head: str, base: str) -> PullRequest | None:
        found = self._call(
            "list merge requests",
            lambda: self._project.mergerequests.list(
                state="opened", source_branch=head, target_branch=base, get_all=False, **_NO_SDK_RETRY
            ),
        )
        for mr in found:
            data = mr.attributes
            # A fork's MR into this project may use the same branch name; ours comes from this project.
            if (
                data.get("source_branch") == head
                and data.get("target_branch") == base
                and data.get("source_project_id") == data.get("target_project_id")
            ):
                return _wrap(data)
        return None

    def create(self, spec: PullRequestSpec) -> PullRequest:
        data: dict[str, Any] = {
            "source_branch": spec.head,
            "target_branch": spec.base,
            "title": f"Draft: {spec.title}" if spec.draft else spec.title,
            "description": spec.body,
        }
        if spec.labels:
            data["labels"] = ",".join(spec.labels)  # GitLab creates project labels that do not exist yet
        if spec.reviewers:
            ids = self._reviewer_ids(spec.reviewers)
            if ids:
                data["reviewer_ids"] = ids
        try:
            created = self._project.mergerequests.create(data, **_NO_SDK_RETRY)
        except GitlabError as exc:
            if exc.response_code == 409 and "already exists" in _message(exc).lower():
                # Opened by a concurrent run between our find and create (or by our own first try,
                # whose answer was lost): converge on it.
                existing = self.find_open(spec.head, spec.base)
                if existing is not None:
                    return existing
            if (exc.response_code or 0) >= 500:
                return self._converge(spec, exc)
            self._fail("open the merge request", exc)
        except requests.RequestException as exc:
            return self._converge(spec, exc)
        pr = _wrap(created.attributes)
        assert isinstance(pr.handle, _Ref)
        pr.handle.created = True
        return pr

    def update(self, pr: PullRequest, title: str, body: str) -> PullRequest:
        ref = self._ref(pr)
        # Keep a draft a draft: the new title would otherwise drop the prefix and publish it.
        new_title = f"Draft: {title}" if ref.draft else title
        updated = self._call(
            f"update merge request !{ref.iid}",
            lambda: self._project.mergerequests.update(
                ref.iid, {"title": new_title, "description": body}, **_NO_SDK_RETRY
            ),
        )
        return _wrap(updated)

    def merge(self, pr: PullRequest, method: MergeMethod) -> None:
        ref = self._ref(pr)
        deadline = time.monotonic() + self.config.deadline
        sha = ref.sha
        if method == "rebase":
            sha = self._rebase(ref, deadline)
        elif not ref.created:
            sha = self._caught_up_head(ref, deadline)
        body: dict[str, Any] = {}
        if method == "squash":
            body["squash"] = True
        if sha:
            body["sha"] = sha
        path = f"{self._project.mergerequests.path}/{ref.iid}/merge"
        rechecks = 0  # "mergeable" right after a refusal: GitLab finished checking in between
        while True:
            try:
                result = self.client.http_put(path, post_data=body, **_NO_SDK_RETRY)
                break
            except GitlabError as exc:
                code = exc.response_code
                if code in (405, 406, 422):
                    state = self._mr_state(ref.iid)
                    if state.get("state") == "merged":
                        # Our earlier try went through (its answer lost to a 502 or a timeout, and the
                        # resent merge refused as "not open"), or someone merged it meanwhile.
                        self._merged_after_all(ref, f"{_status(exc)}")
                        return
                    status = _merge_status(state)
                    again = not state.get("merge_error") and (
                        status in _TRANSIENT or (status == "mergeable" and rechecks < 2)
                    )
                    if again and time.monotonic() + self.poll < deadline:
                        rechecks += status == "mergeable"
                        self.config.debug(f"GitLab: !{ref.iid} is still being checked ({status}); waiting")
                        time.sleep(self.poll)
                        continue
                    raise ProviderError(self._refusal(ref, method, exc, state)) from None
                if code == 409:
                    self._settle(
                        ref,
                        f"GitLab refused to merge !{ref.iid}: its source branch moved since it was read "
                        f"({_message(exc)}); rerun to merge the new state",
                    )
                    return
                if code == 401:  # (a job token never gets here: connect refuses it)
                    raise ProviderError(
                        f"GitLab refused to merge !{ref.iid} into {ref.target} (401): the token's user may "
                        "not merge into it (a protected branch needs Maintainer or an allowed-to-merge "
                        f"role); check the branch protection of {ref.target} in {self.path}"
                    ) from None
                if (code or 0) >= 500:
                    self._settle(ref, redact.redact(self._explain(f"merge !{ref.iid}", exc)))
                    return
                self._fail(f"merge !{ref.iid}", exc)
            except requests.RequestException as exc:
                self._settle(ref, redact.redact(self._explain(f"merge !{ref.iid}", exc)))
                return
        final = result.get("state") if isinstance(result, dict) else None
        if final != "merged":
            raise ProviderError(f"GitLab did not merge !{ref.iid}: it is {final or 'in an unknown state'}")

    # -- merge when checks pass (providers/merging.py) ------------------------------------------------

    def auto_merge(self, pr: PullRequest, method: MergeMethod) -> str:
        """Set auto-merge: `PUT …/merge` with `auto_merge: true` (GitLab 17.11+) and its older name
        `merge_when_pipeline_succeeds: true`, one request that every version reads its own way (GitLab
        ORs the two; a server before 17.11 ignores the parameter it does not know), so no GET /version.

        GitLab merges at once when there is nothing to wait for (no pipeline, or it already passed),
        answers 405 when no auto-merge strategy applies and it cannot merge (a failed pipeline, say),
        and 405/422 while it is still checking a merge request just opened (waited out, as for merge).
        """
        ref = self._ref(pr)
        deadline = time.monotonic() + self.config.deadline
        sha = self._merge_sha(ref, method, deadline)
        body: dict[str, Any] = {"auto_merge": True, "merge_when_pipeline_succeeds": True}
        if method == "squash":
            body["squash"] = True
        if sha:
            body["sha"] = sha
        path = f"{self._project.mergerequests.path}/{ref.iid}/merge"
        while True:
            try:
                result = self.client.http_put(path, post_data=body, **_NO_SDK_RETRY)
                break
            except GitlabError as exc:
                if exc.response_code in (405, 406, 422):
                    state = self._mr_state(ref.iid)
                    if state.get("state") == "merged":
                        return "merged"
                    status = _merge_status(state)
                    if status in _TRANSIENT and time.monotonic() + self.poll < deadline:
                        time.sleep(self.poll)
                        continue
                    refusal = self._refusal(ref, method, exc, state)
                    raise ProviderError(
                        refusal.replace("refused to merge", "refused to set auto-merge on", 1)
                    ) from None
                if exc.response_code == 401:
                    raise ProviderError(
                        f"GitLab refused to set auto-merge on !{ref.iid} (401): the token's user may not "
                        f"merge into {ref.target} (a protected branch needs Maintainer or an "
                        "allowed-to-merge role)"
                    ) from None
                self._fail(f"set auto-merge on !{ref.iid}", exc)
            except requests.RequestException as exc:
                self._fail(f"set auto-merge on !{ref.iid}", exc)
        data = result if isinstance(result, dict) else {}
        if data.get("state") == "merged":
            return "merged"
        if data.get("merge_when_pipeline_succeeds") or data.get("auto_merge_enabled"):
            return "auto-enabled"
        raise ProviderError(
            f"GitLab did not set auto-merge on !{ref.iid}: it is "
            f"{data.get('state') or 'in an unknown state'} ({_merge_status(data) or 'no merge status'})"
        )

    def merge_state(self, pr: PullRequest) -> MergeState:
        """One `GET …/merge_requests/:iid`: state, head pipeline, detailed merge status, auto-merge."""
        data = self._mr_state(self._ref(pr).iid)
        state = str(data.get("state") or "")
        if state == "merged":
            return MergeState("merged", "passed")
        if state in ("closed", "locked"):
            return MergeState("closed")
        pipeline = data.get("head_pipeline") or data.get("pipeline") or {}
        ci = str(pipeline.get("status") or "")
        status = _merge_status(data)
        if ci in ("failed", "canceled"):
            checks, detail = "failed", f"pipeline {pipeline.get('id', '')} {ci}".replace("  ", " ")
        elif status == "mergeable":
            checks, detail = ("passed" if ci else "none"), ""
        elif ci in ("success", "skipped", "") and status not in _TRANSIENT and status not in _CI_PENDING:
            checks, detail = ("passed" if ci else "none"), _WHY.get(status, status)
        else:
            checks, detail = "pending", f"pipeline {ci}" if ci else _WHY.get(status, status)
        auto = data.get("merge_when_pipeline_succeeds")
        return MergeState("open", checks, status == "mergeable", bool(auto), detail)

    def _merge_sha(self, ref: _Ref, method: str, deadline: float) -> str | None:
        """The head to pin: rebased first for `rebase`, caught up with the push for a found MR."""
        if method == "rebase":
            return self._rebase(ref, deadline)
        if not ref.created:
            return self._caught_up_head(ref, deadline)
        return ref.sha

    # -- helpers ------------------------------------------------------------------------------------

    def _converge(self, spec: PullRequestSpec, exc: Exception) -> PullRequest:
        failure = redact.redact(self._explain("open the merge request", exc))
        return opened_after_all(
            self, spec, failure, self.config.warn, forge="GitLab", noun="merge request", sigil="!"
        )

    def _settle(self, ref: _Ref, failure: str) -> None:
        """After a merge call failed: fine if the merge request is merged, else `failure`.

        One more request, on this failure path only.
        """
        try:
            state = self._project.mergerequests.get(ref.iid, **_NO_SDK_RETRY).attributes
        except (GitlabError, requests.RequestException) as exc:
            raise ProviderError(
                f"{failure} (and reading !{ref.iid} back to check failed too: {type(exc).__name__})"
            ) from None
        if state.get("state") != "merged":
            raise ProviderError(failure)
        self._merged_after_all(ref, failure)

    def _merged_after_all(self, ref: _Ref, failure: str) -> None:
        self.config.warn(
            f"GitLab: the merge call for !{ref.iid} did not come back cleanly ({failure}); reading the "
            "merge request back shows it is merged"
        )

    def _reviewer_ids(self, names: tuple[str, ...]) -> list[int]:
        ids: list[int] = []
        for raw in names:
            name = raw.lstrip("@")
            user_id = self._user_id(name)
            if user_id is None:
                self.config.warn(f"GitLab: no user named {name}; not requesting a review from them")
            else:
                ids.append(user_id)
        return ids

    def _ref(self, pr: PullRequest) -> _Ref:
        if isinstance(pr.handle, _Ref):
            return pr.handle
        handle = _wrap(self._mr_state(pr.number)).handle  # a PullRequest built elsewhere: read it
        assert isinstance(handle, _Ref)
        return handle

    def _user_id(self, name: str) -> int | None:
        """`GET /users?username=NAME`: one request, an empty list when there is no such user."""
        users = self._call(
            f"look up user {name}",
            lambda: self.client.users.list(username=name, get_all=False, **_NO_SDK_RETRY),
        )
        for user in users:
            if str(user.attributes.get("username", "")).lower() == name.lower():
                return int(user.attributes["id"])
        return None

    def _caught_up_head(self, ref: _Ref, deadline: float) -> str | None:
        """The source branch's head, once GitLab's view of the merge request has caught up with it.

        GitLab refreshes a merge request after a push asynchronously: an MR found right after we pushed
        to its branch may still show the previous head, and merging it would merge that old commit
        (or, pinned, fail). The branch itself is read from the repository, so it is current.
        """
        branch = self._call(
            f"read branch {ref.source}", lambda: self._project.branches.get(ref.source, **_NO_SDK_RETRY)
        )
        head = str((branch.attributes.get("commit") or {}).get("id") or "") or None
        sha = ref.sha
        while head and sha != head:
            if time.monotonic() + self.poll >= deadline:
                raise ProviderError(
                    f"GitLab has not caught up with the push to {ref.source} yet (!{ref.iid} is at "
                    f"{(sha or '?')[:12]}, the branch at {head[:12]}) after {self.config.deadline:g}s; rerun"
                )
            self.config.debug(f"GitLab: !{ref.iid} still shows {(sha or '?')[:12]}; waiting for {head[:12]}")
            time.sleep(self.poll)
            sha = self._mr_state(ref.iid).get("sha")
        return head or sha

    def _rebase(self, ref: _Ref, deadline: float) -> str | None:
        """Start GitLab's rebase of the source branch and wait for it; the new head sha."""
        path = f"{self._project.mergerequests.path}/{ref.iid}/rebase"
        try:
            self.client.http_put(path, post_data={}, **_NO_SDK_RETRY)
        except GitlabError as exc:
            if exc.response_code == 403:
                raise ProviderError(
                    f"GitLab refused to rebase !{ref.iid} ({_message(exc)}): the token's user must be able "
                    "to push to its source branch; or use another merge method"
                ) from None
            self._fail(f"rebase !{ref.iid}", exc)
        except requests.RequestException as exc:
            self._fail(f"rebase !{ref.iid}", exc)
        while True:
            state = self._mr_state(ref.iid, include_rebase_in_progress="true")
            if not state.get("rebase_in_progress"):
                break
            if time.monotonic() + self.poll >= deadline:
                raise ProviderError(
                    f"GitLab is still rebasing !{ref.iid} after {self.config.deadline:g}s; rerun later"
                )
            time.sleep(self.poll)
        if state.get("merge_error"):
            raise ProviderError(f"GitLab could not rebase !{ref.iid}: {_one_line(str(state['merge_error']))}")
        sha = state.get("sha")
        return str(sha) if sha else ref.sha

    def _mr_state(self, iid: int, **params: Any) -> dict[str, Any]:
        mr = self._call(
            f"read merge request !{iid}",
            lambda: self._project.mergerequests.get(iid, **params, **_NO_SDK_RETRY),
        )
        data: dict[str, Any] = mr.attributes
        return data

    def _refusal(self, ref: _Ref, method: str, exc: GitlabError, state: dict[str, Any]) -> str:
        status = _merge_status(state)
        reason = _WHY.get(status)
        if state.get("merge_error"):
            reason = _one_line(str(state["merge_error"]))
        elif reason is None and state.get("has_conflicts"):
            reason = _WHY["conflict"]
        elif reason is None:
            reason = f"GitLab reports detailed_merge_status={status}" if status else _message(exc)
        return f"GitLab refused to merge !{ref.iid} with method {method} ({_status(exc)}): {reason}"

    def _rejected(self, source: str, status: str) -> str:
        """A 401 for the token itself, worded by its kind."""
        credential = self.config.credential
        if credential is not None and credential.kind == "oauth":
            return (
                f"GitLab rejected the OAuth2 token from {source} ({status}) at {self.api}: it is invalid, "
                "expired (GitLab's OAuth access tokens last two hours) or revoked; refresh it, or use an "
                "access token with the api scope"
            )
        hint = ""
        if credential is not None and not credential.secret.startswith("glpat-"):
            # Not a personal/project/group access token by its prefix (instances may set their own): an
            # OAuth2 access token, which has no documented prefix, is refused in PRIVATE-TOKEN.
            hint = (
                "; if it is an OAuth2 access token, pass it as GITLAB_OAUTH_TOKEN or set "
                "UPDATE_GITOPS_REPO_TOKEN_TYPE=oauth (GitLab takes those only as Bearer)"
            )
        return (
            f"GitLab rejected the token from {source} ({status}) at {self.api}: it is invalid, "
            f"expired or revoked; set a valid access token with the api scope{hint}"
        )

    def _call(self, action: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (GitlabError, requests.RequestException) as exc:
            self._fail(action, exc)

    def _fail(self, action: str, exc: Exception) -> NoReturn:
        raise ProviderError(redact.redact(self._explain(action, exc))) from None

    def _explain(self, action: str, exc: Exception) -> str:
        where = f"project {self.path} at {self.api}"
        source = self.config.credential.source if self.config.credential else "the environment"
        transport = http.transport_failure("GitLab", self.api, action, exc, self.config.ca_bundle, self.log)
        if transport is not None:
            return transport
        assert isinstance(exc, GitlabError)
        code, message, status = exc.response_code, _message(exc), _status(exc)
        if code == 401:
            return self._rejected(source, status)
        if code == 403:
            if "insufficient_scope" in message or "scope" in message.lower():
                return (
                    f"GitLab refused to {action} on {where} ({status}): the token from {source} lacks "
                    "the api scope (read_api is not enough to open or merge merge requests); use one with api"
                )
            return (
                f"GitLab refused to {action} on {where} ({status}): the token's user needs at least the "
                "Developer role in the project (Maintainer to merge into a protected branch)"
            )
        if code == 404:
            return (
                f"GitLab answered 404 trying to {action} on {where} ({message}): check the project path "
                f"(every nested group: group/sub/repo), that the token from {source} can see the project, "
                "and -api-endpoint (a GitLab under a relative URL needs -api-endpoint=https://HOST/PREFIX/api/v4)"
            )
        worded = http.status_failure("GitLab", self.api, action, code or 0, message, self.log)
        if worded is not None:
            return worded
        return f"GitLab refused to {action} on {where} ({code}): {message}"


def _wrap(data: dict[str, Any]) -> PullRequest:
    title = str(data.get("title") or "")
    draft = bool(data.get("draft") or data.get("work_in_progress"))
    if draft:
        title = _DRAFT_PREFIX.sub("", title, count=1)
    ref = _Ref(
        int(data["iid"]),
        data.get("sha"),
        draft,
        str(data.get("source_branch") or ""),
        str(data.get("target_branch") or ""),
    )
    return PullRequest(
        number=ref.iid,
        url=str(data.get("web_url") or ""),
        title=title,
        body=data.get("description") or "",
        handle=ref,
    )


def _merge_status(state: dict[str, Any]) -> str:
    detailed = state.get("detailed_merge_status")
    if detailed:
        return str(detailed)
    legacy = str(state.get("merge_status") or "")  # GitLab < 15.6 has only merge_status
    return "checking" if legacy in _TRANSIENT_LEGACY else ("conflict" if legacy == "cannot_be_merged" else "")


def _message(exc: GitlabError) -> str:
    """GitLab's words, from the body: `message` is a string, a list, or a field → errors map."""
    body: Any = None
    if exc.response_body:
        try:
            body = json.loads(exc.response_body)
        except (ValueError, TypeError):
            body = (
                exc.response_body.decode(errors="replace") if isinstance(exc.response_body, bytes) else None
            )
    if isinstance(body, dict):
        if body.get("error") == "insufficient_scope":
            needs = body.get("scope", "api")
            return f"insufficient_scope: {body.get('error_description', '')} (needs scope {needs})"
        if body.get("error") and body.get("error_description"):  # OAuth's invalid_token (expired, revoked)
            return _one_line(f"{body['error']}: {body['error_description']}")
        body = body.get("message", body.get("error", body))
    if body is None:
        body = exc.error_message
    if isinstance(body, list):
        text = "; ".join(str(item) for item in body)
    elif isinstance(body, dict):
        text = "; ".join(
            f"{key} {' '.join(map(str, v)) if isinstance(v, list) else v}" for key, v in body.items()
        )
    else:
        text = str(body)
    return _one_line(text) or f"HTTP {exc.response_code}"


def _status(exc: GitlabError) -> str:
    """ "405 Method Not Allowed", whether or not GitLab's message already starts with the code."""
    message = _message(exc)
    code = str(exc.response_code)
    return message if message.startswith(code) else f"{code} {message}"


def _one_line(text: str) -> str:
    return " ".join(text.split()).rstrip(".")


def _debug_hook(debug: Callable[[str], None]) -> Callable[..., None]:
    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        debug(f"GitLab API: {request.method} {request.url} → {response.status_code}")

    return hook
