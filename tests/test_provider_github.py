"""The GitHub adapter: real PyGithub against a stateful fake GitHub on 127.0.0.1.

Every exchange each test causes is checked against GitHub's OpenAPI description (the committed slice)
when the test ends, so the fake cannot drift from the real API without failing the suite.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from providers import github as gh_provider
from providers.base import ProviderConfig, PullRequestSpec, open_or_reuse
from providers.github import api_base, connect, repo_id
from tests.conftest import provider_error, run_tool
from tests.fakes.github import FakeGitHub, Protection
from tests.fakes.openapi_check import Allow, Exchange, validate_exchanges
from tests.gitserver import DEFAULT_TOKEN, GitServer, clone, copy_fixture, make_home
from updater.values import Credential, parse_origin

SLICE = Path(__file__).parent / "openapi" / "github-slice.json"
TOKEN = "ghp_goodtoken1234567890"
REPO = "acme/gitops"
ORIGIN = "https://ghe.example.com/acme/gitops.git"
HELLO = "acme/hello-world-gitops.git"
IMAGE = (
    "your-dockerhub-user/hello-world@sha256:e34351c0bbe7658da1441a80398d230481b6465fb375739941f1a144e340c567"
)
REV = "1b39bd0a4cf0b0dd1f1e2f32cbe0c7d1e2d3f4a5"

# Statuses GitHub answers on every endpoint, which its description lists only for some operations.
GITHUB_ALLOW = (
    Allow(
        "*",
        ".*",
        r"(?i)unknown response http status: (401|403|404|429|5\d\d)\b",
        "401 (bad token), 403 (permissions, SSO, secondary rate limit), 404 (no access), 429 and 5xx can "
        "come from any endpoint; the description declares them per operation, incompletely",
        side="response",
    ),
    Allow(
        "*",
        ".*",
        r"(?i)unknown response http status: 0\b",
        "status 0 logs a request the fake never answered (stall_next with processed=False): the "
        "connection closed without a response, which no description lists",
        side="response",
    ),
)


# -- fixtures and helpers ----------------------------------------------------------------------------


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_token(TOKEN, login="ci-bot")
        fake.add_repo(
            REPO, default_branch="main", branches=["feature"], collaborators=["alice"], teams=["ops"]
        )
        yield fake
        problems = validate_exchanges(SLICE, fake.requests, allow=GITHUB_ALLOW)
        assert problems == [], "\n".join(problems)


def config(fake: FakeGitHub, token: str | None = TOKEN, **overrides: Any) -> ProviderConfig:
    settings: dict[str, Any] = {
        "origin": parse_origin(ORIGIN),
        "credential": Credential(token, None, "token", "GITHUB_TOKEN") if token else None,
        "api_endpoint": fake.api_url,
        "deadline": 2.0,
        "timeout": 5.0,
    }
    settings.update(overrides)
    return ProviderConfig(**settings)


def spec(**overrides: Any) -> PullRequestSpec:
    values: dict[str, Any] = {
        "head": "feature",
        "base": "main",
        "title": "Deploy 1b39bd0",
        "body": "Renders x",
    }
    values.update(overrides)
    return PullRequestSpec(**values)


def error_of(fn: Any, *args: Any) -> str:
    return provider_error(lambda: fn(*args), TOKEN, "wrong-token")


# -- endpoint and repository identity -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://github.com/acme/gitops.git", "https://api.github.com"),
        ("https://x-access-token:tok@github.com/acme/gitops", "https://api.github.com"),
        ("git@github.com:acme/gitops.git", "https://api.github.com"),
        ("ssh://git@github.com:22/acme/gitops.git", "https://api.github.com"),
        ("https://ghe.example.com/acme/gitops.git", "https://ghe.example.com/api/v3"),
        ("https://ghe.example.com:8443/acme/gitops.git", "https://ghe.example.com:8443/api/v3"),
        ("http://ghe.internal/acme/gitops", "http://ghe.internal/api/v3"),
        ("git@ghe.example.com:acme/gitops.git", "https://ghe.example.com/api/v3"),
        ("ssh://git@ghe.example.com:2222/acme/gitops.git", "https://ghe.example.com/api/v3"),
        # GitHub Enterprise Cloud with data residency: its own api. subdomain, no /api/v3.
        ("https://octocorp.ghe.com/acme/gitops.git", "https://api.octocorp.ghe.com"),
        ("git@octocorp.ghe.com:acme/gitops.git", "https://api.octocorp.ghe.com"),
        ("https://x-access-token:tok@OctoCorp.ghe.com/acme/gitops", "https://api.octocorp.ghe.com"),
    ],
)
def test_api_base_is_derived_from_the_origin(
    origin: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_SERVER_URL", raising=False)
    monkeypatch.delenv("GITHUB_API_URL", raising=False)
    assert api_base(parse_origin(origin)) == expected
    assert repo_id(parse_origin(origin)) == "acme/gitops"


def test_api_endpoint_override_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_API_URL", "https://api.github.com")
    origin = parse_origin("https://github.com/acme/gitops.git")
    assert (
        api_base(origin, "https://proxy.example.com/github/api/v3/")
        == "https://proxy.example.com/github/api/v3"
    )


def test_github_actions_api_url_is_used_for_its_own_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://ghe.example.com")
    monkeypatch.setenv("GITHUB_API_URL", "https://ghe-api.example.com/v3")
    assert api_base(parse_origin("git@ghe.example.com:acme/gitops.git")) == "https://ghe-api.example.com/v3"
    # A workflow on one server pushing to another must not send its API calls to the first.
    assert (
        api_base(parse_origin("https://other.example.com/acme/gitops")) == "https://other.example.com/api/v3"
    )


def test_origin_that_is_not_owner_repo_is_refused() -> None:
    message = error_of(repo_id, parse_origin("https://ghe.example.com/acme/sub/gitops.git"))
    assert "acme/sub/gitops" in message and "owner/repo" in message


def test_local_origin_needs_an_api_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_SERVER_URL", raising=False)
    origin = parse_origin("file:///srv/mirrors/acme/gitops.git")
    assert "-api-endpoint" in error_of(api_base, origin)
    assert repo_id(origin) == "acme/gitops"


def test_missing_token_names_where_tokens_are_read(gh: FakeGitHub) -> None:
    message = error_of(connect, config(gh, token=None))
    for source in ("GITHUB_TOKEN", "UPDATE_GITOPS_REPO_TOKEN", "~/.git-credentials"):
        assert source in message
    assert gh.requests == []


# -- the normal flow, with API-call counts ----------------------------------------------------------------


def test_connect_spends_no_request_and_default_branch_one(gh: FakeGitHub) -> None:
    gh.repos[REPO].default_branch = "trunk"
    gh.add_branch(REPO, "trunk")
    adapter = connect(config(gh))
    assert gh.requests == []
    assert adapter.default_branch() == "trunk"
    assert [str(e) for e in gh.requests] == ["GET /repos/acme/gitops -> 200"]
    assert gh.requests[0].request_headers["Authorization"] == "token ***"


def test_new_pull_request_costs_two_requests(gh: FakeGitHub) -> None:
    adapter = connect(config(gh))
    outcome = open_or_reuse(adapter, spec())
    assert outcome.operation == "created"
    assert [(e.method, e.path, e.status) for e in gh.requests] == [
        ("GET", "/repos/acme/gitops/pulls", 200),
        ("POST", "/repos/acme/gitops/pulls", 201),
    ]
    assert "head=acme%3Afeature" in gh.requests[0].query and "base=main" in gh.requests[0].query
    (pull,) = gh.pulls(REPO)
    assert (pull.head, pull.base, pull.title, pull.body, pull.draft) == (
        "feature",
        "main",
        "Deploy 1b39bd0",
        "Renders x",
        False,
    )
    # The web URL a human opens, as GitHub reported it.
    assert outcome.pr.url == f"{gh.web_url}/acme/gitops/pull/{pull.number}"
    assert outcome.pr.number == pull.number


def test_rerun_reuses_the_open_pull_request_with_one_request(gh: FakeGitHub) -> None:
    adapter = connect(config(gh))
    first = open_or_reuse(adapter, spec())
    gh.requests.clear()
    again = open_or_reuse(connect(config(gh)), spec())
    assert again.operation == "reused"
    assert again.pr.url == first.pr.url
    assert [e.method for e in gh.requests] == ["GET"]
    assert len(gh.pulls(REPO)) == 1


def test_changed_title_or_body_updates_the_open_pull_request(gh: FakeGitHub) -> None:
    adapter = connect(config(gh))
    open_or_reuse(adapter, spec())
    gh.requests.clear()
    outcome = open_or_reuse(adapter, spec(title="Deploy 2c4", body="Renders y"))
    assert outcome.operation == "updated"
    assert (outcome.pr.title, outcome.pr.body) == ("Deploy 2c4", "Renders y")
    assert [(e.method, e.status) for e in gh.requests] == [("GET", 200), ("PATCH", 200)]
    assert gh.requests[1].request_json == {"title": "Deploy 2c4", "body": "Renders y"}
    (pull,) = gh.pulls(REPO)
    assert (pull.title, pull.body) == ("Deploy 2c4", "Renders y")


def test_closed_or_other_branch_pull_requests_are_not_reused(gh: FakeGitHub) -> None:
    gh.add_branch(REPO, "other")
    gh.add_branch(REPO, "release")
    gh.add_pull(REPO, "feature", "main", state="closed")
    gh.add_pull(REPO, "feature", "main", merged=True)
    gh.add_pull(REPO, "other", "main")
    gh.add_pull(REPO, "feature", "release")
    adapter = connect(config(gh))
    assert adapter.find_open("feature", "main") is None
    outcome = open_or_reuse(adapter, spec())
    assert outcome.operation == "created"
    assert outcome.pr.number == 5


def test_create_that_loses_a_race_returns_the_pull_request_that_won(gh: FakeGitHub) -> None:
    existing = gh.add_pull(REPO, "feature", "main", title="opened by a concurrent run")
    pr = connect(config(gh)).create(spec())
    assert pr.number == existing.number
    assert [(e.method, e.status) for e in gh.requests] == [("POST", 422), ("GET", 200)]
    assert "A pull request already exists" in gh.requests[0].response_body.decode()
    assert len(gh.pulls(REPO)) == 1


def test_nothing_to_merge_is_reported_in_githubs_words(gh: FakeGitHub) -> None:
    gh.add_branch(REPO, "same", sha=gh.repos[REPO].branches["main"])
    message = error_of(connect(config(gh)).create, spec(head="same"))
    assert "No commits between main and same" in message


def test_missing_head_branch_is_a_validation_error(gh: FakeGitHub) -> None:
    message = error_of(connect(config(gh)).create, spec(head="never-pushed"))
    assert "422" in message and "head" in message and "invalid" in message


# -- labels, reviewers, draft ------------------------------------------------------------------------------


def test_labels_reviewers_and_draft_are_applied(gh: FakeGitHub) -> None:
    warnings: list[str] = []
    adapter = connect(config(gh, warn=warnings.append))
    pr = adapter.create(spec(labels=("gitops", "auto"), reviewers=("alice", "acme/ops"), draft=True))
    (pull,) = gh.pulls(REPO)
    assert pull.draft and pull.labels == ["gitops", "auto"]
    assert (pull.reviewers, pull.team_reviewers) == (["alice"], ["ops"])
    assert warnings == []
    assert [(e.method, e.path) for e in gh.requests] == [
        ("POST", "/repos/acme/gitops/pulls"),
        ("POST", f"/repos/acme/gitops/issues/{pr.number}/labels"),
        ("POST", f"/repos/acme/gitops/pulls/{pr.number}/requested_reviewers"),
    ]
    assert gh.requests[0].request_json["draft"] is True
    assert gh.requests[1].request_json == {"labels": ["gitops", "auto"]}
    assert gh.requests[2].request_json == {"reviewers": ["alice"], "team_reviewers": ["ops"]}


def test_no_labels_or_reviewers_means_no_extra_requests(gh: FakeGitHub) -> None:
    connect(config(gh)).create(spec())
    assert [e.method for e in gh.requests] == ["POST"]
    assert "draft" not in gh.requests[0].request_json


def test_reviewer_who_is_not_a_collaborator_warns_and_keeps_the_pull_request(gh: FakeGitHub) -> None:
    warnings: list[str] = []
    pr = connect(config(gh, warn=warnings.append)).create(spec(reviewers=("mallory",), labels=("gitops",)))
    assert gh.pulls(REPO)[0].labels == ["gitops"]
    (warning,) = warnings
    assert "mallory" in warning and "Reviews may only be requested from collaborators" in warning
    assert pr.number == 1


def test_label_failure_warns_and_keeps_the_pull_request(gh: FakeGitHub) -> None:
    warnings: list[str] = []
    gh.fail_next(500, method="POST", path="/labels$")
    pr = connect(config(gh, warn=warnings.append)).create(spec(labels=("gitops",)))
    assert pr.number == 1 and gh.pulls(REPO)[0].labels == []
    (warning,) = warnings
    assert "could not add labels gitops" in warning and "500" in warning


def test_draft_not_supported_opens_a_regular_pull_request_with_a_warning(gh: FakeGitHub) -> None:
    gh.repos[REPO].drafts_supported = False
    warnings: list[str] = []
    connect(config(gh, warn=warnings.append)).create(spec(draft=True))
    (pull,) = gh.pulls(REPO)
    assert not pull.draft
    assert len(warnings) == 1 and "Draft pull requests are not supported" in warnings[0]
    assert [e.status for e in gh.requests] == [422, 201]


# -- merging -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["merge", "squash", "rebase"])
def test_merge_with_each_method(gh: FakeGitHub, method: Any) -> None:
    adapter = connect(config(gh))
    pr = adapter.create(spec())
    adapter.merge(pr, method)
    (pull,) = gh.pulls(REPO)
    assert pull.merged and pull.state == "closed" and pull.merge_method == method
    assert gh.requests[-1].request_json == {"merge_method": method, "sha": pull.head_sha}
    assert len(gh.requests) == 2


@pytest.mark.parametrize(
    ("method", "setting", "text"),
    [
        ("merge", "allow_merge_commit", "Merge commits are not allowed on this repository"),
        ("squash", "allow_squash_merge", "Squash merges are not allowed on this repository"),
        ("rebase", "allow_rebase_merge", "Rebase merges are not allowed on this repository"),
    ],
)
def test_merge_method_the_repository_forbids_is_refused_clearly(
    gh: FakeGitHub, method: Any, setting: str, text: str
) -> None:
    setattr(gh.repos[REPO], setting, False)
    adapter = connect(config(gh))
    pr = adapter.create(spec())
    message = error_of(adapter.merge, pr, method)
    assert text in message and f"#{pr.number}" in message and "merge method the repository allows" in message
    assert not gh.pulls(REPO)[0].merged


@pytest.mark.parametrize(
    ("protection", "text"),
    [
        (Protection(required_approvals=1), "At least 1 approving review is required"),
        (Protection(required_approvals=2), "At least 2 approving reviews are required"),
        (Protection(required_checks=("ci/build",)), 'Required status check "ci/build" is expected'),
        (Protection(required_checks=("a", "b")), "2 of 2 required status checks are expected"),
    ],
)
def test_merge_blocked_by_branch_protection_says_what_is_missing(
    gh: FakeGitHub, protection: Protection, text: str
) -> None:
    gh.repos[REPO].protection["main"] = protection
    adapter = connect(config(gh))
    pr = adapter.create(spec())
    message = error_of(adapter.merge, pr, "merge")
    assert text in message and "protection" in message
    # The refusal, then (on this failure path only) the pull request read back: not merged.
    assert [(e.method, e.status) for e in gh.requests[-2:]] == [("PUT", 405), ("GET", 200)]


def test_merge_succeeds_once_protection_is_satisfied(gh: FakeGitHub) -> None:
    gh.repos[REPO].protection["main"] = Protection(required_approvals=1, required_checks=("ci",))
    adapter = connect(config(gh))
    pr = adapter.create(spec())
    gh.approve(REPO, pr.number)
    gh.pass_check(REPO, pr.number, "ci")
    adapter.merge(pr, "squash")
    assert gh.pulls(REPO)[0].merged


def test_head_pushed_by_someone_else_since_is_not_merged(gh: FakeGitHub) -> None:
    adapter = connect(config(gh))
    pr = adapter.create(spec())
    gh.add_branch(REPO, "feature", sha="f" * 40)  # another writer pushed to the branch
    message = error_of(adapter.merge, pr, "merge")
    assert [(e.method, e.status) for e in gh.requests[-2:]] == [("PUT", 409), ("GET", 200)]
    assert "Head branch was modified" in message and "rerun" in message
    assert not gh.pulls(REPO)[0].merged


def test_conflicting_pull_request_is_not_mergeable(gh: FakeGitHub) -> None:
    adapter = connect(config(gh))
    pr = adapter.create(spec())
    gh.pulls(REPO)[0].conflict = True
    message = error_of(adapter.merge, pr, "merge")
    assert "Pull Request is not mergeable" in message and "conflicts" in message


def test_draft_pull_request_cannot_be_merged(gh: FakeGitHub) -> None:
    adapter = connect(config(gh))
    pr = adapter.create(spec(draft=True))
    assert "ready for review" in error_of(adapter.merge, pr, "merge")


# -- authentication and authorisation -------------------------------------------------------------------


def test_bad_token_says_it_is_invalid_and_where_it_came_from(gh: FakeGitHub) -> None:
    adapter = connect(config(gh, token="wrong-token"))
    message = error_of(adapter.find_open, "feature", "main")
    assert "401" in message and "Bad credentials" in message and "GITHUB_TOKEN" in message
    assert "invalid, expired or revoked" in message
    assert gh.requests[0].status == 401 and gh.requests[0].response_json["message"] == "Bad credentials"


def test_bearer_authorization_is_accepted_by_the_fake(gh: FakeGitHub) -> None:
    import requests

    ok = requests.get(f"{gh.api_url}/repos/{REPO}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    bad = requests.get(f"{gh.api_url}/repos/{REPO}", headers={"Authorization": "Bearer nope"}, timeout=5)
    anonymous = requests.get(f"{gh.api_url}/repos/{REPO}", timeout=5)
    assert (ok.status_code, bad.status_code, anonymous.status_code) == (200, 401, 404)
    assert bad.json()["message"] == "Bad credentials" and "documentation_url" in bad.json()


def test_read_only_token_is_told_to_get_write_permission(gh: FakeGitHub) -> None:
    gh.add_token("ghp_readonly123", access="read")
    adapter = connect(config(gh, token="ghp_readonly123"))
    assert adapter.find_open("feature", "main") is None
    message = error_of(adapter.create, spec())
    assert "403" in message and "Resource not accessible by personal access token" in message
    assert "scope or permission" in message and "GITHUB_TOKEN" in message


def test_token_not_authorised_for_sso_says_so(gh: FakeGitHub) -> None:
    gh.add_token("ghp_sso1234567", sso=True)
    message = error_of(connect(config(gh, token="ghp_sso1234567")).default_branch)
    assert "single sign-on" in message and "GITHUB_TOKEN" in message


@pytest.mark.parametrize("case", ["unknown repository", "private repository the token cannot see"])
def test_not_found_names_the_repository_and_api_base(gh: FakeGitHub, case: str) -> None:
    if case == "unknown repository":
        origin = parse_origin("https://ghe.example.com/acme/missing.git")
        adapter = connect(config(gh, origin=origin))
        name = "acme/missing"
    else:
        gh.add_token("ghp_outsider123", access="none")
        adapter = connect(config(gh, token="ghp_outsider123"))
        name = REPO
    message = error_of(adapter.find_open, "feature", "main")
    assert (
        "404" in message and name in message and gh.api_url in message and "can see the repository" in message
    )


# -- rate limits, server errors, network -------------------------------------------------------------------


def test_429_is_retried_after_the_retry_after_wait(gh: FakeGitHub, sleeps: list[float]) -> None:
    gh.fail_next(429, retry_after=1, method="POST")
    pr = connect(config(gh, deadline=5.0)).create(spec())
    assert pr.number == 1
    assert [e.status for e in gh.requests] == [429, 201]
    assert sleeps == [1]


def test_secondary_rate_limit_403_is_retried_after_the_retry_after_wait(
    gh: FakeGitHub, sleeps: list[float]
) -> None:
    gh.fail_next(403, retry_after=3, method="POST")
    connect(config(gh, deadline=10.0)).create(spec())
    assert [e.status for e in gh.requests] == [403, 201]
    assert "secondary rate limit" in gh.requests[0].response_json["message"]
    assert sleeps == [3]


def test_rate_limit_longer_than_the_deadline_gives_up_without_waiting(
    gh: FakeGitHub, sleeps: list[float]
) -> None:
    gh.fail_next(403, retry_after=60, method="POST")
    message = error_of(connect(config(gh, deadline=2.0)).create, spec())
    assert "rate limit" in message and "rerun later" in message
    assert sleeps == [] and len(gh.requests) == 1


def test_secondary_rate_limit_without_retry_after_is_reported_not_retried(gh: FakeGitHub) -> None:
    gh.fail_next(403, method="GET")
    message = error_of(connect(config(gh)).find_open, "feature", "main")
    assert "rate limit" in message and len(gh.requests) == 1


def test_secondary_rate_limit_after_a_retried_502_counts_both_attempts(gh: FakeGitHub) -> None:
    gh.fail_next(502, method="GET")
    gh.fail_next(403, method="GET")
    message = error_of(connect(config(gh)).find_open, "feature", "main")
    assert "2 attempts (502, then 403); the last not retried, as GitHub gave no Retry-After" in message
    assert "sent once" not in message and len(gh.requests) == 2


def test_transient_server_errors_are_retried(gh: FakeGitHub) -> None:
    gh.fail_next(502)
    gh.fail_next(503)
    assert connect(config(gh)).default_branch() == "main"
    assert [e.status for e in gh.requests] == [502, 503, 200]


def test_server_errors_until_the_deadline_give_a_clear_error(gh: FakeGitHub) -> None:
    gh.fail_next(502, times=1000)
    started = time.monotonic()
    message = error_of(connect(config(gh, deadline=0.3)).find_open, "feature", "main")
    assert time.monotonic() - started < 2
    assert len(gh.requests) > 1
    assert f"{len(gh.requests)} attempts, each answered 502" in message
    assert "would end past the 0.3s retry deadline" in message and "rerun later" in message


def test_unreachable_api_says_which_endpoint(gh: FakeGitHub) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}/api/v3"
    message = error_of(connect(config(gh, api_endpoint=endpoint, deadline=0.2)).default_branch)
    assert f"cannot reach {endpoint}" in message and "connection refused" in message
    # 1 try + CONNECT_RETRIES, none of which connected.
    assert "no connection made; 4 attempts, none connected" in message


def test_post_answered_500_says_it_was_sent_once_and_not_retried(gh: FakeGitHub) -> None:
    gh.fail_next(500, method="POST")
    message = error_of(connect(config(gh)).create, spec())
    # Not resent; one look for the pull request in case the server opened it before failing.
    assert [(e.method, e.status) for e in gh.requests] == [("POST", 500), ("GET", 200)]
    assert "answered 500 Server Error trying to open the pull request" in message
    assert "sent once and not retried" in message and "may have carried the POST out" in message
    assert message.endswith("it did not: no pull request feature -> main is open; rerun")
    assert "retrying for up to" not in message


def test_post_answered_500_after_opening_the_pull_request_converges_on_it(gh: FakeGitHub) -> None:
    warnings: list[str] = []
    gh.fail_next(500, method="POST", processed=True)
    pr = connect(config(gh, warn=warnings.append)).create(spec())
    assert pr.number == gh.pulls(REPO)[0].number
    assert [(e.method, e.status) for e in gh.requests] == [("POST", 500), ("GET", 200)]
    assert len(warnings) == 1 and f"open after all: #{pr.number}" in warnings[0]


@pytest.mark.parametrize("status", [403, 429])
def test_primary_rate_limit_near_its_reset_is_waited_for(
    gh: FakeGitHub, sleeps: list[float], status: int
) -> None:
    gh.fail_next(status, reset_in=3, method="POST")
    pr = connect(config(gh, deadline=10.0)).create(spec())
    assert pr.number == 1
    limited = gh.requests[0]
    assert (limited.status, limited.response_headers["X-RateLimit-Remaining"]) == (status, "0")
    assert [e.status for e in gh.requests] == [status, 201]
    # Until the reset (whole epoch seconds), and a second more for clocks that differ.
    assert len(sleeps) == 1 and 3 <= sleeps[0] <= 5


@pytest.mark.parametrize("status", [403, 429])
def test_primary_rate_limit_far_from_its_reset_says_when_and_does_not_wait(
    gh: FakeGitHub, sleeps: list[float], status: int
) -> None:
    gh.fail_next(status, reset_in=3000, method="GET")
    message = error_of(connect(config(gh, deadline=2.0)).find_open, "feature", "main")
    reset = int(gh.requests[0].response_headers["X-RateLimit-Reset"])
    when = time.strftime("%H:%M:%S", time.gmtime(reset))
    assert "GitHub rate-limited the run" in message and "API rate limit exceeded" in message
    assert f"the limit resets at {when} UTC" in message and "past the 2s retry deadline" in message
    assert "not waiting" in message and f"rerun after {when} UTC" in message and "sent once" in message
    assert sleeps == [] and len(gh.requests) == 1


def test_read_timeout_says_the_server_accepted_and_did_not_answer(gh: FakeGitHub) -> None:
    gh.stall_next(2.0, times=2, method="GET")
    started = time.monotonic()
    message = error_of(connect(config(gh, timeout=0.2)).find_open, "feature", "main")
    assert time.monotonic() - started < 1.5
    assert "cannot reach" not in message
    assert f"{gh.api_url} accepted the request but did not answer in time" in message
    assert "list pull requests; 2 attempts, none answered in time" in message
    assert len(gh.requests) == 2


def test_post_that_timed_out_and_was_never_applied_is_reported_not_crashed(gh: FakeGitHub) -> None:
    gh.stall_next(2.0, times=2, method="POST", processed=False)
    message = error_of(connect(config(gh, timeout=0.2)).create, spec())
    assert "accepted the request but did not answer in time" in message
    assert "open the pull request; 2 attempts, none answered in time" in message
    assert gh.pulls(REPO) == []
    # Both tries, then one look for the pull request in case a try went through: none did.
    assert [e.method for e in gh.requests] == ["POST", "POST", "GET"]


def test_post_that_timed_out_but_went_through_converges_on_the_pull_request(gh: FakeGitHub) -> None:
    gh.stall_next(2.0, times=2, method="POST", processed=True)
    pr = connect(config(gh, timeout=0.2)).create(spec())
    (pull,) = gh.pulls(REPO)
    assert pr.number == pull.number
    # The first try opened it (its answer came too late); the second was refused as a duplicate.
    assert [(e.method, e.status) for e in gh.requests] == [("POST", 201), ("POST", 422), ("GET", 200)]


# -- a merge whose answer was lost ---------------------------------------------------------------------


def test_merge_that_went_through_but_was_answered_502_is_reported_merged(gh: FakeGitHub) -> None:
    warnings: list[str] = []
    adapter = connect(config(gh, warn=warnings.append))
    pr = adapter.create(spec())
    gh.requests.clear()
    gh.fail_next(502, method="PUT", path="/merge$", processed=True)
    adapter.merge(pr, "squash")
    (pull,) = gh.pulls(REPO)
    assert pull.merged and pull.merge_method == "squash"
    # Merged, answered 502 by the gateway; the resent merge: 405 not mergeable; the pull request: merged.
    assert [(e.method, e.status) for e in gh.requests] == [("PUT", 502), ("PUT", 405), ("GET", 200)]
    assert gh.requests[1].response_json["message"] == "Pull Request is not mergeable"
    assert gh.requests[2].response_json["merged"] is True
    assert len(warnings) == 1 and "is merged" in warnings[0]


def test_merge_whose_answers_never_came_but_went_through_is_reported_merged(gh: FakeGitHub) -> None:
    adapter = connect(config(gh, timeout=0.2, warn=lambda _m: None))
    pr = adapter.create(spec())
    gh.stall_next(2.0, times=2, method="PUT", path="/merge$", processed=True)
    adapter.merge(pr, "merge")
    assert gh.pulls(REPO)[0].merged
    assert [e.method for e in gh.requests[-3:]] == ["PUT", "PUT", "GET"]


def test_merge_that_kept_failing_and_did_not_go_through_says_what_was_tried(gh: FakeGitHub) -> None:
    adapter = connect(config(gh, deadline=0.3))
    pr = adapter.create(spec())
    gh.fail_next(503, times=1000, method="PUT")
    message = error_of(adapter.merge, pr, "merge")
    puts = gh.calls("PUT")
    assert f"answered 503 Service Unavailable trying to merge pull request #{pr.number}" in message
    assert f"{len(puts)} attempts, each answered 503" in message and "0.3s retry deadline" in message
    assert not gh.pulls(REPO)[0].merged and gh.requests[-1].method == "GET"


def test_merge_refusals_cost_no_extra_request_when_the_merge_succeeds(gh: FakeGitHub) -> None:
    adapter = connect(config(gh))
    pr = adapter.create(spec())
    gh.requests.clear()
    adapter.merge(pr, "merge")
    assert [(e.method, e.status) for e in gh.requests] == [("PUT", 200)]


# -- the fake itself ---------------------------------------------------------------------------------------


def test_fake_paginates_the_pull_list_with_link_headers(gh: FakeGitHub) -> None:
    for _ in range(5):
        gh.add_pull(REPO, "feature", "main")
    from github import Auth, Github

    client = Github(
        auth=Auth.Token(TOKEN),
        base_url=gh.api_url,
        per_page=2,
        retry=None,
        lazy=True,
        seconds_between_requests=0,
    )
    numbers = [p.number for p in client.get_repo(REPO).get_pulls(state="open")]
    assert numbers == [5, 4, 3, 2, 1]
    pages = gh.calls("GET", "/pulls$")
    assert len(pages) == 3
    assert (
        'rel="next"' in pages[0].response_headers["Link"]
        and 'rel="last"' in pages[0].response_headers["Link"]
    )
    assert "Link" in pages[2].response_headers and 'rel="next"' not in pages[2].response_headers["Link"]


def test_fake_acts_as_the_api_github_com_root() -> None:
    with FakeGitHub(prefix="") as root:
        root.add_token(TOKEN)
        root.add_repo(REPO, default_branch="develop")
        adapter = connect(config(root, api_endpoint=root.web_url))
        assert adapter.default_branch() == "develop"
        assert root.requests[0].path == "/repos/acme/gitops"
        assert validate_exchanges(SLICE, root.requests) == []


def test_fake_reads_branches_from_a_bare_repository(gh: FakeGitHub, tmp_path: Path) -> None:
    import subprocess

    bare, work = tmp_path / "gitops.git", tmp_path / "work"
    run = lambda *args: subprocess.run(args, check=True, capture_output=True)  # noqa: E731
    run("git", "init", "-q", "--bare", "-b", "main", str(bare))
    run("git", "clone", "-q", str(bare), str(work))
    env = ("-c", "user.name=t", "-c", "user.email=t@example.com")
    run("git", "-C", str(work), *env, "commit", "-q", "--allow-empty", "-m", "base")
    run("git", "-C", str(work), "push", "-q", "origin", "HEAD:main", "HEAD:same")
    run("git", "-C", str(work), *env, "commit", "-q", "--allow-empty", "-m", "change")
    run("git", "-C", str(work), "push", "-q", "origin", "HEAD:feature")
    gh.add_repo("acme/ondisk", git_dir=bare)
    adapter = connect(config(gh, origin=parse_origin("https://ghe.example.com/acme/ondisk.git")))
    assert "No commits between main and same" in error_of(adapter.create, spec(head="same"))
    assert "head" in error_of(adapter.create, spec(head="absent"))
    assert adapter.create(spec()).number == 1


def test_openapi_check_catches_a_response_missing_required_fields() -> None:
    broken = Exchange(
        "GET",
        "/repos/acme/gitops",
        status=200,
        response_headers={"Content-Type": "application/json"},
        response_body=b'{"id": 1, "name": "gitops"}',
    )
    unknown = Exchange("GET", "/repos/acme/gitops/no-such-endpoint", status=200)
    bad_request = Exchange(
        "POST",
        "/repos/acme/gitops/pulls",
        request_headers={"Content-Type": "application/json"},
        request_body=b'{"head": 1}',
        status=422,
        response_headers={"Content-Type": "application/json"},
        response_body=b'{"message": "Validation Failed", "documentation_url": "x"}',
    )
    problems = validate_exchanges(SLICE, [broken, unknown, bad_request], allow=GITHUB_ALLOW)
    assert len(problems) == 3, problems
    assert "'default_branch' is a required property" in problems[0]
    assert "no-such-endpoint" in problems[1]
    assert "request" in problems[2] and "'base' is a required property" in problems[2]


def test_module_does_not_import_pygithub_elsewhere() -> None:
    # PyGithub is imported only by the adapter module; the registry imports that module on demand.
    source = Path(gh_provider.__file__).read_text()
    assert "from github import" in source
    for other in Path(gh_provider.__file__).parent.parent.glob("updater/*.py"):
        assert "import github" not in other.read_text() and "from github" not in other.read_text()


# -- the CLI as a pipeline runs it: a subprocess against the real git server and this fake ------------------


def test_cli_opens_then_reuses_then_merges_a_pull_request_on_github_enterprise(
    git_server: GitServer, gh: FakeGitHub, tmp_path: Path
) -> None:
    url = git_server.create_repo(HELLO, copy_fixture("hello-world", tmp_path / "seed"))
    gh.add_token(DEFAULT_TOKEN, login="tekton-bot")
    # The fake reads branches from the very repository the git server pushes into.
    gh.add_repo("acme/hello-world-gitops", git_dir=git_server.root / HELLO, collaborators=["alice"])
    env = make_home(tmp_path, url, "tekton-bot", DEFAULT_TOKEN, style="tekton")
    args = [f"-git-revision={REV}", f"-substitute=imageName={IMAGE}", f"-api-endpoint={gh.api_url}"]

    first = run_tool([*args, "-labels=gitops"], clone(url, tmp_path / "one", detached=True, env=env), env)
    assert first.returncode == 0, first.stderr
    (pull,) = gh.pulls("acme/hello-world-gitops")
    assert first.stdout == f"{gh.web_url}/acme/hello-world-gitops/pull/{pull.number}\n"
    assert (pull.head, pull.base, pull.title) == (
        f"update-to-commit-{REV}",
        "main",
        f"update templates for commit {REV}",
    )
    assert pull.labels == ["gitops"]
    assert [e.method for e in gh.requests] == ["GET", "POST", "POST"]  # find, create, labels
    assert DEFAULT_TOKEN not in first.stderr

    gh.requests.clear()
    again = run_tool(
        [*args, "-merge-pull-request", "-merge-method=squash"],
        clone(url, tmp_path / "two", detached=True, env=env),
        env,
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout
    assert [e.method for e in gh.requests] == ["GET", "PUT"]  # reuse, merge
    assert pull.merged and pull.merge_method == "squash"


def test_cli_reports_a_refused_merge_in_one_line(
    git_server: GitServer, gh: FakeGitHub, tmp_path: Path
) -> None:
    url = git_server.create_repo(HELLO, copy_fixture("hello-world", tmp_path / "seed"))
    gh.add_token(DEFAULT_TOKEN)
    gh.add_repo(
        "acme/hello-world-gitops", git_dir=git_server.root / HELLO, protection={"main": Protection(1)}
    )
    env = make_home(tmp_path, url, "tekton-bot", DEFAULT_TOKEN, style="tekton")
    run = run_tool(
        [
            f"-git-revision={REV}",
            f"-substitute=imageName={IMAGE}",
            f"-api-endpoint={gh.api_url}",
            "-merge-pull-request",
        ],
        clone(url, tmp_path / "co", detached=True, env=env),
        env,
    )
    assert run.returncode == 1
    (line,) = run.error_lines
    assert "At least 1 approving review is required" in line and "protection" in line
    assert "Traceback" not in run.stderr
