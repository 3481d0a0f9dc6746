"""Bitbucket Cloud adapter: atlassian-python-api's `Cloud` client with explicit REST 2.0 paths.

The SDK's object model costs requests the tool does not need (`pullrequests.each()` fetches every
listed pull request a second time, `repositories.get()` is required before `pullrequests.create()`),
so the adapter uses the client for auth, session and JSON and calls its request layer with explicit
paths. Requests per operation: default branch 1; find 1 per page of 50; create 1; update 2 (a GET,
because a PUT without the reviewers takes them off the pull request, then the PUT); merge 1, plus
polls of the task-status link when Bitbucket answers 202 for a long merge, plus one read of the pull
request when the merge was not confirmed (a refusal, a 5xx, no answer): a merge the server carried out
before its answer was lost is a success, not the refusal its retry gets.

Credentials (see docs/providers.md): an Atlassian API token is Basic `e-mail:token` for REST (git takes
it with the Bitbucket username or `x-bitbucket-api-token-auth`, never the e-mail); an access token is
Bearer (git: `x-token-auth`); an app password (Basic `username:app-password`) was removed by Atlassian
on 2026-07-28 and is still sent as such, so that its 401 can say so.

Retries (429 with Retry-After, 5xx, connection errors) happen below, in the shared urllib3 policy of
`providers.http`, bounded by `config.deadline`.
"""

from __future__ import annotations

import re
import time
from typing import Any, Literal

import requests

from providers import http
from providers.base import MergeMethod, MergeState, ProviderConfig, PullRequest, PullRequestSpec
from updater.errors import ProviderError
from updater.values import Origin

NAME = "bitbucket-cloud"
DEFAULT_API = "https://api.bitbucket.org/2.0"
PAGELEN = 50  # the largest page Bitbucket serves for pull requests: one request in practice
APP_PASSWORDS_REMOVED = "2026-07-28"
API_TOKEN_GIT_USER = "x-bitbucket-api-token-auth"
# Bitbucket Cloud's merge strategies, as `merge_strategy` of a merge and `merge_strategies` of a branch.
STRATEGIES = (
    "merge_commit",
    "squash",
    "fast_forward",
    "squash_fast_forward",
    "rebase_fast_forward",
    "rebase_merge",
)
# -merge-method -> the strategies it may use, best first: the first the destination branch allows. A
# Bitbucket strategy's own name (`-merge-method=rebase_merge`, or `rebase-merge`) asks for it alone.
MERGE_STRATEGIES: dict[str, tuple[str, ...]] = {
    **{strategy: (strategy,) for strategy in STRATEGIES},
    "merge": ("merge_commit",),
    # -merge-method=squash is Bitbucket's squash too, and its fast-forward-only variant where only that
    # is allowed.
    "squash": ("squash", "squash_fast_forward"),
    # GitHub's "rebase and merge"; a plain fast-forward (what `rebase` meant before Bitbucket could
    # rebase) where only that is allowed.
    "rebase": ("rebase_fast_forward", "fast_forward"),
}
_POLL_CAP = 5.0  # seconds: the longest wait between two polls of a long merge
# What the service answers when it is overloaded or rate limiting: the retry policy already retried these.
_TRANSIENT = frozenset({429, 500, 502, 503, 504})
_UUID = re.compile(r"^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?$")
# Atlassian account ids: "557058:<uuid>" (or another numeric prefix), or the older 24 hex digits.
_ACCOUNT_ID = re.compile(r"^(?:\d+:[0-9a-fA-F-]{36}|[0-9a-fA-F]{24})$")


def api_base(origin: Origin, override: str | None = None) -> str:
    """-api-endpoint if given, else the one public API: Bitbucket Cloud has no self-hosted variant."""
    if override:
        return override.rstrip("/")
    return DEFAULT_API


def repo_id(origin: Origin) -> str:
    """`workspace/repo_slug` from https, ssh:// and scp-like (`git@bitbucket.org:ws/repo.git`) remotes."""
    parts = [part for part in origin.path.split("/") if part]
    if len(parts) != 2:
        raise ProviderError(
            f"origin {origin.display} is not a Bitbucket Cloud repository URL: "
            "expected https://bitbucket.org/<workspace>/<repo_slug>.git"
        )
    return f"{parts[0]}/{parts[1]}"


_USE_API_TOKEN = (
    "create an Atlassian API token with scopes for Bitbucket (read:repository:bitbucket, "
    "write:repository:bitbucket, read:pullrequest:bitbucket, write:pullrequest:bitbucket) and set "
    f"BITBUCKET_EMAIL (the Atlassian account e-mail) and BITBUCKET_API_TOKEN (git then uses "
    f"BITBUCKET_USERNAME, else {API_TOKEN_GIT_USER}), or use a workspace, project or repository access "
    "token in BITBUCKET_ACCESS_TOKEN"
)


def auth_kind(config: ProviderConfig) -> tuple[str, dict[str, str]]:
    """How the REST API is authenticated: ("api-token" | "app-password" | "access-token", SDK auth).

    - an Atlassian API token: Basic with the account e-mail (`api_username`, or a username that is an
      e-mail), whatever git's username is;
    - an access token: Bearer; a credential of unknown kind (git's credential store,
      UPDATE_GITOPS_REPO_TOKEN) is one when it comes without a username or with x-token-auth;
    - any other username without an e-mail: Basic `username:secret`, an app password (what Tekton
      wrote as `https://user:app-password@...`), removed by Atlassian: its 401 says what to use.
    """
    credential = config.credential
    if credential is None:
        raise ProviderError(f"no credential for Bitbucket Cloud: {_USE_API_TOKEN}")
    user = credential.username or ""
    if credential.kind == "access-token" or (
        credential.kind not in ("app-password", "api-token") and user in ("", "x-token-auth")
    ):
        return "access-token", {"token": credential.secret}
    email = credential.api_username or (user if "@" in user else "")
    if email:
        return "api-token", {"username": email, "password": credential.secret}
    if credential.kind == "api-token" or user == API_TOKEN_GIT_USER:
        raise ProviderError(
            f"the Atlassian API token from {credential.source} needs the account's e-mail for Bitbucket "
            "Cloud's REST API (git takes the token with the Bitbucket username or "
            f"{API_TOKEN_GIT_USER}, the REST API only with the e-mail): set BITBUCKET_EMAIL"
        )
    if not user:
        raise ProviderError(
            f"the credential from {credential.source} is an app password without a username, and "
            f"Atlassian removed app passwords on {APP_PASSWORDS_REMOVED}: {_USE_API_TOKEN}"
        )
    return "app-password", {"username": user, "password": credential.secret}


def auth_kwargs(config: ProviderConfig) -> dict[str, str]:
    """The SDK's auth arguments: username/password (Basic) or token (Bearer)."""
    return auth_kind(config)[1]


def connect(config: ProviderConfig) -> BitbucketCloud:
    # The SDK is imported here only, so that other providers never pay for it.
    from atlassian.bitbucket.cloud import Cloud as CloudClient

    # Partly typed SDK: the adapter only uses its request layer, through Any.
    cloud: Any = CloudClient

    kind, auth = auth_kind(config)
    base = api_base(config.origin, config.api_endpoint)
    workspace, slug = repo_id(config.origin).split("/")
    # Small deadlines (tests, impatient pipelines) get a proportionally small back-off, so that
    # several retries fit in the budget; the default deadline keeps the shared 0.5 s.
    backoff = min(0.5, config.deadline / 20)
    # Cloud() appends "/2.0" to its url; every call below uses an absolute URL built from `base`.
    root = base[: -len("/2.0")] if base.endswith("/2.0") else base
    session = http.session(config.deadline, backoff, config.ca_bundle)
    client: Any = cloud(
        url=root,
        session=session,
        timeout=config.timeout,
        # The shared urllib3 policy retries; the SDK's own Retry-After sleep would overrun the deadline.
        backoff_and_retry=False,
        retry_with_header=False,
        **auth,
    )
    # AtlassianRestAPI truncates the timeout to int (0.5 s would become "no time at all").
    client.timeout = config.timeout
    user = auth.get("username")
    return BitbucketCloud(
        config, client, base, workspace, slug, backoff, auth=kind, user=user, log=http.call_log(session)
    )


class BitbucketCloud:
    name = NAME

    def __init__(
        self,
        config: ProviderConfig,
        client: Any,
        base: str,
        workspace: str,
        slug: str,
        backoff: float,
        *,
        auth: str,
        user: str | None = None,
        log: http.CallLog | None = None,
    ) -> None:
        self._config = config
        self._client = client
        self._base = base
        self._repo = f"{workspace}/{slug}"
        self._repo_url = f"{base}/repositories/{workspace}/{slug}"
        # Built from the API base rather than taken from links.self.href, so that an -api-endpoint
        # (a proxy, a fake) keeps receiving every call.
        self._pulls_url = f"{self._repo_url}/pullrequests"
        self._backoff = max(backoff, 0.01)
        self._auth = auth  # "api-token", "app-password" or "access-token": what a 401 means
        self._log = log  # what the retry policy tried for the latest request, for honest messages
        self._user = user  # the Basic username (an API token's e-mail), for messages

    # -- the Adapter interface ------------------------------------------------------------------

    def default_branch(self) -> str:
        data = self._json(self._call("GET", self._repo_url, "reading the repository"))
        name = (data.get("mainbranch") or {}).get("name")
        if not name:
            # An empty repository has no main branch yet: spec §2's fallback.
            self._config.warn(f"Bitbucket Cloud reports no main branch for {self._repo}; using master")
            return "master"
        return str(name)

    def find_open(self, head: str, base: str) -> PullRequest | None:
        query = f"source.branch.name = {_quote(head)} AND destination.branch.name = {_quote(base)}"
        params: dict[str, Any] | None = {"state": "OPEN", "q": query, "pagelen": PAGELEN}
        url: str | None = self._pulls_url
        while url:
            page = self._json(self._call("GET", url, "listing open pull requests", params=params))
            for value in page.get("values") or []:
                # The filter is the server's; checking again costs nothing and also skips pull
                # requests from forks, whose branch names may well be the same.
                if (
                    value.get("state") == "OPEN"
                    and _branch(value, "source") == head
                    and _branch(value, "destination") == base
                    and self._from_this_repository(value)
                ):
                    return self._pull(value)
            # `next` carries every parameter already; Bitbucket asks clients not to build their own.
            url = page.get("next")
            params = None
        return None

    def create(self, spec: PullRequestSpec) -> PullRequest:
        if spec.labels:
            self._config.warn(
                f"Bitbucket Cloud has no pull request labels; ignoring {', '.join(spec.labels)}"
            )
        body: dict[str, Any] = {
            "title": spec.title,
            "description": spec.body,
            "source": {"branch": {"name": spec.head}},
            "destination": {"branch": {"name": spec.base}},
            "close_source_branch": False,
        }
        reviewers = self._reviewers(spec.reviewers)
        if reviewers:
            body["reviewers"] = reviewers
        if spec.draft:
            body["draft"] = True
        what = f"opening a pull request {spec.head} -> {spec.base}"
        response = self._send("POST", self._pulls_url, what, body=body)
        if response.status_code == 400 and reviewers and _is_reviewer_error(response):
            # Bitbucket refuses the whole pull request for one unknown reviewer; the change matters
            # more than the review request.
            self._config.warn(
                f"Bitbucket Cloud did not accept the reviewers ({_error_message(response)}); "
                "opening the pull request without them"
            )
            del body["reviewers"]
            response = self._send("POST", self._pulls_url, what, body=body)
        if response.status_code not in (200, 201):
            raise self._failure(what, response)
        return self._pull(self._json(response))

    def update(self, pr: PullRequest, title: str, body: str) -> PullRequest:
        what = f"updating pull request #{pr.number}"
        current = pr.handle if isinstance(pr.handle, dict) and "reviewers" in pr.handle else None
        if current is None:
            # Listings leave out the reviewers, and a PUT replaces them: read the whole object first.
            current = self._json(self._call("GET", self._pull_url(pr.number), what))
        payload: dict[str, Any] = {
            "title": title,
            "description": body,
            "reviewers": [_reviewer_ref(r) for r in current.get("reviewers") or [] if _reviewer_ref(r)],
            "close_source_branch": bool(current.get("close_source_branch")),
        }
        if "draft" in current:
            payload["draft"] = bool(current["draft"])
        response = self._call("PUT", self._pull_url(pr.number), what, body=payload)
        return self._pull(self._json(response))

    def merge(self, pr: PullRequest, method: MergeMethod | str) -> None:
        """Merge with the strategy `method` maps to on the destination branch (MERGE_STRATEGIES).

        A merge that was not confirmed (refused, a 5xx or 555, no answer at all) is checked by reading
        the pull request again: the server may have merged it before its answer was lost, and the retry
        of the lost request is then refused ("already merged"): that is a success, not a refusal.
        """
        handle = pr.handle if isinstance(pr.handle, dict) else {}
        strategy = self._strategy(pr.number, handle, str(method))
        what = f"merging pull request #{pr.number} ({strategy})"
        # A regular merge keeps the head branch (spec §2): say so rather than inherit the PR's flag.
        body = {"merge_strategy": strategy, "close_source_branch": False}
        try:
            response = self._send("POST", f"{self._pull_url(pr.number)}/merge", what, body=body)
        except ProviderError as exc:
            # No answer: the request may have reached the server and merged all the same.
            current = self._merged_meanwhile(pr, what)
            if current is True:
                return
            raise self._not_merged(pr, str(exc), current) from None
        if response.status_code == 200:
            return
        if response.status_code == 202:
            self._wait_for_merge(pr, response.headers.get("Location"), what)
            return
        if response.status_code in (401, 403, 404):
            raise self._failure(what, response)  # the request was not allowed in: nothing happened
        # Worded now, while the retry policy's log still describes the merge request.
        failure = self._merge_failure(pr, what, response, None)
        current = self._merged_meanwhile(pr, what)
        if current is True:
            return
        if response.status_code in (400, 405, 409):
            raise self._merge_failure(pr, what, response, current or None)
        raise self._not_merged(pr, str(failure), current)

    def _not_merged(self, pr: PullRequest, message: str, current: dict[str, Any]) -> ProviderError:
        """An uncertain merge's message, once a fresh read says what became of the pull request."""
        state = str(current.get("state") or "")
        if state in ("DECLINED", "SUPERSEDED"):
            return ProviderError(
                f"Bitbucket Cloud cannot merge pull request #{pr.number}: it is {state.lower()} (someone "
                "closed it meanwhile); run again to open a new one"
            )
        if state == "OPEN":
            return ProviderError(
                http.checked(message, f"pull request #{pr.number} is still open, not merged")
            )
        return ProviderError(message)

    # -- merge when checks pass (providers/merging.py) ------------------------------------------

    def merge_state(self, pr: PullRequest) -> MergeState:
        """Bitbucket Cloud has no auto-merge API: the tool merges once the builds pass. One read of the
        pull request, then its commit statuses (`GET …/pullrequests/{id}/statuses`, one request per
        page of 100): failed or stopped builds fail it, builds in progress keep it pending."""
        what = f"reading pull request #{pr.number}"
        data = self._json(self._call("GET", self._pull_url(pr.number), what))
        state = str(data.get("state") or "")
        if state == "MERGED":
            return MergeState("merged", "passed")
        if state != "OPEN":
            return MergeState("closed")
        pr.handle = data  # the merge picks its strategy from the destination's current settings
        url: str | None = f"{self._pull_url(pr.number)}/statuses"
        params: dict[str, Any] | None = {"pagelen": 100}
        builds: dict[str, str] = {}
        while url:
            page = _json_or_empty(self._call("GET", url, f"{what}: its build statuses", params=params))
            for status in page.get("values") or []:
                builds[str(status.get("name") or status.get("key") or "?")] = str(status.get("state") or "")
            url, params = page.get("next"), None
        failed = sorted(k for k, v in builds.items() if v in ("FAILED", "STOPPED"))
        running = sorted(k for k, v in builds.items() if v == "INPROGRESS")
        if failed:
            return MergeState("open", "failed", detail=f"{', '.join(failed)} failed")
        if running:
            count = f"{len(running)} build{'s' if len(running) != 1 else ''} in progress"
            return MergeState("open", "pending", detail=f"{count}: {', '.join(running)}")
        return MergeState("open", "passed" if builds else "none", ready=not data.get("draft"))

    # -- merging --------------------------------------------------------------------------------

    def _strategy(self, number: int, handle: dict[str, Any], method: str) -> str:
        """The Bitbucket strategy for -merge-method, checked against what the destination branch allows.

        The pull request's payload names them (destination.branch.merge_strategies); where it does not,
        the first choice is sent and a refusal is worded from a fresh read of the pull request.
        """
        candidates = MERGE_STRATEGIES.get(method.strip().lower().replace("-", "_"))
        if not candidates:
            raise ProviderError(
                f"-merge-method={method} is not a Bitbucket Cloud merge method: use merge, squash or rebase, "
                f"or one of Bitbucket's strategies {', '.join(STRATEGIES)}"
            )
        allowed, default, branch = _merge_settings(handle)
        if allowed is None:
            return candidates[0]
        for candidate in candidates:
            if candidate in allowed:
                if candidate != candidates[0]:
                    self._config.debug(
                        f"{branch} does not allow {candidates[0]}; merging with {candidate} instead"
                    )
                return candidate
        asked = " or ".join(candidates)
        via = f"{method} ({asked})" if candidates != (method,) else method
        return self._refuse_strategy(number, via, asked, branch, allowed, default)

    def _refuse_strategy(
        self, number: int, via: str, asked: str, branch: str, allowed: list[str], default: str | None
    ) -> str:
        listed = ", ".join(allowed) if allowed else "none"
        usual = f" (default {default})" if default else ""
        raise ProviderError(
            f"Bitbucket Cloud does not allow the {asked} merge strategy on {branch}, the destination of "
            f"pull request #{number}; it allows {listed}{usual}: pass one of them as "
            f"-merge-method (not {via}), or allow {asked.split(' or ')[0]} in the repository's settings "
            "(Merge strategies)"
        )

    def _merged_meanwhile(self, pr: PullRequest, what: str) -> Literal[True] | dict[str, Any]:
        """True when a fresh read shows the pull request MERGED; else that read ({} if it failed)."""
        try:
            response = self._send("GET", self._pull_url(pr.number), f"{what}: reading it again")
        except ProviderError:
            return {}
        current = _json_or_empty(response) if response.status_code == 200 else {}
        if current.get("state") == "MERGED":
            self._config.debug(f"pull request #{pr.number} is MERGED: the merge went through after all")
            return True
        return current

    def _wait_for_merge(self, pr: PullRequest, location: str | None, what: str) -> None:
        """Poll the task-status link of a long merge until it ends, with back-off, within the deadline.

        Atlassian documents the task as `PENDING` until it is done, then `SUCCESS` with `merge_result`
        (the merged pull request); a merge that failed answers Bitbucket's error object (400). A poll
        that cannot tell (the deadline, a 5xx, no answer) leaves the verdict to a fresh read of the
        pull request.
        """
        url = self._task_url(location) if location else None
        deadline = time.monotonic() + self._config.deadline
        delay = self._backoff
        failure: ProviderError | None = None
        while url is not None:
            try:
                response = self._send("GET", url, what)
            except ProviderError as exc:
                failure = exc
                break
            data = _json_or_empty(response)
            status = str(data.get("task_status") or "") if response.status_code == 200 else ""
            if status == "SUCCESS":
                return
            if status != "PENDING":
                if response.status_code in (200, 400, 405, 409):
                    failure = self._merge_failure(pr, what, response, None, task_status=status)
                else:
                    failure = self._failure(what, response)
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                failure = ProviderError(
                    f"{what}: Bitbucket Cloud was still merging after {self._config.deadline:g}s; check "
                    f"pull request #{pr.number} in the web UI before running again"
                )
                break
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, _POLL_CAP)
        current = self._merged_meanwhile(pr, what)
        if current is True:
            return
        if failure is None:
            failure = ProviderError(
                f"{what}: Bitbucket Cloud accepted the merge (202) without a task-status link, and pull "
                f"request #{pr.number} is not merged yet; check it in the web UI"
            )
        elif isinstance(current, dict) and current and failure.args and "refused to merge" in str(failure):
            allowed = _allowed_note(current)
            if allowed:
                failure = ProviderError(f"{failure}{allowed}")
        raise failure

    def _task_url(self, location: str) -> str:
        """The task-status URL at this adapter's API base, so that an -api-endpoint sees the polls too."""
        marker = location.find("/repositories/")
        if marker < 0:
            return location
        return self._base + location[marker:]

    # -- helpers ------------------------------------------------------------------------------

    def _pull_url(self, number: int) -> str:
        return f"{self._pulls_url}/{number}"

    def _pull(self, data: dict[str, Any]) -> PullRequest:
        number = int(data["id"])
        html = ((data.get("links") or {}).get("html") or {}).get("href")
        return PullRequest(
            number=number,
            url=html or f"https://bitbucket.org/{self._repo}/pull-requests/{number}",
            title=str(data.get("title") or ""),
            body=str(data.get("description") or ""),
            handle=data,
        )

    def _from_this_repository(self, pull: dict[str, Any]) -> bool:
        source = ((pull.get("source") or {}).get("repository") or {}).get("full_name")
        return source is None or str(source).lower() == self._repo.lower()

    def _reviewers(self, names: tuple[str, ...]) -> list[dict[str, str]]:
        """Reviewers Bitbucket can resolve: `{uuid}` or an Atlassian account id.

        Usernames and emails cannot be looked up through the API any more (Atlassian's GDPR changes),
        so they are reported and skipped rather than sent to fail the whole request.
        """
        refs: list[dict[str, str]] = []
        for name in names:
            name = name.strip()
            if match := _UUID.match(name):
                refs.append({"uuid": "{" + match[1].lower() + "}"})
            elif _ACCOUNT_ID.match(name):
                refs.append({"account_id": name})
            elif name:
                self._config.warn(
                    f"Bitbucket Cloud reviewer {name!r} cannot be resolved: give the user's {{UUID}} or "
                    "Atlassian account id (usernames and emails are not accepted by the API); skipping it"
                )
        return refs

    def _send(
        self, method: str, url: str, what: str, *, body: Any = None, params: dict[str, Any] | None = None
    ) -> requests.Response:
        """One call through the SDK's request layer; the response whatever its status."""
        self._config.debug(f"{method} {url}")
        try:
            response: requests.Response = self._client.request(
                method, path=url, data=body, params=params, absolute=True, advanced_mode=True
            )
        except requests.RequestException as exc:
            message = http.transport_failure(
                "Bitbucket Cloud", self._base, what, exc, self._config.ca_bundle, self._log
            )
            raise ProviderError(message or f"{what}: {exc}") from None
        self._config.debug(f"{method} {url} -> {response.status_code}")
        return response

    def _call(
        self, method: str, url: str, what: str, *, body: Any = None, params: dict[str, Any] | None = None
    ) -> requests.Response:
        response = self._send(method, url, what, body=body, params=params)
        if 200 <= response.status_code < 300:
            return response
        raise self._failure(what, response)

    def _json(self, response: requests.Response) -> dict[str, Any]:
        data = _json_or_empty(response)
        if not data:
            raise ProviderError(
                f"Bitbucket Cloud at {self._base} answered {response.status_code} without a JSON object; "
                "check -api-endpoint"
            )
        return data

    def _failure(self, what: str, response: requests.Response) -> ProviderError:
        status = response.status_code
        message = _error_message(response)
        source = self._config.credential.source if self._config.credential else "(none)"
        if status == 401:
            return ProviderError(f"{what}: {self._unauthorized(source, message)}")
        if status == 403:
            required = _required_scopes(response)
            if self._auth == "api-token":
                scopes = ", ".join(required) if required else "write:pullrequest:bitbucket"
                return ProviderError(
                    f"{what}: the API token from {source} may not do this on {self._repo} (403: {message}): "
                    f"make a token with the scope {scopes} (this tool needs read:repository:bitbucket, "
                    "write:repository:bitbucket, read:pullrequest:bitbucket and write:pullrequest:bitbucket) "
                    "for an account with write access to the repository"
                )
            scopes = ", ".join(required) if required else "pullrequest:write"
            return ProviderError(
                f"{what}: the credential from {source} may not do this on {self._repo} (403: {message}): "
                f"give it the scope {scopes} (pullrequest:write covers everything this tool does, merging "
                "included) and access to the repository"
            )
        if status == 404:
            return ProviderError(
                f"{what}: Bitbucket Cloud found no {self._repo} at {self._base} (404: {message}): check the "
                "workspace and repo slug in the origin URL (or -api-endpoint), and that the credential from "
                f"{source} can see the repository"
            )
        if status in _TRANSIENT or status >= 500:
            # Worded from what the retry policy actually did with this request (http.CallLog).
            worded = http.status_failure(
                "Bitbucket Cloud", self._base, _infinitive(what), status, response.reason or "", self._log
            )
            if worded:
                return ProviderError(worded)
        return ProviderError(f"{what}: Bitbucket Cloud answered {status}: {message}")

    def _unauthorized(self, source: str, message: str) -> str:
        """Why a 401, by the kind of credential that was sent."""
        if self._auth == "api-token":
            return (
                f"Bitbucket Cloud rejected the Atlassian API token from {source} with the e-mail "
                f"{self._user!r} (401: {message}): the REST API needs the Atlassian account's e-mail "
                "(BITBUCKET_EMAIL), not the Bitbucket username, and a token that is not expired or revoked, "
                'made with "Create API token with scopes" for Bitbucket'
            )
        if self._auth == "app-password":
            return (
                f"Bitbucket Cloud rejected the credential from {source}, sent as an app password for "
                f"{self._user!r} (401): Atlassian removed app passwords on {APP_PASSWORDS_REMOVED}; "
                f"{_USE_API_TOKEN} (if it already is an API token, only BITBUCKET_EMAIL is missing)"
            )
        return (
            f"Bitbucket Cloud rejected the access token from {source} (401: {message}): use a workspace, "
            "project or repository access token that is not expired or revoked (for git its username is "
            "x-token-auth); an Atlassian API token is not sent as Bearer: give it with BITBUCKET_EMAIL "
            "and BITBUCKET_API_TOKEN"
        )

    def _merge_failure(
        self,
        pr: PullRequest,
        what: str,
        response: requests.Response,
        current: dict[str, Any] | None,
        *,
        task_status: str = "",
    ) -> ProviderError:
        status = response.status_code
        state = str((current or {}).get("state") or "")
        if state in ("DECLINED", "SUPERSEDED"):
            return ProviderError(
                f"Bitbucket Cloud cannot merge pull request #{pr.number}: it is {state.lower()} (someone "
                "closed it meanwhile); run again to open a new one"
            )
        if status in (400, 405, 409) or (status == 200 and _json_or_empty(response).get("type") == "error"):
            return ProviderError(
                f"Bitbucket Cloud refused to merge pull request #{pr.number}: "
                f"{_error_message(response).rstrip('. ')}; "
                "check its merge checks (approvals, unresolved tasks, builds, conflicts) and the merge "
                f"strategies the branch allows{_allowed_note(current or {})}"
            )
        if status == 200:
            return ProviderError(
                f"{what}: Bitbucket Cloud reported merge task status {task_status or '(none)'}; "
                f"check pull request #{pr.number} in the web UI"
            )
        if status == 555:
            return ProviderError(
                f"{what}: Bitbucket Cloud timed out merging (555), and pull request #{pr.number} is not "
                "merged; merge it in the web UI or run again later"
            )
        return self._failure(what, response)


_VERBS = {"reading": "read", "listing": "list", "opening": "open", "updating": "update", "merging": "merge"}


def _infinitive(what: str) -> str:
    """'listing open pull requests' -> 'list open pull requests', for "... trying to <action>"."""
    first, _, rest = what.partition(" ")
    return f"{_VERBS.get(first, first)} {rest}".strip()


def _merge_settings(pull: dict[str, Any]) -> tuple[list[str] | None, str | None, str]:
    """(allowed strategies or None if the payload does not say, the default, the branch's name)."""
    branch = ((pull.get("destination") or {}).get("branch")) or {}
    name = str(branch.get("name") or "the destination branch")
    allowed = branch.get("merge_strategies")
    default = branch.get("default_merge_strategy")
    if not isinstance(allowed, list):
        return None, None, name
    return [str(item) for item in allowed], str(default) if default else None, name


def _allowed_note(pull: dict[str, Any]) -> str:
    allowed, default, name = _merge_settings(pull)
    if allowed is None:
        return ""
    usual = f", default {default}" if default else ""
    return f" ({name} allows {', '.join(allowed) or 'none'}{usual})"


def _quote(value: str) -> str:
    """A string literal of Bitbucket's filter language (BBQL): double quotes, backslash escapes."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _branch(pull: dict[str, Any], side: str) -> str | None:
    name = ((pull.get(side) or {}).get("branch") or {}).get("name")
    return str(name) if name is not None else None


def _reviewer_ref(account: dict[str, Any]) -> dict[str, str] | None:
    if account.get("uuid"):
        return {"uuid": str(account["uuid"])}
    if account.get("account_id"):
        return {"account_id": str(account["account_id"])}
    return None


def _json_or_empty(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _error_message(response: requests.Response) -> str:
    """Bitbucket's `{"type": "error", "error": {"message": ..., "detail": ...}}`, on one line."""
    error = _json_or_empty(response).get("error")
    text = ""
    if isinstance(error, dict):
        text = str(error.get("message") or "")
        detail = error.get("detail")
        if isinstance(detail, str) and detail and detail not in text:
            text = f"{text} ({detail})" if text else detail
    content_type = response.headers.get("Content-Type", "")
    if not text and content_type.startswith("text/plain") and response.text.strip():
        # What the service answers a failed Basic login: "Login failed due to incorrect login
        # credentials or method." and a link, in plain text. Its first line is the reason.
        text = response.text.strip().splitlines()[0]
    if not text:
        text = f"{response.status_code} {response.reason or ''}".strip()
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def _required_scopes(response: requests.Response) -> list[str]:
    # The service sends detail as an object here: {"required": [...], "granted": [...]}.
    error = _json_or_empty(response).get("error")
    detail = error.get("detail") if isinstance(error, dict) else None
    required = detail.get("required") if isinstance(detail, dict) else None
    return [str(scope) for scope in required] if isinstance(required, list) else []


def _is_reviewer_error(response: requests.Response) -> bool:
    error = _json_or_empty(response).get("error")
    if not isinstance(error, dict):
        return False
    fields = error.get("fields")
    return (isinstance(fields, dict) and "reviewers" in fields) or str(error.get("message", "")).startswith(
        "reviewers"
    )
