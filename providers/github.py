"""GitHub and GitHub Enterprise Server, through PyGithub (imported only here).

API calls per run, once the base branch is known: find (1) + create (1), plus one each for labels
and reviewers when asked for; a rerun that reuses the open PR costs 1; update and merge 1 each.
The repository object is lazy, so no request is spent fetching it unless the default branch is needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import requests
from github import Auth, Github, GithubException
from github.PullRequest import PullRequest as GhPullRequest
from github.Repository import Repository

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
from updater.values import Origin, github_api_base, github_repo

T = TypeVar("T")


def api_base(origin: Origin, override: str | None = None) -> str:
    """The REST API root for this origin (spec §6), without a trailing slash: api.github.com, api.SUB.ghe.com
    (Enterprise Cloud with data residency) or <host>/api/v3 (Enterprise Server). The rule lives in
    updater/values.py, which the App token minting (updater/github_app.py) shares."""
    return github_api_base(origin, override)


def repo_id(origin: Origin) -> str:
    """owner/repo from the origin path."""
    return "/".join(github_repo(origin))


def connect(config: ProviderConfig, *, backoff: float | None = None) -> GitHubAdapter:
    if config.credential is None:
        raise ProviderError(
            f"no token for the GitHub API of {config.origin.host or 'this origin'}: set "
            "UPDATE_GITOPS_REPO_TOKEN or GITHUB_TOKEN (GH_TOKEN and GH_ENTERPRISE_TOKEN are read too), "
            "or store one for the host in ~/.git-credentials"
        )
    base = api_base(config.origin, config.api_endpoint)
    full_name = repo_id(config.origin)
    if backoff is None:
        # Scaled to the deadline so a short deadline (tests, impatient CI) also waits briefly between tries.
        backoff = min(0.5, config.deadline / 40)
    retry = http.make_retry(config.deadline, backoff)
    client = Github(
        auth=Auth.Token(config.credential.secret),
        base_url=base,
        retry=retry,
        timeout=max(1, math.ceil(config.timeout)),
        # PyGithub's default throttle sleeps ~1 s before every write; the retry policy handles limits.
        seconds_between_requests=0,
        seconds_between_writes=0,
        verify=config.ca_bundle or True,
        lazy=True,
    )
    # PyGithub insists on whole seconds, and would turn a 0.5 s timeout into 1 s; its connection (made
    # on the first request) takes the requester's value, so give it the real one.
    requester = client.requester
    if hasattr(requester, "_Requester__timeout"):
        requester._Requester__timeout = config.timeout  # type: ignore[attr-defined]
    return GitHubAdapter(config, client, base, full_name, retry.log)


class GitHubAdapter:
    name = "github"

    def __init__(
        self,
        config: ProviderConfig,
        client: Github,
        base: str,
        full_name: str,
        log: http.CallLog | None = None,
    ) -> None:
        self.config = config
        self.log = log  # what the last request went through (the retry policy keeps it)
        self.client = client
        self.api = base
        self.full_name = full_name
        self.owner = full_name.split("/", 1)[0]
        self._repo: Repository = client.get_repo(full_name)  # lazy: no request yet

    # -- the Adapter protocol -------------------------------------------------------------------

    def default_branch(self) -> str:
        self.config.debug(f"GitHub: GET repository {self.full_name} for its default branch")
        branch: str = self._call("read the repository", lambda: self._repo.default_branch)
        return branch

    def find_open(self, head: str, base: str) -> PullRequest | None:
        self.config.debug(f"GitHub: list open pull requests {self.owner}:{head} -> {base}")

        def first() -> GhPullRequest | None:
            # The server filters by owner:branch and base; the first page's first item is the answer.
            pulls = self._repo.get_pulls(state="open", head=f"{self.owner}:{head}", base=base)
            return next(iter(pulls), None)

        found = self._call("list pull requests", first)
        return _wrap(found) if found is not None else None

    def create(self, spec: PullRequestSpec) -> PullRequest:
        self.config.debug(f"GitHub: create pull request {spec.head} -> {spec.base}")
        try:
            created = self._create(spec, draft=spec.draft)
        except GithubException as exc:
            reason = _github_message(exc)
            if exc.status == 422 and "a pull request already exists" in reason.lower():
                # Opened by a concurrent run between our find and create: converge on it.
                existing = self.find_open(spec.head, spec.base)
                if existing is not None:
                    return existing
            if exc.status == 422 and spec.draft and "draft" in reason.lower():
                self.config.warn(f"GitHub: {reason}; opening a regular (non-draft) pull request instead")
                created = self._call("open the pull request", lambda: self._create(spec, draft=False))
            elif exc.status >= 500:
                return self._converge(spec, exc)
            else:
                self._fail("open the pull request", exc)
        except requests.RequestException as exc:
            return self._converge(spec, exc)
        pr = _wrap(created)
        self._decorate(created, spec)
        return pr

    def update(self, pr: PullRequest, title: str, body: str) -> PullRequest:
        self.config.debug(f"GitHub: update title/body of pull request #{pr.number}")
        handle = self._handle(pr)
        self._call(f"update pull request #{pr.number}", lambda: handle.edit(title=title, body=body))
        return _wrap(handle)

    def merge(self, pr: PullRequest, method: MergeMethod) -> None:
        self.config.debug(f"GitHub: merge pull request #{pr.number} ({method})")
        handle = self._handle(pr)
        action = f"merge pull request #{pr.number}"
        try:
            # Merge exactly the head this run saw: if another writer pushed since, GitHub answers 409
            # instead of merging commits nobody looked at.
            result = handle.merge(merge_method=method, sha=handle.head.sha)
        except GithubException as exc:
            # A refusal may be the answer to a resent merge whose first try went through (a 502 from
            # a gateway after GitHub merged, then 405 "not mergeable"); a 5xx leaves it unknown.
            # Either way, the pull request itself says whether it is merged.
            if exc.status in (405, 409, 422):
                message = _merge_refusal(pr.number, method, exc)
            else:
                message = redact.redact(self._explain(action, exc))
            self._settle(pr, message)
            return
        except requests.RequestException as exc:
            self._settle(pr, redact.redact(self._explain(action, exc)))
            return
        if not result.merged:
            raise ProviderError(
                f"GitHub did not merge pull request #{pr.number} ({method}): {_one_line(result.message)}"
            )

    # -- merge when checks pass (providers/merging.py) ------------------------------------------------

    def auto_merge(self, pr: PullRequest, method: MergeMethod) -> str:
        """Turn GitHub's auto-merge on: GraphQL `enablePullRequestAutoMerge`, one request.

        GitHub refuses it for a pull request that could be merged right now ("Pull request is in clean
        status", also unstable or has-hooks): nothing to wait for, so it is merged at once (one more
        request, the REST merge). Pinned to the head this run saw, as the direct merge is.
        """
        handle = self._handle(pr)
        action = f"enable auto-merge of pull request #{pr.number}"
        self.config.debug(f"GitHub: {action} ({method})")
        variables = {
            "pullRequestId": handle.node_id,
            "mergeMethod": method.upper(),
            "expectedHeadOid": handle.head.sha,
        }
        errors, _data = self._graphql(action, _ENABLE_AUTO_MERGE, variables)
        if not errors:
            return "auto-enabled"
        message = "; ".join(_one_line(str(e.get("message") or e.get("type") or "")) for e in errors)
        low = message.lower()
        if any(f"is in {status} status" in low for status in _MERGEABLE_NOW):
            self.config.debug(
                f"GitHub: {message}: nothing to wait for; merging pull request #{pr.number} now"
            )
            self.merge(pr, method)
            return "merged"
        source = self.config.credential.source if self.config.credential else "the environment"
        if "auto merge is not allowed" in low or "auto-merge is not allowed" in low:
            raise ProviderError(
                f"GitHub refused to enable auto-merge of pull request #{pr.number}: {message} "
                f"({self.full_name}); an admin can turn on Settings > General > Pull Requests > Allow "
                "auto-merge (private repositories need a GitHub Pro, Team or Enterprise plan for it), "
                "or use -merge-when=now"
            )
        types = {str(e.get("type") or "") for e in errors}
        if "FORBIDDEN" in types or "not accessible" in low or "not allowed to" in low or "permission" in low:
            raise ProviderError(
                f"GitHub refused to enable auto-merge of pull request #{pr.number}: {message}; the token "
                f"from {source} needs Contents and Pull requests write permission (classic: repo scope) on "
                f"{self.full_name}"
            )
        if "draft" in low:
            hint = "mark the pull request ready for review first"
        elif "method" in low:
            hint = "choose a merge method the repository allows (its settings, Pull Requests section)"
        elif "head" in low and ("sha" in low or "oid" in low):
            hint = "someone pushed to the branch meanwhile; rerun"
        else:
            hint = "see the repository's merge settings and branch protection"
        raise ProviderError(
            f"GitHub refused to enable auto-merge of pull request #{pr.number} with method {method}: "
            f"{message}; {hint}"
        )

    def merge_state(self, pr: PullRequest) -> MergeState:
        """One GraphQL query: state, auto-merge, and the head commit's checks with which are required."""
        owner, name = self.full_name.split("/", 1)
        action = f"read the checks of pull request #{pr.number}"
        errors, data = self._graphql(
            action, _MERGE_STATE, {"owner": owner, "name": name, "number": pr.number}
        )
        node = ((data.get("repository") or {}).get("pullRequest")) or {}
        if errors or not node:
            message = "; ".join(_one_line(str(e.get("message") or "")) for e in errors) or "no pull request"
            raise ProviderError(f"GitHub answered trying to {action} on {self.full_name}: {message}")
        state = str(node.get("state") or "").upper()
        if node.get("merged") or state == "MERGED":
            return MergeState("merged", "passed")
        if state == "CLOSED":
            return MergeState("closed")
        commits = ((node.get("commits") or {}).get("nodes")) or [{}]
        rollup = ((commits[-1].get("commit") or {}).get("statusCheckRollup")) or {}
        contexts = ((rollup.get("contexts") or {}).get("nodes")) or []
        failed, pending = [], []
        for context in contexts:
            label = str(context.get("name") or context.get("context") or "?")
            verdict = str(context.get("conclusion") or context.get("state") or "PENDING").upper()
            if context.get("isRequired") and verdict in _FAILED:
                failed.append(label)
            elif context.get("isRequired") and verdict not in _PASSED:
                pending.append(label)
        summary = str(rollup.get("state") or "").upper()
        if failed:
            checks, detail = "failed", f"{', '.join(failed)} failed"
        elif not rollup:
            checks, detail = "none", ""
        elif summary == "SUCCESS" or (not pending and summary in _FAILED):
            checks, detail = "passed", ""  # only optional checks failed: GitHub merges all the same
        else:
            checks, detail = "pending", f"waiting for {', '.join(pending)}" if pending else ""
        ready = str(node.get("mergeStateStatus") or "").lower() in _MERGEABLE_NOW
        return MergeState("open", checks, ready, node.get("autoMergeRequest") is not None, detail)

    def _graphql(
        self, action: str, query: str, variables: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """POST the GraphQL endpoint (`/graphql` on api.github.com, `/api/graphql` on Enterprise Server,
        beside `/api/v3`): (errors, data). HTTP failures become one-line ProviderErrors as REST's do."""
        requester = self.client.requester

        def post() -> dict[str, Any]:
            _headers, payload = requester.requestJsonAndCheck(
                "POST", requester.graphql_url, input={"query": query, "variables": variables}
            )
            return payload if isinstance(payload, dict) else {}

        payload = self._call(action, post)
        errors = [e for e in payload.get("errors") or [] if isinstance(e, dict)]
        return errors, payload.get("data") or {}

    # -- helpers ------------------------------------------------------------------------------------

    def _create(self, spec: PullRequestSpec, draft: bool) -> GhPullRequest:
        extra: dict[str, Any] = {"draft": True} if draft else {}
        return self._repo.create_pull(
            base=spec.base, head=spec.head, title=spec.title, body=spec.body, **extra
        )

    def _decorate(self, pr: GhPullRequest, spec: PullRequestSpec) -> None:
        """Labels and reviewers are extras: a failure warns and the run goes on."""
        if spec.labels:
            try:
                # The object form GitHub recommends (and its description requires); PyGithub's
                # add_to_labels sends a bare array.
                self.client.requester.requestJsonAndCheck(
                    "POST", f"{pr.issue_url}/labels", input={"labels": list(spec.labels)}
                )
            except (GithubException, requests.RequestException) as exc:
                self.config.warn(f"GitHub: could not add labels {', '.join(spec.labels)}: {_reason(exc)}")
        if spec.reviewers:
            # "org/team" names a team (by slug), anything else a user login.
            names = [r.lstrip("@") for r in spec.reviewers]
            users = [r for r in names if "/" not in r]
            teams = [r.split("/", 1)[1] for r in names if "/" in r]
            extra: dict[str, Any] = {}
            if users:
                extra["reviewers"] = users
            if teams:
                extra["team_reviewers"] = teams
            try:
                pr.create_review_request(**extra)
            except (GithubException, requests.RequestException) as exc:
                self.config.warn(
                    f"GitHub: could not request reviews from {', '.join(spec.reviewers)}: {_reason(exc)}"
                )

    def _converge(self, spec: PullRequestSpec, exc: Exception) -> PullRequest:
        failure = redact.redact(self._explain("open the pull request", exc))
        return opened_after_all(self, spec, failure, self.config.warn, forge="GitHub")

    def _settle(self, pr: PullRequest, failure: str) -> None:
        """After a merge call failed or was refused: fine if the pull request is merged, else `failure`.

        One more request, on this failure path only.
        """
        try:
            merged = bool(self._repo.get_pull(pr.number).merged)
        except (GithubException, requests.RequestException) as exc:
            raise ProviderError(
                f"{failure} (and reading pull request #{pr.number} back to check failed too: {_reason(exc)})"
            ) from None
        if not merged:
            raise ProviderError(failure)
        self.config.warn(
            f"GitHub: the merge call for pull request #{pr.number} did not come back cleanly ({failure}); "
            "reading the pull request back shows it is merged"
        )

    def _handle(self, pr: PullRequest) -> GhPullRequest:
        if isinstance(pr.handle, GhPullRequest):
            return pr.handle
        got: GhPullRequest = self._call(
            f"read pull request #{pr.number}", lambda: self._repo.get_pull(pr.number)
        )
        return got

    def _call(self, action: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (GithubException, requests.RequestException) as exc:
            self._fail(action, exc)

    def _fail(self, action: str, exc: Exception) -> NoReturn:
        raise ProviderError(redact.redact(self._explain(action, exc))) from None

    def _explain(self, action: str, exc: Exception) -> str:
        where = f"{self.full_name} at {self.api}"
        source = self.config.credential.source if self.config.credential else "the environment"
        transport = http.transport_failure("GitHub", self.api, action, exc, self.config.ca_bundle, self.log)
        if transport is not None:
            return transport
        assert isinstance(exc, GithubException)
        status, reason = exc.status, _github_message(exc)
        headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
        app = source.startswith("GitHub App ")  # an installation token (updater/github_app.py)
        if status == 401 and app:
            return (
                f"GitHub rejected the installation token of {source} (401 {reason}) for {self.api}: it "
                "expired (they live one hour) or the installation was removed; rerun to mint a new one"
            )
        if status == 401:
            return (
                f"GitHub rejected the token from {source} (401 {reason}) for {self.api}: it is invalid, "
                f"expired or revoked; set a valid token in {source}"
            )
        limited = status in (403, 429) and (
            "rate limit" in reason.lower() or http.rate_limit_reset(headers) is not None
        )
        if limited:
            worded = http.status_failure("GitHub", self.api, action, status, reason, self.log)
            if worded is not None:
                return worded
            # A secondary limit without Retry-After: GitHub asks for at least a minute's wait.
            log = self.log
            tried = "sent once"
            if log is not None and log.last is not None and log.last.status == status:
                tried = log.tried()
            what = "sent once, not retried" if tried == "sent once" else f"{tried}; the last not retried"
            return (
                f"GitHub rate-limited the run ({status} {reason}) trying to {action} at {self.api}: {what}, "
                "as GitHub gave no Retry-After and asks clients to wait at least a minute; rerun in a few "
                "minutes"
            )
        if status == 403:
            if "x-github-sso" in headers:
                return (
                    f"GitHub refused to {action} on {where}: the token from {source} is not authorised for "
                    f"the organisation's SAML single sign-on; authorise it for SSO in the token settings"
                )
            if app:
                needed = headers.get("x-accepted-github-permissions")
                return (
                    f"GitHub refused to {action} on {where} (403 {reason}): the installation of {source} "
                    + (f"lacks the permission {needed}" if needed else "lacks a permission")
                    + " (the App needs Contents and Pull requests: read and write, Members: read for team "
                    "reviewers); add it in the App's settings and accept it for the installation"
                )
            return (
                f"GitHub refused to {action} on {where} (403 {reason}): the token from {source} lacks the "
                "scope or permission (classic token: repo scope; fine-grained: Pull requests and Contents "
                "read/write), or the organisation requires SSO authorisation"
            )
        if status == 404:
            return (
                f"GitHub answered 404 Not Found trying to {action} on {where}: check the repository path "
                f"(origin) and -api-endpoint, and that the token from {source} can see the repository"
            )
        worded = http.status_failure("GitHub", self.api, action, status, reason, self.log)
        if worded is not None:
            return worded
        return f"GitHub refused to {action} on {where} ({status}): {reason}"


# GitHub's merge state statuses in which auto-merge cannot be enabled, because it can merge right now.
_MERGEABLE_NOW = ("clean", "unstable", "has_hooks", "has hooks")
_FAILED = frozenset({"FAILURE", "ERROR", "TIMED_OUT", "CANCELLED", "ACTION_REQUIRED", "STARTUP_FAILURE"})
_PASSED = frozenset({"SUCCESS", "NEUTRAL", "SKIPPED"})
_ENABLE_AUTO_MERGE = """
mutation($pullRequestId: ID!, $mergeMethod: PullRequestMergeMethod, $expectedHeadOid: GitObjectID) {
  enablePullRequestAutoMerge(input: {pullRequestId: $pullRequestId, mergeMethod: $mergeMethod,
                                     expectedHeadOid: $expectedHeadOid}) {
    pullRequest { number autoMergeRequest { enabledAt mergeMethod } }
  }
}
"""
_MERGE_STATE = """
query($owner: String!, $name: String!, $number: Int!) {
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      state merged mergeStateStatus
      autoMergeRequest { enabledAt mergeMethod }
      commits(last: 1) { nodes { commit { oid statusCheckRollup { state contexts(first: 100) { nodes {
        __typename
        ... on CheckRun { name status conclusion isRequired(pullRequestNumber: $number) }
        ... on StatusContext { context state isRequired(pullRequestNumber: $number) }
      } } } } } }
    }
  }
}
"""


def _wrap(pr: GhPullRequest) -> PullRequest:
    return PullRequest(number=pr.number, url=pr.html_url, title=pr.title, body=pr.body or "", handle=pr)


def _merge_refusal(number: int, method: str, exc: GithubException) -> str:
    reason = _github_message(exc)
    low = reason.lower()
    if exc.status == 409 or "was modified" in low:
        hint = "someone pushed to the branch meanwhile; rerun to merge what is there now"
    elif "not allowed" in low and "merge" in low:
        hint = "choose a merge method the repository allows (its settings, Pull Requests section)"
    elif any(w in low for w in ("review", "status check", "protected", "rule", "signed", "linear history")):
        hint = "the base branch's protection rules must be satisfied first (reviews, status checks)"
    elif "draft" in low:
        hint = "mark the pull request ready for review first"
    elif "not mergeable" in low:
        hint = "it conflicts with the base branch, or GitHub has not finished checking it; resolve and rerun"
    else:
        hint = "see the repository's merge settings and branch protection"
    return f"GitHub refused to merge pull request #{number} with method {method}: {reason}; {hint}"


def _github_message(exc: GithubException) -> str:
    """GitHub's own words: the message plus each validation error's detail."""
    data = exc.data if isinstance(exc.data, dict) else {}
    message = str(data.get("message") or exc.message or f"HTTP {exc.status}")
    details = []
    for error in data.get("errors") or []:
        if isinstance(error, dict):
            detail = error.get("message") or " ".join(
                str(error[k]) for k in ("resource", "field", "code") if error.get(k)
            )
            if detail:
                details.append(str(detail))
        elif error:
            details.append(str(error))
    if details:
        message = f"{message}: {'; '.join(details)}"
    return _one_line(message)


def _reason(exc: Exception) -> str:
    if isinstance(exc, GithubException):
        return f"{exc.status} {_github_message(exc)}"
    return type(exc).__name__


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split()).rstrip(".")
