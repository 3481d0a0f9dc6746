"""The Bitbucket Server / Data Center adapter: real atlassian-python-api against a stateful fake.

No machine-readable description of the Data Center REST API can be had here, so request shapes are
asserted explicitly against Atlassian's REST documentation (method, path under
[/context]/rest/api/1.0, query, Authorization header, JSON body), and the fake answers with the
statuses and error envelopes the real server sends.
"""

from __future__ import annotations

import base64
import json
import pathlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from atlassian import Bitbucket

from providers import bitbucket_server as bb_provider
from providers.base import ProviderConfig, PullRequestSpec, open_or_reuse
from providers.bitbucket_server import api_base, connect, repo_id
from tests.conftest import provider_error, run_tool
from tests.fakes.bitbucket_server import FakeBitbucketServer
from tests.fakes.openapi_check import Exchange
from tests.gitserver import DEFAULT_TOKEN, GitServer, clone, copy_fixture, make_home
from updater.values import Credential, parse_origin

TOKEN = "BBDC-goodtoken1234567890"
PASSWORD = "correct-horse-battery"
REPO = "/projects/PROJ/repos/gitops"
HEAD = "update-to-commit-1b39bd0"


# -- fixtures and helpers ----------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeBitbucketServer]:
    with FakeBitbucketServer(context="/bitbucket") as server:
        assert isinstance(server, FakeBitbucketServer)
        server.add_user("ci-bot", password=PASSWORD)
        server.add_token(TOKEN, "ci-bot")
        server.add_user("alice")
        server.add_repo("PROJ", "gitops", permissions={"ci-bot": "REPO_WRITE", "alice": "REPO_READ"})
        yield server


def config(
    fake: FakeBitbucketServer, token: str | None = TOKEN, username: str | None = None, **overrides: Any
) -> ProviderConfig:
    settings: dict[str, Any] = {
        # Clone URLs carry the key as the project's URL shows it: upper-case here, lower-case often.
        "origin": parse_origin(f"{fake.base_url}/scm/PROJ/gitops.git"),
        "credential": Credential(token, username, "token", "BITBUCKET_SERVER_TOKEN") if token else None,
        "deadline": 2.0,
        "timeout": 5.0,
    }
    settings.update(overrides)
    return ProviderConfig(**settings)


def spec(**overrides: Any) -> PullRequestSpec:
    values: dict[str, Any] = {
        "head": HEAD,
        "base": "main",
        "title": "Deploy 1b39bd0",
        "body": "Rendered app.yaml",
    }
    values.update(overrides)
    return PullRequestSpec(**values)


def error_of(fn: Any, *args: Any) -> str:
    return provider_error(lambda: fn(*args), TOKEN, PASSWORD)


def body(exchange: Exchange) -> Any:
    return json.loads(exchange.request_body) if exchange.request_body else None


def ref(branch: str) -> dict[str, Any]:
    return {"id": f"refs/heads/{branch}", "repository": {"slug": "gitops", "project": {"key": "PROJ"}}}


# -- endpoint and repository identity -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://bitbucket.example.com/scm/PROJ/gitops.git", "https://bitbucket.example.com/rest/api/1.0"),
        (
            "https://ci:tok@bitbucket.example.com/scm/proj/gitops.git",
            "https://bitbucket.example.com/rest/api/1.0",
        ),
        (
            "https://git.example.com:8443/bitbucket/scm/PROJ/gitops.git",
            "https://git.example.com:8443/bitbucket/rest/api/1.0",
        ),
        (
            "https://git.example.com/tools/bitbucket/scm/PROJ/gitops.git",
            "https://git.example.com/tools/bitbucket/rest/api/1.0",
        ),
        ("http://bitbucket.local:7990/scm/~alice/gitops.git", "http://bitbucket.local:7990/rest/api/1.0"),
        (
            "ssh://git@bitbucket.example.com:7999/PROJ/gitops.git",
            "https://bitbucket.example.com/rest/api/1.0",
        ),
        ("git@bitbucket.example.com:PROJ/gitops.git", "https://bitbucket.example.com/rest/api/1.0"),
    ],
)
def test_api_base_is_derived_from_the_clone_url(origin: str, expected: str) -> None:
    assert api_base(parse_origin(origin)) == expected


def test_api_endpoint_override_wins() -> None:
    origin = parse_origin("ssh://git@bitbucket.example.com:7999/PROJ/gitops.git")
    assert api_base(origin, "https://bitbucket.example.com/ctx/rest/api/1.0/") == (
        "https://bitbucket.example.com/ctx/rest/api/1.0"
    )


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://bitbucket.example.com/scm/PROJ/gitops.git", ("PROJ", "gitops")),
        ("https://bitbucket.example.com/ctx/scm/proj/gitops.git", ("proj", "gitops")),
        ("https://bitbucket.example.com/scm/~alice/gitops.git", ("~alice", "gitops")),
        ("ssh://git@bitbucket.example.com:7999/~alice/gitops.git", ("~alice", "gitops")),
        ("git@bitbucket.example.com:PROJ/gitops.git", ("PROJ", "gitops")),
    ],
)
def test_repository_is_project_key_and_slug(origin: str, expected: tuple[str, str]) -> None:
    assert repo_id(parse_origin(origin)) == expected


@pytest.mark.parametrize(
    "origin", ["https://bitbucket.example.com/gitops.git", "https://h.example.com/a/b/c.git"]
)
def test_origin_that_is_not_a_clone_url_is_refused(origin: str) -> None:
    assert "scm/PROJ/repo.git" in error_of(repo_id, parse_origin(origin))


def test_local_origin_needs_an_api_endpoint() -> None:
    assert "-api-endpoint" in error_of(api_base, parse_origin("/srv/git/PROJ/gitops.git"))


def test_missing_credentials_say_where_they_are_read(fake: FakeBitbucketServer) -> None:
    message = error_of(connect, config(fake, token=None))
    assert "BITBUCKET_SERVER_TOKEN" in message and "username" in message.lower()


# -- request counts and shapes ---------------------------------------------------------------------------


def test_connect_spends_no_request_and_default_branch_one(fake: FakeBitbucketServer) -> None:
    adapter = connect(config(fake))
    assert fake.requests == []
    assert adapter.default_branch() == "main"
    [call] = fake.requests
    assert (call.method, call.path, call.query) == ("GET", f"{REPO}/branches/default", "")
    assert call.request_headers["authorization"] == f"Bearer {TOKEN}"
    assert call.request_headers["accept"] == "application/json"


def test_empty_repository_has_no_default_branch(fake: FakeBitbucketServer) -> None:
    fake.add_repo("PROJ", "empty", default_branch=None, permissions={"ci-bot": "REPO_WRITE"})
    origin = parse_origin(f"{fake.base_url}/scm/PROJ/empty.git")
    assert "-base-branch" in error_of(connect(config(fake, origin=origin)).default_branch)


def test_new_pull_request_costs_two_requests_of_the_documented_shape(fake: FakeBitbucketServer) -> None:
    outcome = open_or_reuse(connect(config(fake)), spec())
    assert outcome.operation == "created"
    find, create = fake.requests
    assert (find.method, find.path) == ("GET", f"{REPO}/pull-requests")
    assert find.query == f"state=OPEN&direction=OUTGOING&at=refs%2Fheads%2F{HEAD}"
    assert (create.method, create.path, create.status) == ("POST", f"{REPO}/pull-requests", 201)
    assert create.request_headers["content-type"] == "application/json"
    assert body(create) == {
        "title": "Deploy 1b39bd0",
        "description": "Rendered app.yaml",
        "fromRef": ref(HEAD),
        "toRef": ref("main"),
        "reviewers": [],
    }
    pull = fake.pull("PROJ", "gitops", 1)
    assert (pull["state"], pull["fromRef"]["id"], pull["toRef"]["id"]) == (
        "OPEN",
        f"refs/heads/{HEAD}",
        "refs/heads/main",
    )
    assert outcome.pr.number == 1
    assert outcome.pr.url == f"{fake.base_url}/projects/PROJ/repos/gitops/pull-requests/1"
    assert (outcome.pr.title, outcome.pr.body) == ("Deploy 1b39bd0", "Rendered app.yaml")


def test_rerun_reuses_the_open_pull_request_with_one_request(fake: FakeBitbucketServer) -> None:
    first = open_or_reuse(connect(config(fake)), spec())
    fake.requests.clear()
    second = open_or_reuse(connect(config(fake)), spec())
    assert second.operation == "reused" and second.pr.number == first.pr.number
    assert len(fake.requests) == 1 and len(fake.pulls) == 1


def test_changed_title_updates_with_the_version_and_keeps_the_reviewers(fake: FakeBitbucketServer) -> None:
    open_or_reuse(connect(config(fake)), spec(reviewers=("alice",)))
    fake.requests.clear()
    outcome = open_or_reuse(connect(config(fake)), spec(title="Deploy 2c4e", body="new"))
    assert outcome.operation == "updated"
    _, put = fake.requests
    assert (put.method, put.path) == ("PUT", f"{REPO}/pull-requests/1")
    assert body(put) == {
        "version": 0,
        "title": "Deploy 2c4e",
        "description": "new",
        "reviewers": [{"user": {"name": "alice"}}],
    }
    pull = fake.pull("PROJ", "gitops", 1)
    assert (pull["title"], pull["version"], pull["_reviewers"]) == ("Deploy 2c4e", 1, ["alice"])
    assert outcome.pr.title == "Deploy 2c4e"


def test_update_of_a_pull_request_changed_meanwhile_is_applied_to_the_current_version(
    fake: FakeBitbucketServer,
) -> None:
    adapter = connect(config(fake))
    pr = adapter.create(spec())
    fake.pull("PROJ", "gitops", 1)["version"] = 4  # someone edited it in the UI
    fake.requests.clear()
    updated = adapter.update(pr, "Deploy 2c4e", "new")
    assert [(e.method, e.status) for e in fake.requests] == [("PUT", 409), ("PUT", 200)]
    assert body(fake.requests[1])["version"] == 4
    assert updated.title == "Deploy 2c4e"


def test_open_pull_requests_of_the_head_are_paged_through(fake: FakeBitbucketServer) -> None:
    # One open PR per target; the one into main is the oldest, so it is on the second page.
    fake.add_pull("PROJ", "gitops", HEAD, "main", "into main", author="alice")
    for n in range(30):
        fake.add_pull("PROJ", "gitops", HEAD, f"release-{n}", f"into release-{n}", author="alice")
    found = connect(config(fake)).find_open(HEAD, "main")
    assert found is not None and found.number == 1
    first, second = fake.requests
    assert json.loads(first.response_body)["isLastPage"] is False
    assert first.query == f"state=OPEN&direction=OUTGOING&at=refs%2Fheads%2F{HEAD}"
    assert second.query == f"state=OPEN&direction=OUTGOING&at=refs%2Fheads%2F{HEAD}&start=25"


def test_other_targets_closed_and_foreign_pull_requests_are_not_reused(fake: FakeBitbucketServer) -> None:
    fake.add_pull("PROJ", "gitops", HEAD, "release", "other target", author="alice")
    fake.add_pull("PROJ", "gitops", HEAD, "main", "declined", author="alice")["state"] = "DECLINED"
    foreign = fake.add_pull("PROJ", "gitops", HEAD, "main", "from a fork", author="alice")
    foreign["toRef"] = {**foreign["toRef"], "repository": {"slug": "gitops", "project": {"key": "FORK"}}}
    assert connect(config(fake)).find_open(HEAD, "main") is None


def test_create_that_loses_a_race_returns_the_pull_request_that_won(fake: FakeBitbucketServer) -> None:
    fake.add_pull("PROJ", "gitops", HEAD, "main", "Deploy 1b39bd0", author="alice")
    pr = connect(config(fake)).create(spec())
    assert pr.number == 1 and len(fake.pulls) == 1
    assert [(e.method, e.status) for e in fake.requests] == [("POST", 409)]


def test_reviewers_and_draft_are_sent_and_labels_warned_about(fake: FakeBitbucketServer) -> None:
    warnings: list[str] = []
    connect(config(fake, warn=warnings.append)).create(
        spec(reviewers=("@alice",), labels=("gitops",), draft=True)
    )
    [create] = fake.requests
    assert body(create)["reviewers"] == [{"user": {"name": "alice"}}]
    assert body(create)["draft"] is True
    pull = fake.pull("PROJ", "gitops", 1)
    assert pull["_reviewers"] == ["alice"] and pull["_draft"] is True
    assert warnings == ["Bitbucket Server has no pull request labels; not applying gitops"]


def test_unknown_reviewer_warns_and_the_pull_request_is_opened_without_them(
    fake: FakeBitbucketServer,
) -> None:
    warnings: list[str] = []
    connect(config(fake, warn=warnings.append)).create(spec(reviewers=("nobody", "alice")))
    assert [(e.method, e.status) for e in fake.requests] == [("POST", 409), ("POST", 201)]
    assert body(fake.requests[1])["reviewers"] == [{"user": {"name": "alice"}}]
    assert warnings == ["Bitbucket Server: not requesting reviews from nobody (nobody is not a user)"]


def test_draft_on_a_server_without_drafts_warns(fake: FakeBitbucketServer) -> None:
    fake.supports_drafts = False  # before Data Center 8.18 the field is ignored
    warnings: list[str] = []
    pr = connect(config(fake, warn=warnings.append)).create(spec(draft=True))
    assert pr.number == 1 and len(fake.requests) == 1
    assert warnings and "drafts need Data Center 8.18" in warnings[0]


def test_personal_repository_is_addressed_by_its_tilde_key(fake: FakeBitbucketServer) -> None:
    fake.add_repo("~alice", "gitops", permissions={"ci-bot": "REPO_WRITE"})
    origin = parse_origin(f"{fake.base_url}/scm/~alice/gitops.git")
    pr = connect(config(fake, origin=origin)).create(spec())
    assert fake.requests[0].path == "/projects/~alice/repos/gitops/pull-requests"
    assert body(fake.requests[0])["toRef"]["repository"] == {"slug": "gitops", "project": {"key": "~alice"}}
    assert pr.url == f"{fake.base_url}/users/alice/repos/gitops/pull-requests/1"


# -- merging ---------------------------------------------------------------------------------------------


def opened(fake: FakeBitbucketServer, **knobs: Any) -> Any:
    adapter = connect(config(fake))
    pr = adapter.create(spec())
    fake.pull("PROJ", "gitops", pr.number).update(knobs)
    fake.requests.clear()
    return adapter, pr


def test_merge_uses_the_repositorys_default_strategy_in_one_request(fake: FakeBitbucketServer) -> None:
    adapter, pr = opened(fake)
    adapter.merge(pr, "merge")
    [merge] = fake.requests
    assert (merge.method, merge.path, merge.query, merge.status) == (
        "POST",
        f"{REPO}/pull-requests/1/merge",
        "version=0",
        200,
    )
    assert merge.request_body == b""
    pull = fake.pull("PROJ", "gitops", 1)
    assert (pull["state"], pull["_strategy"]) == ("MERGED", "no-ff")


def test_squash_merge_sends_the_squash_strategy(fake: FakeBitbucketServer) -> None:
    fake.repos[("PROJ", "gitops")]["_strategies"] = {"no-ff", "squash"}
    adapter, pr = opened(fake)
    adapter.merge(pr, "squash")
    [merge] = fake.requests
    assert body(merge) == {"strategyId": "squash"}
    assert fake.pull("PROJ", "gitops", 1)["_strategy"] == "squash"


def test_refused_strategy_falls_back_to_the_one_the_repository_enables(fake: FakeBitbucketServer) -> None:
    fake.repos[("PROJ", "gitops")]["_strategies"] = {"no-ff", "rebase-no-ff"}
    adapter, pr = opened(fake)
    adapter.merge(pr, "rebase")
    calls = [(e.method, e.path, e.status) for e in fake.requests]
    assert calls == [
        ("POST", f"{REPO}/pull-requests/1/merge", 409),
        ("GET", f"{REPO}/settings/pull-requests", 200),
        ("POST", f"{REPO}/pull-requests/1/merge", 200),
    ]
    assert [body(e) for e in fake.requests[::2]] == [
        {"strategyId": "rebase-ff-only"},
        {"strategyId": "rebase-no-ff"},
    ]
    assert fake.pull("PROJ", "gitops", 1)["_strategy"] == "rebase-no-ff"


def test_method_the_repository_does_not_allow_lists_what_it_allows(fake: FakeBitbucketServer) -> None:
    adapter, pr = opened(fake)
    message = error_of(adapter.merge, pr, "squash")
    assert "does not allow the squash merge method" in message
    assert "enabled: no-ff (Merge commit)" in message
    assert fake.pull("PROJ", "gitops", 1)["state"] == "OPEN"


def test_merge_vetoes_are_listed_in_one_line(fake: FakeBitbucketServer) -> None:
    repo = fake.repos[("PROJ", "gitops")]
    repo["_required_approvals"], repo["_required_builds"] = 2, 1
    adapter, pr = opened(fake)
    message = error_of(adapter.merge, pr, "merge")
    assert message == (
        "Bitbucket Server merge checks vetoed merging pull request #1 (merge): Requires approvals; "
        "Not all required builds are successful yet"
    )


def test_conflicting_pull_request_is_reported(fake: FakeBitbucketServer) -> None:
    adapter, pr = opened(fake, _conflicted=True)
    assert "has conflicts with its target branch" in error_of(adapter.merge, pr, "merge")


def test_merge_of_a_pull_request_changed_meanwhile_uses_its_current_version(
    fake: FakeBitbucketServer,
) -> None:
    adapter, pr = opened(fake, version=3)
    adapter.merge(pr, "merge")
    assert [(e.query, e.status) for e in fake.requests] == [("version=0", 409), ("version=3", 200)]


def test_reader_cannot_merge_and_is_told_what_permission_is_needed(fake: FakeBitbucketServer) -> None:
    fake.add_token("BBDC-alicetoken000000000", "alice")
    adapter = connect(config(fake, token="BBDC-alicetoken000000000"))
    pr = adapter.create(spec())  # REPO_READ is enough to open a pull request
    message = error_of(adapter.merge, pr, "merge")
    assert "401 You are not permitted to access this resource" in message and "REPO_WRITE" in message


# -- authentication and errors ---------------------------------------------------------------------------


def test_bad_token_is_reported_as_rejected_credentials(fake: FakeBitbucketServer) -> None:
    message = error_of(connect(config(fake, token="BBDC-wrongtoken00000000")).find_open, HEAD, "main")
    assert "rejected the credentials from BITBUCKET_SERVER_TOKEN (401 Authentication failed" in message
    assert len(fake.requests) == 1  # no username: nothing else to try


def test_password_with_a_username_falls_back_to_basic_once(fake: FakeBitbucketServer) -> None:
    adapter = connect(config(fake, token=PASSWORD, username="ci-bot"))
    assert adapter.default_branch() == "main"
    assert adapter.find_open(HEAD, "main") is None
    bearer, basic, later = (e.request_headers["authorization"] for e in fake.requests)
    assert bearer == f"Bearer {PASSWORD}"
    assert basic == later == "Basic " + base64.b64encode(f"ci-bot:{PASSWORD}".encode()).decode()


def test_missing_permission_is_not_mistaken_for_a_bad_credential(fake: FakeBitbucketServer) -> None:
    fake.add_repo("SEC", "gitops", permissions={"alice": "REPO_WRITE"})
    origin = parse_origin(f"{fake.base_url}/scm/SEC/gitops.git")
    message = error_of(connect(config(fake, username="ci-bot", origin=origin)).find_open, HEAD, "main")
    assert "lacks permission" in message and "AuthorisationException" not in message
    assert len(fake.requests) == 1  # the token was fine: no Basic retry


@pytest.mark.parametrize(
    ("clone_path", "says"),
    [
        ("/scm/NOPE/gitops.git", "Project NOPE does not exist"),
        ("/scm/PROJ/nope.git", "Repository PROJ/nope does not exist"),
    ],
)
def test_not_found_names_what_to_check(fake: FakeBitbucketServer, clone_path: str, says: str) -> None:
    origin = parse_origin(f"{fake.base_url}{clone_path}")
    message = error_of(connect(config(fake, origin=origin)).find_open, HEAD, "main")
    assert says in message and "project key and repository slug" in message and "context path" in message


def test_missing_context_path_is_a_404_that_points_at_it(fake: FakeBitbucketServer) -> None:
    origin = parse_origin(f"ssh://git@127.0.0.1:{fake.root_url.rsplit(':', 1)[1]}/PROJ/gitops.git")
    endpoint = f"{fake.root_url}/rest/api/1.0"  # the server runs under /bitbucket
    message = error_of(connect(config(fake, origin=origin, api_endpoint=endpoint)).find_open, HEAD, "main")
    assert "404" in message and "-api-endpoint=https://HOST/CONTEXT/rest/api/1.0" in message


# -- retries, rate limits, outages -----------------------------------------------------------------------


def test_429_is_retried_after_the_retry_after_wait(fake: FakeBitbucketServer, sleeps: list[float]) -> None:
    fake.rate_limit_next(method="POST", retry_after=7)
    pr = connect(config(fake, deadline=10.0)).create(spec())
    assert pr.number == 1
    assert [e.status for e in fake.requests] == [429, 201]
    assert sleeps == [7]


def test_rate_limit_longer_than_the_deadline_gives_up_at_once(
    fake: FakeBitbucketServer, sleeps: list[float]
) -> None:
    fake.rate_limit_next(50, retry_after=600)
    message = error_of(connect(config(fake, deadline=2.0)).find_open, HEAD, "main")
    assert "Bitbucket Server rate-limited the run (429 You have been rate limited" in message
    assert "sent once; the next wait, 600s (Retry-After), would end past the 2s retry deadline" in message
    assert message.endswith("rerun later")
    # Neither the session nor the SDK's own Retry-After handling waited or retried.
    assert sleeps == [] and len(fake.requests) == 1


def test_transient_server_errors_are_retried(fake: FakeBitbucketServer) -> None:
    fake.fail_next(502)
    fake.fail_next(503)
    assert connect(config(fake)).default_branch() == "main"
    assert [e.status for e in fake.requests] == [502, 503, 200]


def test_server_errors_until_the_deadline_give_a_clear_error(fake: FakeBitbucketServer) -> None:
    fake.fail_next(503, count=10_000)
    started = time.monotonic()
    message = error_of(connect(config(fake, deadline=0.3)).find_open, HEAD, "main")
    assert time.monotonic() - started < 2.0
    assert len(fake.requests) > 1
    assert "Bitbucket Server answered 503 Service Unavailable trying to list pull requests" in message
    assert f"{len(fake.requests)} attempts, each answered 503" in message
    assert "would end past the 0.3s retry deadline" in message


def test_unreachable_api_says_which_endpoint(fake: FakeBitbucketServer) -> None:
    endpoint = "http://127.0.0.1:9/rest/api/1.0"  # discard port: nothing listens
    message = error_of(connect(config(fake, api_endpoint=endpoint, deadline=0.2)).default_branch)
    assert f"cannot reach {endpoint}" in message
    assert "no connection made; 4 attempts, none connected" in message


def test_post_answered_500_is_sent_once_and_looked_for(fake: FakeBitbucketServer) -> None:
    fake.fail_next(500, method="POST")
    message = error_of(connect(config(fake)).create, spec())
    assert [(e.method, e.status) for e in fake.requests] == [("POST", 500), ("GET", 200)]
    assert "answered 500 Internal Server Error trying to open the pull request" in message
    assert "sent once and not retried" in message and "retrying for up to" not in message
    assert message.endswith(f"it did not: no pull request {HEAD} -> main is open; rerun")


def test_read_timeout_is_not_called_unreachable(fake: FakeBitbucketServer) -> None:
    fake.stall_next(2.0, count=2, method="GET")
    started = time.monotonic()
    message = error_of(connect(config(fake, timeout=0.2)).find_open, HEAD, "main")
    assert time.monotonic() - started < 1.5 and "cannot reach" not in message
    assert "accepted the request but did not answer in time" in message
    assert "2 attempts, none answered in time" in message


def test_create_answered_502_after_opening_converges_on_the_pull_request(fake: FakeBitbucketServer) -> None:
    warnings: list[str] = []
    fake.fail_next(502, count=1000, method="POST", processed=True)
    pr = connect(config(fake, deadline=0.3, warn=warnings.append)).create(spec())
    assert [p["id"] for p in fake.pulls] == [pr.number]
    # Opened, answered 502; resent until the deadline (duplicates, answered 502 too); then the look
    # that finds it.
    calls = [(e.method, e.status) for e in fake.requests]
    assert calls[-1] == ("GET", 200) and set(calls[:-1]) == {("POST", 502)} and len(calls) > 2
    assert len(warnings) == 1 and f"open after all: #{pr.number}" in warnings[0]


# -- a merge whose answer was lost ---------------------------------------------------------------------


def test_merge_that_went_through_but_was_answered_502_is_reported_merged(fake: FakeBitbucketServer) -> None:
    warnings: list[str] = []
    adapter = connect(config(fake, warn=warnings.append))
    pr = adapter.create(spec())
    fake.requests.clear()
    fake.fail_next(502, method="POST", path="/merge$", processed=True)
    adapter.merge(pr, "merge")
    assert fake.pull("PROJ", "gitops", pr.number)["state"] == "MERGED"
    # Merged, answered 502; the resent merge: 409 out of date, carrying the pull request: MERGED.
    assert [(e.method, e.status) for e in fake.requests] == [("POST", 502), ("POST", 409)]
    assert fake.requests[1].response_json["errors"][0]["pullRequest"]["state"] == "MERGED"
    assert len(warnings) == 1 and "is merged" in warnings[0]


def test_merge_whose_answers_never_came_but_went_through_is_reported_merged(
    fake: FakeBitbucketServer,
) -> None:
    adapter = connect(config(fake, timeout=0.2, warn=lambda _m: None))
    pr = adapter.create(spec())
    fake.requests.clear()
    fake.stall_next(2.0, count=2, method="POST", path="/merge$", processed=True)
    adapter.merge(pr, "merge")
    assert fake.pull("PROJ", "gitops", pr.number)["state"] == "MERGED"
    assert [e.method for e in fake.requests] == ["POST", "POST", "GET"]


def test_merge_refused_as_not_open_is_checked_against_the_pull_request(fake: FakeBitbucketServer) -> None:
    adapter = connect(config(fake))
    pr = adapter.create(spec())
    fake.pull("PROJ", "gitops", pr.number)["state"] = "DECLINED"
    fake.requests.clear()
    message = error_of(adapter.merge, pr, "squash")
    assert "refused to merge pull request #1" in message and "declined and cannot be merged" in message
    assert [(e.method, e.status) for e in fake.requests] == [("POST", 409), ("GET", 200)]


def test_merge_that_kept_failing_and_did_not_go_through_says_what_was_tried(
    fake: FakeBitbucketServer,
) -> None:
    adapter = connect(config(fake, deadline=0.3))
    pr = adapter.create(spec())
    fake.requests.clear()
    fake.fail_next(503, count=1000, method="POST")
    message = error_of(adapter.merge, pr, "merge")
    posts = fake.calls("POST")
    assert "Bitbucket Server answered 503 Service Unavailable trying to merge pull request #1" in message
    assert f"{len(posts)} attempts, each answered 503" in message
    assert fake.pull("PROJ", "gitops", 1)["state"] == "OPEN" and fake.requests[-1].method == "GET"


# -- the fake itself -------------------------------------------------------------------------------------


def test_fake_pages_the_way_the_sdk_expects(fake: FakeBitbucketServer) -> None:
    for n in range(7):
        fake.add_pull("PROJ", "gitops", f"b{n}", "main", f"PR {n}", author="alice")
    client = Bitbucket(url=fake.base_url, token=TOKEN, cloud=False)  # type: ignore[no-untyped-call]
    listed = list(client.get_pull_requests("PROJ", "gitops", limit=3))
    assert [p["id"] for p in listed] == [7, 6, 5, 4, 3, 2, 1]
    pages = [json.loads(e.response_body) for e in fake.requests]
    assert [(p["start"], p["size"], p["isLastPage"], p.get("nextPageStart")) for p in pages] == [
        (0, 3, False, 3),
        (3, 3, False, 6),
        (6, 1, True, None),
    ]


def test_fake_answers_on_the_latest_alias_and_the_users_route(fake: FakeBitbucketServer) -> None:
    fake.add_repo("~alice", "dots", permissions={})
    fake.add_token("BBDC-alicetoken000000000", "alice")
    bot = {"Authorization": f"Bearer {TOKEN}"}
    latest = requests.get(
        f"{fake.base_url}/rest/api/latest/projects/PROJ/repos/gitops", headers=bot, timeout=5
    )
    assert latest.status_code == 200 and latest.json()["project"]["key"] == "PROJ"
    owner = {"Authorization": "Bearer BBDC-alicetoken000000000"}
    mine = requests.get(f"{fake.api_url}/users/alice/repos/dots", headers=owner, timeout=5)
    assert mine.status_code == 200 and mine.json()["project"]["key"] == "~ALICE"
    denied = requests.get(f"{fake.api_url}/users/alice/repos/dots", headers=bot, timeout=5)
    assert denied.status_code == 401
    assert denied.json() == {
        "errors": [
            {
                "context": None,
                "message": "You are not permitted to access this resource",
                "exceptionName": "com.atlassian.bitbucket.AuthorisationException",
            }
        ]
    }


def test_atlassian_sdk_is_imported_only_by_the_bitbucket_adapters() -> None:
    root = pathlib.Path(bb_provider.__file__).parent.parent
    for package in ("updater", "providers"):
        for source in (root / package).glob("*.py"):
            if package == "providers" and source.name in ("bitbucket_server.py", "bitbucket_cloud.py"):
                continue
            text = source.read_text()
            assert "import atlassian" not in text and "from atlassian" not in text, source


# -- end to end: the CLI as a pipeline runs it ------------------------------------------------------------


def test_cli_opens_then_reuses_and_merges_a_pull_request(
    git_server: GitServer, tmp_path: pathlib.Path
) -> None:
    """The installed CLI pushes to the real git server and talks to the fake over a real socket."""
    url = git_server.create_repo("scm/PROJ/gitops.git", copy_fixture("hello-world", tmp_path / "seed"))
    with FakeBitbucketServer() as server:
        assert isinstance(server, FakeBitbucketServer)
        server.add_token(DEFAULT_TOKEN, "ci-bot")
        server.add_repo(
            "PROJ", "gitops", permissions={"ci-bot": "REPO_WRITE"}, strategies=("no-ff", "rebase-no-ff")
        )
        env = {**make_home(tmp_path), "BITBUCKET_SERVER_TOKEN": DEFAULT_TOKEN, "BITBUCKET_USERNAME": "ci-bot"}
        args = [
            "-git-revision=1b39bd0",
            "-substitute=imageName=app@sha256:0123",
            "-scm-provider=bitbucket-server",
        ]
        args.append(f"-api-endpoint={server.api_url}")
        run = run_tool(args, clone(url, tmp_path / "first", token=DEFAULT_TOKEN, detached=True), env)
        assert run.returncode == 0, run.stderr
        [pull] = server.pulls
        assert run.stdout == f"{server.base_url}/projects/PROJ/repos/gitops/pull-requests/1\n"
        assert (pull["fromRef"]["id"], pull["toRef"]["id"]) == (
            "refs/heads/update-to-commit-1b39bd0",
            "refs/heads/main",
        )
        assert [(e.method, e.path) for e in server.requests] == [
            ("GET", f"{REPO}/pull-requests"),
            ("POST", f"{REPO}/pull-requests"),
        ]

        server.requests.clear()
        again = clone(url, tmp_path / "again", token=DEFAULT_TOKEN, detached=True)
        run = run_tool([*args, "-merge-pull-request", "-merge-method=rebase"], again, env)
        assert run.returncode == 0, run.stderr
        assert len(server.pulls) == 1 and pull["state"] == "MERGED" and pull["_strategy"] == "rebase-no-ff"
        assert [e.method for e in server.requests] == [
            "GET",
            "POST",
            "GET",
            "POST",
        ]  # find, merge, settings, merge
