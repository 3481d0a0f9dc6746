"""Bitbucket Server / Data Center, through atlassian-python-api (imported only here).

The SDK's `Bitbucket` client carries the session, the authentication and the JSON plumbing; the
paths are spelled out here rather than taken from its helpers, because those route personal
repositories (`~USER`) to /users/~USER/… and send a Bitbucket Cloud-shaped merge body.

API calls, once the base branch is known: find (1 per page of the head branch's open pull requests,
normally 1) + create (1); a rerun that reuses the open pull request costs 1; update 1; merge 1.

Credentials: an HTTP access token (personal, project or repository) is sent as
`Authorization: Bearer`. If the server rejects that and a username is known, the secret is tried
once more as a password with Basic authentication (username + password, or username + personal
token). git needs the username too; the core handles git, this module only the REST API.

Merge methods map to Bitbucket's merge strategy ids, sent as `strategyId`:
  - merge  → none: the repository's default strategy (out of the box "no-ff", a merge commit), so a
    plain merge behaves as in the UI, whatever strategy an administrator made the default;
  - squash → "squash", else "squash-ff-only";
  - rebase → "rebase-ff-only" (linear history, as GitHub's rebase merge), else "rebase-no-ff".
When the server refuses a strategy, the repository's pull request settings are read (one request)
and the next candidate it enables is used; if none is enabled the error lists those that are.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from typing import Any, NoReturn

import requests
from atlassian import Bitbucket

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

API_PATH = "rest/api/1.0"
STRATEGIES: dict[str, tuple[str | None, ...]] = {
    "merge": (None,),
    "squash": ("squash", "squash-ff-only"),
    "rebase": ("rebase-ff-only", "rebase-no-ff"),
}
_AUTHORISATION = "AuthorisationException"
AUTO_MERGE_SINCE = (8, 15)  # Data Center's first version with auto-merge


def api_base(origin: Origin, override: str | None = None) -> str:
    """The REST API root (…/rest/api/1.0) for this origin, without a trailing slash.

    HTTP clone URLs look like https://host[:port][/context]/scm/PROJ/repo.git: the part before
    /scm/ is the context path the server runs under, kept. ssh clone URLs
    (ssh://git@host:7999/PROJ/repo.git) say nothing of the web side: https://host is assumed, without
    the ssh port and without a context path (use -api-endpoint for those).
    """
    if override:
        return override.rstrip("/")
    if not origin.host:
        raise ProviderError(
            "cannot derive the Bitbucket Server API endpoint from a local origin; pass "
            "-api-endpoint=https://HOST[/CONTEXT]/rest/api/1.0"
        )
    context = ""
    if origin.is_http:
        parts = origin.path.split("/")
        if "scm" in parts[:-2]:
            at = len(parts) - 1 - parts[::-1].index("scm")  # the last "scm" before PROJ/repo
            context = "/".join(parts[:at])
    return f"{origin.web_base}{'/' + context if context else ''}/{API_PATH}"


def repo_id(origin: Origin) -> tuple[str, str]:
    """(project key, repository slug); a personal repository's key is ~USER."""
    parts = [p for p in origin.path.split("/") if p]
    if len(parts) < 2 or (origin.is_http and len(parts) > 2 and "scm" not in parts):
        raise ProviderError(
            f"origin path '{origin.path}' is not a Bitbucket Server repository (…/scm/PROJ/repo.git over "
            "https, PROJ/repo.git over ssh); check the origin remote"
        )
    key, slug = urllib.parse.unquote(parts[-2]), urllib.parse.unquote(parts[-1])
    return key, slug


def connect(config: ProviderConfig, *, backoff: float | None = None) -> BitbucketServerAdapter:
    credential = config.credential
    if credential is None:
        raise ProviderError(
            f"no credentials for the Bitbucket Server API of {config.origin.host or 'this origin'}: set "
            "BITBUCKET_SERVER_TOKEN (an HTTP access token) or UPDATE_GITOPS_REPO_TOKEN, with "
            "UPDATE_GITOPS_REPO_USERNAME (or BITBUCKET_USERNAME) for git, or store them for the host in "
            "~/.git-credentials"
        )
    api = api_base(config.origin, config.api_endpoint)
    key, slug = repo_id(config.origin)
    if backoff is None:
        # Scaled to the deadline so a short deadline (tests, impatient CI) also waits briefly between tries.
        backoff = min(0.5, config.deadline / 40)
    session = http.session(config.deadline, backoff, config.ca_bundle)
    session.hooks["response"].append(_debug_hook(config.debug))
    client = Bitbucket(  # type: ignore[no-untyped-call]
        url=api,
        token=credential.secret,
        session=session,
        cloud=False,
        advanced_mode=True,  # hand back every response: statuses are ours to explain
        backoff_and_retry=False,  # the session's retry policy does this, within the deadline
        retry_with_header=False,  # else it sleeps Retry-After once more after the session gave up
    )
    client.timeout = config.timeout  # type: ignore[assignment]  # the constructor truncates it to an int
    return BitbucketServerAdapter(config, client, api, key, slug, http.call_log(session))


class _Failure(Exception):
    """A non-2xx answer, with Bitbucket's error entries; turned into a ProviderError by the caller."""

    def __init__(self, status: int, errors: list[dict[str, Any]], text: str) -> None:
        super().__init__(f"{status}")
        self.status = status
        self.errors = errors
        self.text = text

    @property
    def first(self) -> dict[str, Any]:
        return self.errors[0] if self.errors else {}

    @property
    def exception(self) -> str:
        return str(self.first.get("exceptionName") or "")

    @property
    def message(self) -> str:
        messages = [str(e.get("message") or "") for e in self.errors if e.get("message")]
        return _one_line("; ".join(messages) or self.text or f"HTTP {self.status}")


class BitbucketServerAdapter:
    name = "bitbucket-server"

    def __init__(
        self,
        config: ProviderConfig,
        client: Bitbucket,
        api: str,
        key: str,
        slug: str,
        log: http.CallLog | None = None,
    ) -> None:
        self.config = config
        self.log = log  # what the last request went through (the session's retry policy keeps it)
        self.client = client
        self.api = api
        self.key = key
        self.slug = slug
        self.repo = f"projects/{urllib.parse.quote(key, safe='~')}/repos/{urllib.parse.quote(slug, safe='')}"
        self._basic_tried = False

    # -- the Adapter protocol ---------------------------------------------------------------------

    def default_branch(self) -> str:
        data = self._call("read the default branch", "GET", f"{self.repo}/branches/default")
        if not isinstance(data, dict) or not data.get("displayId"):
            raise ProviderError(
                f"Bitbucket Server repository {self.key}/{self.slug} has no default branch (an empty "
                "repository?); pass -base-branch"
            )
        return str(data["displayId"])

    def find_open(self, head: str, base: str) -> PullRequest | None:
        params: dict[str, Any] = {"state": "OPEN", "direction": "OUTGOING", "at": f"refs/heads/{head}"}
        while True:
            page = self._call("list pull requests", "GET", f"{self.repo}/pull-requests", params=params)
            for pr in page.get("values") or []:
                if self._is(pr, "fromRef", head) and self._is(pr, "toRef", base):
                    return _wrap(pr)
            if page.get("isLastPage", True) or page.get("nextPageStart") is None:
                return None
            params = {**params, "start": page["nextPageStart"]}

    def create(self, spec: PullRequestSpec) -> PullRequest:
        if spec.labels:
            self.config.warn(
                f"Bitbucket Server has no pull request labels; not applying {', '.join(spec.labels)}"
            )
        reviewers = [r.lstrip("@") for r in spec.reviewers]
        draft = spec.draft
        for _ in range(3):  # at most: drop unknown reviewers, drop draft, then give up
            body = self._create_body(spec, reviewers, draft)
            try:
                created = self._request("POST", f"{self.repo}/pull-requests", json_body=body)
                break
            except _Failure as failure:
                if failure.exception.endswith("DuplicatePullRequestException"):
                    # Opened by a concurrent run between our find and create: converge on it.
                    existing = failure.first.get("existingPullRequest")
                    if isinstance(existing, dict) and existing.get("id"):
                        return _wrap(existing)
                    found = self.find_open(spec.head, spec.base)
                    if found is not None:
                        return found
                if failure.exception.endswith("InvalidPullRequestReviewersException"):
                    unknown = _invalid_reviewers(failure)
                    kept = [r for r in reviewers if r not in unknown]
                    if unknown and kept != reviewers:
                        reasons = "; ".join(_invalid_reviewer_reasons(failure))
                        names = ", ".join(sorted(unknown))
                        self.config.warn(
                            f"Bitbucket Server: not requesting reviews from {names}"
                            + (f" ({reasons})" if reasons else "")
                        )
                        reviewers = kept
                        continue
                if draft and failure.status == 400 and "draft" in failure.message.lower():
                    self.config.warn(
                        f"Bitbucket Server refused a draft ({failure.message}); opening a regular pull "
                        "request"
                    )
                    draft = False
                    continue
                if failure.status >= 500:
                    return self._converge(spec, failure)
                self._fail("open the pull request", failure)
            except requests.RequestException as exc:
                return self._converge(spec, exc)
        else:  # pragma: no cover - each retry above removes something, so the loop always breaks
            raise ProviderError("Bitbucket Server refused to open the pull request")
        if draft and not created.get("draft"):
            self.config.warn(
                "Bitbucket Server ignored the draft request (drafts need Data Center 8.18 or later); "
                "the pull request is open for review"
            )
        return _wrap(created)

    def update(self, pr: PullRequest, title: str, body: str) -> PullRequest:
        data = self._data(pr)
        for attempt in range(2):
            payload: dict[str, Any] = {
                "version": data.get("version", 0),
                "title": title,
                "description": body,
                # A PUT replaces the reviewer list: send the current one so nobody is dropped.
                "reviewers": [{"user": {"name": r["user"]["name"]}} for r in data.get("reviewers") or []],
            }
            if data.get("draft"):
                payload["draft"] = True
            try:
                return _wrap(
                    self._request("PUT", f"{self.repo}/pull-requests/{pr.number}", json_body=payload)
                )
            except _Failure as failure:
                current = failure.first.get("pullRequest")
                if (
                    attempt == 0
                    and failure.exception.endswith("OutOfDateException")
                    and isinstance(current, dict)
                ):
                    data = current  # changed since we read it (a reviewer added, say): apply ours on top
                    continue
                self._fail(f"update pull request #{pr.number}", failure)
            except requests.RequestException as exc:
                self._fail(f"update pull request #{pr.number}", exc)
        raise ProviderError(f"Bitbucket Server kept changing pull request #{pr.number}; rerun")

    def merge(self, pr: PullRequest, method: MergeMethod) -> None:
        self._merge(pr, method)

    def _merge(self, pr: PullRequest, method: MergeMethod, *, auto: bool = False) -> str:
        """The merge call: "merged"; with `auto` (Data Center 8.15+, `autoMerge: true`) also
        "auto-enabled" (the server merges it when its merge checks pass) or "unsupported" (vetoed as a
        plain merge: auto-merge is off for this repository)."""
        data = self._data(pr)
        version = int(data.get("version", 0))
        candidates = list(STRATEGIES[method])
        tried: list[str] = []
        strategy = candidates[0]
        version_retried = False
        while True:
            body: dict[str, Any] | None = {"strategyId": strategy} if strategy else None
            if auto:
                body = {**(body or {}), "autoMerge": True}
            try:
                merged = self._request(
                    "POST",
                    f"{self.repo}/pull-requests/{pr.number}/merge",
                    params={"version": version},
                    json_body=body,
                )
                break
            except _Failure as failure:
                current = failure.first.get("pullRequest")
                if isinstance(current, dict) and current.get("state") == "MERGED":
                    # Out of date because it is merged: our earlier try went through (its answer lost
                    # to a 502 or a timeout, the resent merge refused), or someone merged it meanwhile.
                    self._merged_after_all(pr, f"{failure.status} {failure.message}")
                    return "merged"
                if failure.exception.endswith("OutOfDateException") and not version_retried:
                    version_retried = True
                    version = int(failure.first.get("currentVersion", version))
                    continue
                if failure.exception.endswith("PullRequestMergeVetoedException"):
                    if auto and not failure.first.get("conflicted"):
                        self.config.warn(
                            f"Bitbucket Data Center did not take an auto-merge request for pull request "
                            f"#{pr.number} ({self._veto(pr.number, method, failure)}): auto-merge is off for "
                            f"{self.key}/{self.slug} (Repository settings > Auto-merge); the tool waits "
                            "for the checks and merges it itself"
                        )
                        return "unsupported"
                    raise ProviderError(self._veto(pr.number, method, failure)) from None
                refused = f"Bitbucket Server refused to merge pull request #{pr.number} ({failure.message})"
                if failure.exception.endswith("IllegalPullRequestStateException"):
                    self._settle(pr, refused)  # not open: merged after all, or declined
                    return "merged"
                if failure.status in (400, 409) and strategy is not None:
                    tried.append(strategy)
                    strategy = self._next_strategy(pr.number, method, candidates, tried, failure)
                    continue
                if failure.status == 409:
                    self._settle(pr, refused)
                    return "merged"
                if failure.status >= 500:
                    self._settle(
                        pr, redact.redact(self._explain(f"merge pull request #{pr.number}", failure))
                    )
                    return "merged"
                self._fail(f"merge pull request #{pr.number}", failure)
            except requests.RequestException as exc:
                self._settle(pr, redact.redact(self._explain(f"merge pull request #{pr.number}", exc)))
                return "merged"
        if auto and merged.get("state") == "OPEN":
            return "auto-enabled"
        if merged.get("state") != "MERGED":
            state = merged.get("state") or "unknown"
            raise ProviderError(f"Bitbucket Server did not merge pull request #{pr.number}: it is {state}")
        return "merged"

    # -- merge when checks pass (providers/merging.py) ------------------------------------------------

    def auto_merge(self, pr: PullRequest, method: MergeMethod) -> str:
        """Data Center 8.15+ merges a pull request by itself once its merge checks pass when the merge
        call asks for it (`autoMerge: true`; the server merges at once if nothing vetoes). The version
        comes from `GET …/application-properties` (one request); an older server, or a repository
        with auto-merge off, answers "unsupported" and the tool waits and merges itself."""
        version = self._server_version()
        if version < AUTO_MERGE_SINCE:
            shown = ".".join(map(str, version)) if version else "unknown"
            self.config.warn(
                f"Bitbucket Data Center {shown} has no auto-merge (8.15 and later have it); the tool "
                "waits for the checks and merges the pull request itself"
            )
            return "unsupported"
        return self._merge(pr, method, auto=True)

    def merge_state(self, pr: PullRequest) -> MergeState:
        """The pull request (state, version), then, while open, `GET …/merge`: whether it can be merged
        now and the merge checks that veto it (two requests)."""
        data = self._call(f"read pull request #{pr.number}", "GET", f"{self.repo}/pull-requests/{pr.number}")
        if isinstance(data, dict) and data.get("version") is not None and isinstance(pr.handle, dict):
            pr.handle = data  # the merge sends the current version
        state = str((data or {}).get("state") or "")
        if state == "MERGED":
            return MergeState("merged", "passed")
        if state != "OPEN":
            return MergeState("closed")
        check = self._call(
            f"read the merge checks of pull request #{pr.number}",
            "GET",
            f"{self.repo}/pull-requests/{pr.number}/merge",
        )
        if check.get("canMerge"):
            return MergeState("open", "passed", True)
        if check.get("conflicted"):
            return MergeState("open", "failed", detail="it has conflicts with its target branch")
        vetoes = "; ".join(
            _one_line(str(v.get("summaryMessage") or ""))
            for v in check.get("vetoes") or []
            if isinstance(v, dict)
        )
        return MergeState("open", "pending", detail=vetoes)

    def _server_version(self) -> tuple[int, ...]:
        data = self._call("read the server version", "GET", "application-properties")
        parts = []
        for part in str((data or {}).get("version") or "").split("."):
            if not part.isdigit():
                break
            parts.append(int(part))
        return tuple(parts)

    # -- helpers ------------------------------------------------------------------------------------

    def _converge(self, spec: PullRequestSpec, exc: Exception) -> PullRequest:
        failure = redact.redact(self._explain("open the pull request", exc))
        return opened_after_all(self, spec, failure, self.config.warn, forge="Bitbucket Server")

    def _settle(self, pr: PullRequest, failure: str) -> None:
        """After a merge call failed or was refused: fine if the pull request is merged, else `failure`.

        One more request, on this failure path only.
        """
        try:
            data = self._request("GET", f"{self.repo}/pull-requests/{pr.number}")
        except (_Failure, requests.RequestException) as exc:
            raise ProviderError(
                f"{failure} (and reading pull request #{pr.number} back to check failed too: "
                f"{exc.status if isinstance(exc, _Failure) else type(exc).__name__})"
            ) from None
        if not isinstance(data, dict) or data.get("state") != "MERGED":
            raise ProviderError(failure)
        self._merged_after_all(pr, failure)

    def _merged_after_all(self, pr: PullRequest, failure: str) -> None:
        self.config.warn(
            f"Bitbucket Server: the merge call for pull request #{pr.number} did not come back cleanly "
            f"({failure}); the pull request is merged"
        )

    def _create_body(self, spec: PullRequestSpec, reviewers: list[str], draft: bool) -> dict[str, Any]:
        repository = {"slug": self.slug, "project": {"key": self.key}}
        body: dict[str, Any] = {
            "title": spec.title,
            "description": spec.body,
            "fromRef": {"id": f"refs/heads/{spec.head}", "repository": repository},
            "toRef": {"id": f"refs/heads/{spec.base}", "repository": repository},
            "reviewers": [{"user": {"name": name}} for name in reviewers],
        }
        if draft:
            body["draft"] = True  # Data Center 8.18+; older servers ignore it
        return body

    def _is(self, pr: dict[str, Any], side: str, branch: str) -> bool:
        ref = pr.get(side) or {}
        repository = ref.get("repository") or {}
        key = str((repository.get("project") or {}).get("key") or "")
        # Clone URLs carry the project key lower-cased; Bitbucket matches keys case-insensitively.
        same_repo = not repository or (
            key.upper() == self.key.upper() and str(repository.get("slug") or "").lower() == self.slug.lower()
        )
        return ref.get("id") == f"refs/heads/{branch}" and same_repo

    def _next_strategy(
        self, number: int, method: str, candidates: list[str | None], tried: list[str], failure: _Failure
    ) -> str:
        """The next strategy for `method` the repository enables, or a ProviderError saying which it does."""
        settings = self._call("read the pull request settings", "GET", f"{self.repo}/settings/pull-requests")
        config = settings.get("mergeConfig") or {}
        enabled = [s for s in config.get("strategies") or [] if s.get("enabled")]
        enabled_ids = {str(s.get("id")) for s in enabled}
        for candidate in candidates:
            if candidate and candidate not in tried and candidate in enabled_ids:
                return candidate
        allowed = ", ".join(f"{s.get('id')} ({s.get('name')})" for s in enabled) or "none"
        if any(t in enabled_ids for t in tried):
            # The strategy is enabled, so the refusal had another reason: report it as it was given.
            raise ProviderError(
                f"Bitbucket Server refused to merge pull request #{number} with strategy {tried[-1]} "
                f"({failure.status} {failure.message})"
            )
        wanted = ", ".join(c for c in candidates if c)
        raise ProviderError(
            f"Bitbucket Server repository {self.key}/{self.slug} does not allow the {method} merge method "
            f"(strategies {wanted} are not enabled; enabled: {allowed}); choose another merge method or "
            "enable one in the repository settings (Merge strategies)"
        )

    def _veto(self, number: int, method: str, failure: _Failure) -> str:
        entry = failure.first
        if entry.get("conflicted"):
            return (
                f"Bitbucket Server cannot merge pull request #{number}: it has conflicts with its target "
                "branch; resolve them and rerun"
            )
        vetoes = [
            _one_line(str(v.get("summaryMessage") or v.get("detailedMessage") or ""))
            for v in entry.get("vetoes") or []
            if isinstance(v, dict)
        ]
        reasons = "; ".join(v for v in vetoes if v) or failure.message
        return f"Bitbucket Server merge checks vetoed merging pull request #{number} ({method}): {reasons}"

    def _data(self, pr: PullRequest) -> dict[str, Any]:
        if isinstance(pr.handle, dict):
            return pr.handle
        data: dict[str, Any] = self._call(
            f"read pull request #{pr.number}", "GET", f"{self.repo}/pull-requests/{pr.number}"
        )
        return data

    def _call(self, action: str, method: str, path: str, *, params: dict[str, Any] | None = None) -> Any:
        try:
            return self._request(method, path, params=params)
        except (_Failure, requests.RequestException) as exc:
            self._fail(action, exc)

    def _request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json_body: Any = None
    ) -> Any:
        response: requests.Response = self.client.request(
            method, path, data=json_body, params=params, advanced_mode=True
        )
        if response.status_code == 401 and self._switch_to_basic(response):
            response = self.client.request(method, path, data=json_body, params=params, advanced_mode=True)
        if response.status_code >= 400:
            raise _failure(response)
        if response.status_code == 204 or not response.content:
            return {}
        return response.json()

    def _switch_to_basic(self, response: requests.Response) -> bool:
        """Bearer refused as a credential (not as a permission): try username + password once."""
        credential = self.config.credential
        if self._basic_tried or credential is None or not credential.username:
            return False
        if _AUTHORISATION in _failure(response).exception:
            return False  # the credential was fine, its user lacks permission
        self._basic_tried = True
        session = self.client.session
        session.headers.pop("Authorization", None)
        session.auth = (credential.username, credential.secret)
        self.config.debug("Bitbucket Server: Bearer token refused; retrying with username and password")
        return True

    def _fail(self, action: str, exc: Exception) -> NoReturn:
        raise ProviderError(redact.redact(self._explain(action, exc))) from None

    def _explain(self, action: str, exc: Exception) -> str:
        where = f"{self.key}/{self.slug} at {self.api}"
        source = self.config.credential.source if self.config.credential else "the environment"
        transport = http.transport_failure(
            "Bitbucket Server", self.api, action, exc, self.config.ca_bundle, self.log
        )
        if transport is not None:
            return transport
        assert isinstance(exc, _Failure)
        status, message = exc.status, exc.message
        if status == 401 and _AUTHORISATION in exc.exception:
            return (
                f"Bitbucket Server refused to {action} on {where} (401 {message}): the user of the "
                f"credentials from {source} lacks permission (REPO_READ to open pull requests, REPO_WRITE "
                "to update and merge them), or the token has expired"
            )
        if status == 401:
            return (
                f"Bitbucket Server rejected the credentials from {source} (401 {message}) at {self.api}: "
                "check the HTTP access token (sent as Bearer), or the username and password"
            )
        if status == 403:
            return (
                f"Bitbucket Server forbade trying to {action} on {where} (403 {message}): the token needs "
                "Repository write (REPO_WRITE) permission"
            )
        if status == 404:
            return (
                f"Bitbucket Server answered 404 trying to {action} on {where} ({message}): check the project "
                "key and repository slug (from …/scm/PROJ/repo.git) and the context path; a server under a "
                "context path reached over ssh needs -api-endpoint=https://HOST/CONTEXT/rest/api/1.0"
            )
        worded = http.status_failure("Bitbucket Server", self.api, action, status, message, self.log)
        if worded is not None:
            return worded
        return f"Bitbucket Server refused to {action} on {where} ({status}): {message}"


def _failure(response: requests.Response) -> _Failure:
    errors: list[dict[str, Any]] = []
    text = ""
    try:
        payload = response.json()
    except ValueError:
        payload = None
        # An HTML error page (wrong context path, a proxy): its title says more than its markup.
        text = response.text if "html" not in response.headers.get("Content-Type", "") else ""
    if isinstance(payload, dict) and isinstance(payload.get("errors"), list):
        errors = [e for e in payload["errors"] if isinstance(e, dict)]
    elif payload is not None:
        text = json.dumps(payload)
    return _Failure(response.status_code, errors, _one_line(text)[:300] or response.reason or "")


def _invalid_reviewers(failure: _Failure) -> set[str]:
    return {str(e.get("context")) for e in failure.first.get("reviewerErrors") or [] if e.get("context")}


def _invalid_reviewer_reasons(failure: _Failure) -> list[str]:
    return [
        _one_line(str(e.get("message")))
        for e in failure.first.get("reviewerErrors") or []
        if e.get("message")
    ]


def _wrap(pr: dict[str, Any]) -> PullRequest:
    links = (pr.get("links") or {}).get("self") or [{}]
    return PullRequest(
        number=int(pr["id"]),
        url=str(links[0].get("href") or ""),
        title=str(pr.get("title") or ""),
        body=str(pr.get("description") or ""),
        handle=pr,
    )


def _one_line(text: str) -> str:
    return " ".join(text.split()).rstrip(".")


def _debug_hook(debug: Callable[[str], None]) -> Callable[..., None]:
    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        debug(f"Bitbucket Server API: {request.method} {request.url} → {response.status_code}")

    return hook
