"""Bitbucket Cloud adapter: atlassian-python-api's `Cloud` client with explicit REST 2.0 paths.

The SDK's object model costs requests the tool does not need (`pullrequests.each()` fetches every
listed pull request a second time, `repositories.get()` is required before `pullrequests.create()`),
so the adapter uses the client for auth, session and JSON and calls its request layer with explicit
paths. Requests per operation: default branch 1; find 1 per page of 50; create 1; update 2 (a GET,
because a PUT without the reviewers takes them off the pull request, then the PUT); merge 1, plus
polls of the task-status link when Bitbucket answers 202 for a long merge.

Retries (429 with Retry-After, 5xx, connection errors) happen below, in the shared urllib3 policy of
`providers.http`, bounded by `config.deadline`.
"""

from __future__ import annotations

import re
import time
from typing import Any

import requests

from providers import http
from providers.base import MergeMethod, ProviderConfig, PullRequest, PullRequestSpec
from updater.errors import ProviderError
from updater.remote import Origin

NAME = "bitbucket-cloud"
DEFAULT_API = "https://api.bitbucket.org/2.0"
PAGELEN = 50  # the largest page Bitbucket serves for pull requests: one request in practice
MERGE_STRATEGIES: dict[str, str] = {"merge": "merge_commit", "squash": "squash", "rebase": "fast_forward"}
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


def auth_kwargs(config: ProviderConfig) -> dict[str, str]:
    """Basic auth for an app password (with the account username), Bearer for an access token.

    A credential of unknown kind (git's credential store, UPDATE_GITOPS_REPO_TOKEN) is an access token
    when it comes without a username or with x-token-auth, the git username of access tokens;
    with another username it is what Tekton writes for an app password: `https://user:app-password@...`.
    """
    credential = config.credential
    if credential is None:
        raise ProviderError(
            "no credential for Bitbucket Cloud: set BITBUCKET_USERNAME and BITBUCKET_APP_PASSWORD, "
            "or BITBUCKET_ACCESS_TOKEN (a workspace, project or repository access token)"
        )
    basic = credential.kind == "app-password" or (
        credential.kind != "access-token" and credential.username not in (None, "", "x-token-auth")
    )
    if basic:
        if not credential.username:
            raise ProviderError(
                f"the app password from {credential.source} needs the Bitbucket account username: "
                "set BITBUCKET_USERNAME"
            )
        return {"username": credential.username, "password": credential.secret}
    return {"token": credential.secret}


def connect(config: ProviderConfig) -> BitbucketCloud:
    # The SDK is imported here only, so that other providers never pay for it.
    from atlassian.bitbucket.cloud import Cloud as CloudClient

    # Partly typed SDK: the adapter only uses its request layer, through Any.
    cloud: Any = CloudClient

    auth = auth_kwargs(config)
    base = api_base(config.origin, config.api_endpoint)
    workspace, slug = repo_id(config.origin).split("/")
    # Small deadlines (tests, impatient pipelines) get a proportionally small back-off, so that
    # several retries fit in the budget; the default deadline keeps the shared 0.5 s.
    backoff = min(0.5, config.deadline / 20)
    # Cloud() appends "/2.0" to its url; every call below uses an absolute URL built from `base`.
    root = base[: -len("/2.0")] if base.endswith("/2.0") else base
    client: Any = cloud(
        url=root,
        session=http.session(config.deadline, backoff, config.ca_bundle),
        timeout=config.timeout,
        # The shared urllib3 policy retries; the SDK's own Retry-After sleep would overrun the deadline.
        backoff_and_retry=False,
        retry_with_header=False,
        **auth,
    )
    # AtlassianRestAPI truncates the timeout to int (0.5 s would become "no time at all").
    client.timeout = config.timeout
    return BitbucketCloud(config, client, base, workspace, slug, backoff, basic="username" in auth)


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
        basic: bool,
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
        self._basic = basic

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

    def merge(self, pr: PullRequest, method: MergeMethod) -> None:
        strategy = MERGE_STRATEGIES[method]
        what = f"merging pull request #{pr.number} ({strategy})"
        # A regular merge keeps the head branch (spec §2): say so rather than inherit the PR's flag.
        body = {"merge_strategy": strategy, "close_source_branch": False}
        response = self._send("POST", f"{self._pull_url(pr.number)}/merge", what, body=body)
        if response.status_code == 200:
            return
        if response.status_code == 202:
            location = response.headers.get("Location")
            if not location:
                raise ProviderError(
                    f"{what}: Bitbucket Cloud accepted the merge (202) without a task-status link; "
                    f"check pull request #{pr.number} in the web UI"
                )
            self._wait_for_merge(pr, location, what)
            return
        raise self._merge_failure(pr, what, response)

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

    def _wait_for_merge(self, pr: PullRequest, location: str, what: str) -> None:
        """Poll the task-status link of a long merge until it finishes or the deadline passes."""
        deadline = time.monotonic() + self._config.deadline
        delay = self._backoff
        while True:
            response = self._send("GET", location, what)
            data = _json_or_empty(response)
            if response.status_code != 200 or data.get("type") == "error":
                raise self._merge_failure(pr, what, response)
            status = str(data.get("task_status") or "")
            if status == "SUCCESS":
                return
            if status != "PENDING":
                raise ProviderError(
                    f"{what}: Bitbucket Cloud reported merge task status {status or '(none)'}; "
                    f"check pull request #{pr.number} in the web UI"
                )
            if time.monotonic() + delay > deadline:
                raise ProviderError(
                    f"{what}: Bitbucket Cloud was still merging after {self._config.deadline:g}s; "
                    f"check pull request #{pr.number} in the web UI before running again"
                )
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

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
            message = http.transport_failure("Bitbucket Cloud", self._base, what, exc, self._config.ca_bundle)
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
            if self._basic:
                username = self._config.credential.username if self._config.credential else ""
                hint = (
                    f"{username!r} looks like an email address: app passwords need the Bitbucket username"
                    if username and "@" in username
                    else "use the Bitbucket account username (not the email) and an app password that is "
                    "not revoked"
                )
                return ProviderError(
                    f"{what}: Bitbucket Cloud rejected the app password from {source} (401): {hint}"
                )
            return ProviderError(
                f"{what}: Bitbucket Cloud rejected the access token from {source} (401): use a workspace, "
                "project or repository access token that is not expired or revoked (for git its username "
                "is x-token-auth); an app password also needs BITBUCKET_USERNAME"
            )
        if status == 403:
            required = _required_scopes(response)
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
        if status in _TRANSIENT:
            answer = f"{status} {response.reason or ''}".strip()
            if status == 500 and response.request.method == "POST":
                # Not retried: the server may have applied it before failing.
                return ProviderError(
                    f"{what}: Bitbucket Cloud answered {answer}; check the repository's pull requests, "
                    "then run again"
                )
            retry_after = response.headers.get("Retry-After")
            asked = f", asking to wait {retry_after}s" if retry_after else ""
            return ProviderError(
                f"{what}: Bitbucket Cloud kept answering {answer}{asked}, and retrying within the "
                f"{self._config.deadline:g}s deadline did not help; try again later"
            )
        return ProviderError(f"{what}: Bitbucket Cloud answered {status}: {message}")

    def _merge_failure(self, pr: PullRequest, what: str, response: requests.Response) -> ProviderError:
        status = response.status_code
        if status in (400, 405, 409) or (status == 200 and _json_or_empty(response).get("type") == "error"):
            return ProviderError(
                f"Bitbucket Cloud refused to merge pull request #{pr.number}: "
                f"{_error_message(response).rstrip('. ')}; "
                "check its merge checks (approvals, unresolved tasks, builds, conflicts) and the merge "
                "strategies the branch allows"
            )
        if status == 555:
            return ProviderError(
                f"{what}: Bitbucket Cloud timed out merging (555); check pull request #{pr.number} in the "
                "web UI and merge it there or run again later"
            )
        return self._failure(what, response)


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
