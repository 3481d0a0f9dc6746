"""The GitLab adapter: real python-gitlab against a stateful fake GitLab on 127.0.0.1.

GitLab publishes no machine-readable API description that can be had here, so the request shapes
are asserted explicitly against the REST documentation (method, raw path with the URL-encoded
project, query, auth header, JSON body), and the fake answers with the status codes and bodies
GitLab's API code uses (lib/api/merge_requests.rb).
"""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Iterator
from typing import Any

import gitlab
import pytest
import requests

from providers import gitlab as gl_provider
from providers.base import ProviderConfig, PullRequestSpec, open_or_reuse
from providers.gitlab import api_base, connect, repo_id, server_url
from tests.conftest import provider_error, run_tool
from tests.fakes.gitlab import DEVELOPER, MAINTAINER, REPORTER, FakeGitLab
from tests.fakes.openapi_check import Exchange
from tests.gitserver import DEFAULT_TOKEN, GitServer, clone, copy_fixture, make_home
from updater.values import Credential, parse_origin

TOKEN = "glpat-goodtoken1234567890"
JOB_TOKEN = "glcbt-jobtoken1234567890"
PROJECT = "group/sub/gitops"
ENCODED = "group%2Fsub%2Fgitops"
MRS = f"/projects/{ENCODED}/merge_requests"
ORIGIN = "https://gitlab.example.com/group/sub/gitops.git"


# -- fixtures and helpers ----------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeGitLab]:
    with FakeGitLab() as server:
        assert isinstance(server, FakeGitLab)
        server.add_token(TOKEN, "ci-bot")
        server.add_user("alice")
        server.add_repo(PROJECT, default_branch="main", members={"ci-bot": MAINTAINER, "alice": DEVELOPER})
        yield server


def config(
    fake: FakeGitLab, token: str | None = TOKEN, kind: str = "token", **overrides: Any
) -> ProviderConfig:
    settings: dict[str, Any] = {
        "origin": parse_origin(ORIGIN),
        "credential": Credential(token, None, kind, "GITLAB_TOKEN") if token else None,  # type: ignore[arg-type]
        "api_endpoint": fake.api_url,
        "deadline": 2.0,
        "timeout": 5.0,
    }
    settings.update(overrides)
    return ProviderConfig(**settings)


def spec(**overrides: Any) -> PullRequestSpec:
    values: dict[str, Any] = {"head": "update-to-commit-1b39bd0", "base": "main", "title": "Deploy 1b39bd0"}
    values["body"] = "Rendered staging/app.yaml"
    values.update(overrides)
    return PullRequestSpec(**values)


def error_of(fn: Any, *args: Any) -> str:
    return provider_error(lambda: fn(*args), TOKEN, JOB_TOKEN)


def body(exchange: Exchange) -> Any:
    return json.loads(exchange.request_body) if exchange.request_body else None


# -- endpoint and project identity -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://gitlab.com/group/sub/gitops.git", "https://gitlab.com/api/v4"),
        ("https://oauth2:tok@gitlab.example.com/group/gitops", "https://gitlab.example.com/api/v4"),
        ("http://gitlab.local:8080/group/gitops.git", "http://gitlab.local:8080/api/v4"),
        ("git@gitlab.example.com:group/sub/gitops.git", "https://gitlab.example.com/api/v4"),
        ("ssh://git@gitlab.example.com:2222/group/gitops.git", "https://gitlab.example.com/api/v4"),
    ],
)
def test_api_base_is_derived_from_the_origin(origin: str, expected: str) -> None:
    assert api_base(parse_origin(origin)) == expected


def test_api_endpoint_override_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_SERVER_HOST", "gitlab.example.com")
    monkeypatch.setenv("CI_API_V4_URL", "https://gitlab.example.com/api/v4")
    assert api_base(parse_origin(ORIGIN), "https://proxy.example.com/gl/api/v4/") == (
        "https://proxy.example.com/gl/api/v4"
    )


def test_gitlab_ci_api_url_is_used_for_the_pipelines_own_server(monkeypatch: pytest.MonkeyPatch) -> None:
    # GitLab CI knows the relative URL a clone URL cannot reveal.
    monkeypatch.setenv("CI_SERVER_HOST", "gitlab.example.com")
    monkeypatch.setenv("CI_API_V4_URL", "https://gitlab.example.com/gitlab/api/v4")
    origin = parse_origin("https://gitlab.example.com/gitlab/group/sub/gitops.git")
    api = api_base(origin)
    assert api == "https://gitlab.example.com/gitlab/api/v4"
    assert repo_id(origin, api) == "group/sub/gitops"


def test_gitlab_ci_api_url_is_ignored_for_another_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_SERVER_HOST", "ci.example.com")
    monkeypatch.setenv("CI_API_V4_URL", "https://ci.example.com/api/v4")
    assert api_base(parse_origin(ORIGIN)) == "https://gitlab.example.com/api/v4"


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        (ORIGIN, "group/sub/gitops"),
        ("git@gitlab.example.com:a/b/c/d/gitops.git", "a/b/c/d/gitops"),
        ("https://gitlab.com/user/gitops", "user/gitops"),
    ],
)
def test_project_path_keeps_every_nested_group(origin: str, expected: str) -> None:
    assert repo_id(parse_origin(origin)) == expected


def test_relative_url_prefix_of_the_api_endpoint_is_not_part_of_the_project_path() -> None:
    origin = parse_origin("https://host.example.com/gitlab/group/gitops.git")
    # Without the endpoint, "gitlab" is indistinguishable from a top-level group.
    assert repo_id(origin) == "gitlab/group/gitops"
    assert repo_id(origin, "https://host.example.com/gitlab/api/v4") == "group/gitops"


def test_python_gitlab_is_given_the_server_root() -> None:
    assert server_url("https://host/gitlab/api/v4") == "https://host/gitlab"
    assert server_url("https://gitlab.com/api/v4") == "https://gitlab.com"


def test_origin_without_a_group_is_refused() -> None:
    message = error_of(repo_id, parse_origin("https://gitlab.example.com/gitops.git"))
    assert "group/repo" in message


def test_local_origin_needs_an_api_endpoint() -> None:
    message = error_of(api_base, parse_origin("/srv/git/group/gitops.git"))
    assert "-api-endpoint" in message


def test_missing_token_says_where_tokens_are_read(fake: FakeGitLab) -> None:
    message = error_of(connect, config(fake, token=None))
    assert "GITLAB_TOKEN" in message and "api scope" in message


# -- request counts and shapes ---------------------------------------------------------------------------


def test_connect_spends_no_request_and_default_branch_one(fake: FakeGitLab) -> None:
    adapter = connect(config(fake))
    assert fake.requests == []
    assert adapter.default_branch() == "main"
    [call] = fake.requests
    # The raw request line: the project path is URL-encoded, slashes included.
    assert (call.method, call.path, call.query) == ("GET", f"/projects/{ENCODED}", "")
    assert call.request_headers["private-token"] == TOKEN
    assert "authorization" not in call.request_headers and "job-token" not in call.request_headers


def test_default_branch_inside_gitlab_ci_of_the_same_project_costs_nothing(
    fake: FakeGitLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_SERVER_HOST", "gitlab.example.com")
    monkeypatch.setenv("CI_PROJECT_PATH", PROJECT)
    monkeypatch.setenv("CI_DEFAULT_BRANCH", "trunk")
    assert connect(config(fake)).default_branch() == "trunk"
    assert fake.requests == []


def test_new_merge_request_costs_two_requests_of_the_documented_shape(fake: FakeGitLab) -> None:
    outcome = open_or_reuse(connect(config(fake)), spec())
    assert outcome.operation == "created"
    find, create = fake.requests
    assert (find.method, find.path) == ("GET", MRS)
    assert find.query == "state=opened&source_branch=update-to-commit-1b39bd0&target_branch=main"
    assert (create.method, create.path, create.status) == ("POST", MRS, 201)
    assert create.request_headers["content-type"] == "application/json"
    assert body(create) == {
        "source_branch": "update-to-commit-1b39bd0",
        "target_branch": "main",
        "title": "Deploy 1b39bd0",
        "description": "Rendered staging/app.yaml",
    }
    mr = fake.mr(PROJECT, 1)
    assert (mr["state"], mr["source_branch"], mr["target_branch"]) == (
        "opened",
        "update-to-commit-1b39bd0",
        "main",
    )
    assert outcome.pr.number == 1
    assert outcome.pr.url == f"{fake.web_url}/{PROJECT}/-/merge_requests/1"
    assert (outcome.pr.title, outcome.pr.body) == ("Deploy 1b39bd0", "Rendered staging/app.yaml")


def test_rerun_reuses_the_open_merge_request_with_one_request(fake: FakeGitLab) -> None:
    first = open_or_reuse(connect(config(fake)), spec())
    fake.requests.clear()
    second = open_or_reuse(connect(config(fake)), spec())
    assert second.operation == "reused" and second.pr.number == first.pr.number
    assert len(fake.requests) == 1 and len(fake.merge_requests) == 1


def test_changed_title_or_body_updates_the_open_merge_request(fake: FakeGitLab) -> None:
    open_or_reuse(connect(config(fake)), spec())
    fake.requests.clear()
    outcome = open_or_reuse(connect(config(fake)), spec(title="Deploy 2c4e", body="new body"))
    assert outcome.operation == "updated"
    _, put = fake.requests
    assert (put.method, put.path) == ("PUT", f"{MRS}/1")
    assert body(put) == {"title": "Deploy 2c4e", "description": "new body"}
    assert (fake.mr(PROJECT, 1)["title"], fake.mr(PROJECT, 1)["description"]) == ("Deploy 2c4e", "new body")
    assert (outcome.pr.title, outcome.pr.body) == ("Deploy 2c4e", "new body")


def test_closed_merged_and_other_target_merge_requests_are_not_reused(fake: FakeGitLab) -> None:
    for target in ("main", "main", "release"):
        fake.add_merge_request(PROJECT, "update-to-commit-1b39bd0", target, "old", author="alice")
    fake.mr(PROJECT, 1)["state"] = "closed"
    fake.mr(PROJECT, 2)["state"] = "merged"
    assert connect(config(fake)).find_open("update-to-commit-1b39bd0", "main") is None


def test_merge_request_from_a_fork_with_the_same_branch_name_is_not_reused(fake: FakeGitLab) -> None:
    fork_mr = fake.add_merge_request(PROJECT, "update-to-commit-1b39bd0", "main", "fork", author="alice")
    fork_mr["source_project_id"] = 99999
    assert connect(config(fake)).find_open("update-to-commit-1b39bd0", "main") is None


def test_create_that_loses_a_race_returns_the_merge_request_that_won(fake: FakeGitLab) -> None:
    fake.add_merge_request(PROJECT, "update-to-commit-1b39bd0", "main", "Deploy 1b39bd0", author="alice")
    pr = connect(config(fake)).create(spec())
    assert pr.number == 1 and len(fake.merge_requests) == 1
    assert [(e.method, e.status) for e in fake.requests] == [("POST", 409), ("GET", 200)]


def test_labels_reviewers_and_draft_are_native(fake: FakeGitLab) -> None:
    warnings: list[str] = []
    adapter = connect(config(fake, warn=warnings.append))
    pr = adapter.create(spec(labels=("gitops", "auto"), reviewers=("@alice",), draft=True))
    lookup, create = fake.requests
    assert (lookup.method, lookup.path, lookup.query) == ("GET", "/users", "username=alice")
    sent = body(create)
    assert sent["title"] == "Draft: Deploy 1b39bd0"
    assert sent["labels"] == "gitops,auto"
    assert sent["reviewer_ids"] == [fake.users["alice"]["id"]]
    mr = fake.mr(PROJECT, 1)
    assert mr["draft"] is True and mr["labels"] == ["gitops", "auto"]
    assert warnings == []
    # The Draft: prefix is GitLab's way of marking drafts, not part of the title we compare.
    assert pr.title == "Deploy 1b39bd0"


def test_draft_stays_a_draft_when_its_title_is_updated(fake: FakeGitLab) -> None:
    open_or_reuse(connect(config(fake)), spec(draft=True))
    assert open_or_reuse(connect(config(fake)), spec(draft=True)).operation == "reused"
    fake.requests.clear()
    outcome = open_or_reuse(connect(config(fake)), spec(title="Deploy 2c4e"))
    assert outcome.operation == "updated" and outcome.pr.title == "Deploy 2c4e"
    assert body(fake.requests[-1])["title"] == "Draft: Deploy 2c4e"
    assert fake.mr(PROJECT, 1)["draft"] is True


def test_unknown_reviewer_warns_and_the_merge_request_is_still_opened(fake: FakeGitLab) -> None:
    warnings: list[str] = []
    connect(config(fake, warn=warnings.append)).create(spec(reviewers=("nobody", "alice")))
    assert warnings == ["GitLab: no user named nobody; not requesting a review from them"]
    assert body(fake.requests[-1])["reviewer_ids"] == [fake.users["alice"]["id"]]
    assert len(fake.requests) == 3  # one lookup per reviewer, then the create


# -- merging ---------------------------------------------------------------------------------------------


def opened(fake: FakeGitLab, **settings: Any) -> Any:
    """An adapter and a freshly opened MR; `settings` turn the fake's knobs on that MR."""
    adapter = connect(config(fake))
    pr = adapter.create(spec())
    fake.mr(PROJECT, pr.number).update(settings)
    fake.requests.clear()
    return adapter, pr


def test_merge_is_one_request_that_pins_the_sha_it_saw(fake: FakeGitLab) -> None:
    adapter, pr = opened(fake)
    adapter.merge(pr, "merge")
    [merge] = fake.requests
    assert (merge.method, merge.path, merge.status) == ("PUT", f"{MRS}/1/merge", 200)
    assert body(merge) == {"sha": fake.mr(PROJECT, 1)["sha"]}
    assert fake.mr(PROJECT, 1)["state"] == "merged"


def test_squash_merge_asks_gitlab_to_squash(fake: FakeGitLab) -> None:
    adapter, pr = opened(fake)
    adapter.merge(pr, "squash")
    assert body(fake.requests[0]) == {"squash": True, "sha": fake.mr(PROJECT, 1)["sha"]}
    assert fake.mr(PROJECT, 1)["squash_commit_sha"]


def test_rebase_merge_rebases_first_then_merges_the_rebased_head(fake: FakeGitLab) -> None:
    fake.projects[PROJECT]["merge_method"] = "ff"
    adapter, pr = opened(fake, _diverged=True, _rebase_takes=2)
    old_sha = fake.mr(PROJECT, 1)["sha"]
    adapter.merge(pr, "rebase")
    calls = [(e.method, e.path, e.query, e.status) for e in fake.requests]
    assert calls == [
        ("PUT", f"{MRS}/1/rebase", "", 202),
        ("GET", f"{MRS}/1", "include_rebase_in_progress=true", 200),
        ("GET", f"{MRS}/1", "include_rebase_in_progress=true", 200),
        ("PUT", f"{MRS}/1/merge", "", 200),
    ]
    new_sha = fake.mr(PROJECT, 1)["sha"]
    assert new_sha != old_sha and body(fake.requests[-1]) == {"sha": new_sha}
    assert fake.mr(PROJECT, 1)["state"] == "merged"


def test_found_merge_request_is_merged_at_the_branch_head_once_gitlab_caught_up(fake: FakeGitLab) -> None:
    head = "gitops/staging"
    connect(config(fake)).create(spec(head=head))
    pushed = fake.push(PROJECT, head, refresh_after=2)  # GitLab refreshes the MR asynchronously
    adapter = connect(config(fake))
    pr = adapter.find_open(head, "main")
    assert pr is not None
    fake.requests.clear()
    adapter.merge(pr, "merge")
    calls = [(e.method, e.path, e.status) for e in fake.requests]
    assert calls == [
        ("GET", f"/projects/{ENCODED}/repository/branches/gitops%2Fstaging", 200),
        ("GET", f"{MRS}/1", 200),  # still the old head
        ("GET", f"{MRS}/1", 200),  # caught up
        ("PUT", f"{MRS}/1/merge", 200),
    ]
    assert body(fake.requests[-1]) == {"sha": pushed}
    assert fake.mr(PROJECT, 1)["_merged_head"] == pushed


def test_found_merge_request_gitlab_never_refreshes_is_not_merged_stale(fake: FakeGitLab) -> None:
    connect(config(fake)).create(spec())
    fake.push(PROJECT, "update-to-commit-1b39bd0", refresh_after=10_000)
    adapter = connect(config(fake, deadline=0.2))
    pr = adapter.find_open("update-to-commit-1b39bd0", "main")
    message = error_of(adapter.merge, pr, "merge")
    assert "has not caught up with the push to update-to-commit-1b39bd0" in message
    assert fake.mr(PROJECT, 1)["state"] == "opened"


def test_failed_rebase_is_reported_in_gitlabs_words(fake: FakeGitLab) -> None:
    adapter, pr = opened(fake, _rebase_conflicts=True)
    message = error_of(adapter.merge, pr, "rebase")
    assert message.startswith("GitLab could not rebase !1: Rebase failed")
    assert fake.mr(PROJECT, 1)["state"] == "opened"


def test_merge_waits_while_gitlab_is_still_checking_the_merge_request(fake: FakeGitLab) -> None:
    adapter, pr = opened(fake, _checking=2)
    adapter.merge(pr, "merge")
    assert [(e.method, e.status) for e in fake.requests] == [("PUT", 405), ("GET", 200), ("PUT", 200)]
    assert fake.mr(PROJECT, 1)["state"] == "merged"


def test_merge_still_checking_at_the_deadline_is_reported(fake: FakeGitLab) -> None:
    adapter = connect(config(fake, deadline=0.2))
    pr = adapter.create(spec())
    fake.mr(PROJECT, 1)["_checking"] = 10_000
    message = error_of(adapter.merge, pr, "merge")
    assert "detailed_merge_status=checking" in message


@pytest.mark.parametrize(
    ("knobs", "project", "code", "reason"),
    [
        ({"_pipeline": "running"}, {"only_allow_merge_if_pipeline_succeeds": True}, "405", "still running"),
        (
            {"_pipeline": "failed"},
            {"only_allow_merge_if_pipeline_succeeds": True},
            "405",
            "Pipelines must succeed",
        ),
        ({}, {"_approvals_required": 2}, "405", "needs approvals"),
        ({"title": "Draft: x", "draft": True}, {}, "405", "is a draft"),
        ({"blocking_discussions_resolved": False}, {}, "405", "threads must be resolved"),
        ({"_conflicts": True}, {}, "422", "has conflicts"),
        ({"_diverged": True}, {"merge_method": "ff"}, "422", "use the rebase merge method"),
        ({"state": "closed"}, {}, "405", "not open"),
    ],
)
def test_merge_refusals_say_why(
    fake: FakeGitLab, knobs: dict[str, Any], project: dict[str, Any], code: str, reason: str
) -> None:
    fake.projects[PROJECT].update(project)
    adapter, pr = opened(fake, **knobs)
    message = error_of(adapter.merge, pr, "merge")
    assert message.startswith(f"GitLab refused to merge !1 with method merge ({code} "), message
    assert reason in message
    assert fake.mr(PROJECT, 1)["state"] != "merged"


def test_squash_in_a_project_that_never_squashes_gives_gitlabs_reason(fake: FakeGitLab) -> None:
    fake.projects[PROJECT]["squash_option"] = "never"
    adapter, pr = opened(fake)
    message = error_of(adapter.merge, pr, "squash")
    assert "does not allow squashing commits" in message


def test_merge_into_a_protected_branch_without_the_role_is_explained(fake: FakeGitLab) -> None:
    fake.add_token("glpat-devtoken0000000000", "alice")
    adapter = connect(config(fake, token="glpat-devtoken0000000000"))
    pr = adapter.create(spec())
    message = error_of(adapter.merge, pr, "merge")
    assert "may not merge into it" in message and "protected branch" in message


def test_push_between_reading_and_merging_is_not_merged_unseen(fake: FakeGitLab) -> None:
    adapter, pr = opened(fake)
    fake.mr(PROJECT, 1)["sha"] = "0" * 40  # someone pushed to the branch
    message = error_of(adapter.merge, pr, "merge")
    assert "source branch moved" in message and fake.mr(PROJECT, 1)["state"] == "opened"


# -- authentication and permissions ----------------------------------------------------------------------


def test_bad_token_is_reported_as_invalid(fake: FakeGitLab) -> None:
    message = error_of(connect(config(fake, token="glpat-wrongtoken000000000")).find_open, "a", "main")
    assert "rejected the token from GITLAB_TOKEN (401 Unauthorized)" in message
    assert "glpat-wrongtoken000000000" not in message
    assert "OAuth2" not in message  # a glpat- token is an access token: no OAuth hint


def test_job_token_is_refused_before_any_request_with_what_to_set(fake: FakeGitLab) -> None:
    fake.add_token(JOB_TOKEN, "ci-bot", kind="job")
    job = Credential(JOB_TOKEN, None, "job-token", "CI_JOB_TOKEN")
    message = error_of(connect, config(fake, credential=job))
    assert message.startswith("a CI job token (CI_JOB_TOKEN) cannot open merge requests")
    assert "GITLAB_TOKEN" in message and "UPDATE_GITOPS_REPO_API_TOKEN or -api-token-file" in message
    assert "-create-pull-request=false" in message
    assert fake.requests == []


def test_fake_takes_a_job_token_only_where_gitlab_does(fake: FakeGitLab) -> None:
    """GitLab looks at JOB-TOKEN only on job-token endpoints; on the merge-request API it is anonymous."""
    fake.add_token(JOB_TOKEN, "ci-bot", kind="job")
    job = {"JOB-TOKEN": JOB_TOKEN}
    assert requests.get(f"{fake.api_url}/job", headers=job, timeout=5).status_code == 200
    listed = requests.get(f"{fake.api_url}{MRS}", headers=job, timeout=5)
    assert (listed.status_code, listed.json()) == (404, {"message": "404 Project Not Found"})
    created = requests.post(f"{fake.api_url}{MRS}", headers=job, json={"title": "t"}, timeout=5)
    assert (created.status_code, created.json()) == (401, {"message": "401 Unauthorized"})
    as_private = requests.get(f"{fake.api_url}{MRS}", headers={"PRIVATE-TOKEN": JOB_TOKEN}, timeout=5)
    assert (as_private.status_code, as_private.json()) == (401, {"message": "401 Unauthorized"})
    # A server whose fine-grained job-token permissions open merge-request reads (writes stay closed).
    fake.job_token_can_read_merge_requests = True
    assert requests.get(f"{fake.api_url}{MRS}", headers=job, timeout=5).status_code == 200
    assert (
        requests.post(f"{fake.api_url}{MRS}", headers=job, json={"title": "t"}, timeout=5).status_code == 401
    )
    private = requests.get(f"{fake.api_url}/job", headers={"PRIVATE-TOKEN": TOKEN}, timeout=5)
    assert private.status_code == 401


OAUTH = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0"  # no documented prefix


def oauth(fake: FakeGitLab, **state: bool) -> ProviderConfig:
    fake.add_token(OAUTH, "ci-bot", kind="oauth", **state)
    return config(fake, credential=Credential(OAUTH, None, "oauth", "GITLAB_OAUTH_TOKEN"))


def test_oauth_token_is_sent_as_bearer_and_opens_the_merge_request(fake: FakeGitLab) -> None:
    outcome = open_or_reuse(connect(oauth(fake)), spec())
    assert outcome.operation == "created" and fake.mr(PROJECT, 1)["author"]["username"] == "ci-bot"
    assert len(fake.requests) == 2
    for call in fake.requests:
        assert call.request_headers["authorization"] == f"Bearer {OAUTH}"
        assert "private-token" not in call.request_headers and "job-token" not in call.request_headers


@pytest.mark.parametrize(
    ("state", "words"),
    [
        ("expired", "invalid_token: Token is expired. You can either do re-authorization or token refresh"),
        ("revoked", "invalid_token: Token was revoked. You have to re-authorize from the user"),
    ],
)
def test_expired_or_revoked_oauth_token_is_reported_in_gitlabs_words(
    fake: FakeGitLab, state: str, words: str
) -> None:
    adapter = connect(oauth(fake, **{state: True}))
    message = provider_error(lambda: adapter.find_open("a", "main"), OAUTH)
    assert f"rejected the OAuth2 token from GITLAB_OAUTH_TOKEN (401 {words})" in message
    assert "last two hours" in message
    [call] = fake.requests
    assert call.response_headers["WWW-Authenticate"].startswith('Bearer realm="Protected by OAuth 2.0"')


def test_oauth_token_sent_as_an_access_token_is_refused_with_a_hint(fake: FakeGitLab) -> None:
    fake.add_token(OAUTH, "ci-bot", kind="oauth")
    adapter = connect(config(fake, token=OAUTH))  # GITLAB_TOKEN: PRIVATE-TOKEN, which knows no OAuth token
    message = provider_error(lambda: adapter.find_open("a", "main"), OAUTH)
    assert "rejected the token from GITLAB_TOKEN (401 Unauthorized)" in message
    assert "GITLAB_OAUTH_TOKEN or set UPDATE_GITOPS_REPO_TOKEN_TYPE=oauth" in message
    assert fake.requests[0].request_headers["private-token"] == OAUTH


def test_read_api_oauth_token_is_told_to_use_the_api_scope(fake: FakeGitLab) -> None:
    fake.add_token(OAUTH, "ci-bot", kind="oauth", scopes=("read_api",))
    adapter = connect(config(fake, credential=Credential(OAUTH, None, "oauth", "GITLAB_OAUTH_TOKEN")))
    message = provider_error(lambda: adapter.create(spec()), OAUTH)
    assert "(403 insufficient_scope" in message and "lacks the api scope" in message


def test_fake_takes_an_access_token_as_bearer_too(fake: FakeGitLab) -> None:
    """GitLab's docs: personal, project and group access tokens also work in OAuth-compliant headers."""
    answer = requests.get(f"{fake.api_url}{MRS}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert answer.status_code == 200


def test_read_api_token_is_told_to_use_the_api_scope(fake: FakeGitLab) -> None:
    fake.add_token("glpat-readonly000000000000", "ci-bot", scopes=("read_api",))
    message = error_of(connect(config(fake, token="glpat-readonly000000000000")).create, spec())
    assert "(403 insufficient_scope" in message and "lacks the api scope" in message


def test_reporter_is_told_which_role_is_needed(fake: FakeGitLab) -> None:
    fake.add_token("glpat-reporter00000000000", "rita")
    fake.projects[PROJECT]["_members"]["rita"] = REPORTER
    message = error_of(connect(config(fake, token="glpat-reporter00000000000")).create, spec())
    assert "(403 Forbidden)" in message and "Developer role" in message


@pytest.mark.parametrize("origin", ["https://gitlab.example.com/group/gitops.git", ORIGIN])
def test_not_found_names_the_project_and_what_to_check(fake: FakeGitLab, origin: str) -> None:
    if origin == ORIGIN:
        fake.projects[PROJECT]["_members"].pop("ci-bot")  # private project the token cannot see
    message = error_of(connect(config(fake, origin=parse_origin(origin))).find_open, "a", "main")
    assert "404 Project Not Found" in message and fake.api_url in message
    assert "nested group" in message and "-api-endpoint" in message


def test_fake_sees_the_raw_path_and_refuses_an_unencoded_project_path(fake: FakeGitLab) -> None:
    answer = requests.get(f"{fake.api_url}/projects/{PROJECT}", headers={"PRIVATE-TOKEN": TOKEN}, timeout=5)
    assert answer.status_code == 404 and answer.json() == {"error": "404 Not Found"}
    assert fake.requests[-1].path == f"/projects/{PROJECT}"


# -- retries, rate limits, outages -----------------------------------------------------------------------


def test_429_is_retried_after_the_retry_after_wait(fake: FakeGitLab, sleeps: list[float]) -> None:
    fake.fail_next(429, method="POST", headers={"Retry-After": "7"})
    pr = connect(config(fake, deadline=10.0)).create(spec())
    assert pr.number == 1
    assert [e.status for e in fake.requests] == [429, 201]
    assert sleeps == [7]


def test_rate_limit_longer_than_the_deadline_gives_up_at_once(fake: FakeGitLab, sleeps: list[float]) -> None:
    fake.fail_next(429, count=50, headers={"Retry-After": "600"})
    message = error_of(connect(config(fake, deadline=2.0)).find_open, "a", "main")
    assert "GitLab rate-limited the run (429" in message and "sent once" in message
    assert "the next wait, 600s (Retry-After), would end past the 2s retry deadline" in message
    # Neither the session nor python-gitlab's own 429 handling waited or retried.
    assert sleeps == [] and len(fake.requests) == 1


def test_transient_server_errors_are_retried(fake: FakeGitLab) -> None:
    fake.fail_next(502)
    fake.fail_next(503)
    assert connect(config(fake)).default_branch() == "main"
    assert [e.status for e in fake.requests] == [502, 503, 200]


def test_server_errors_until_the_deadline_give_a_clear_error(fake: FakeGitLab) -> None:
    fake.fail_next(503, count=10_000)
    started = time.monotonic()
    message = error_of(connect(config(fake, deadline=0.3)).find_open, "a", "main")
    assert time.monotonic() - started < 2.0
    assert len(fake.requests) > 1
    assert "GitLab answered 503 Service Unavailable trying to list merge requests" in message
    assert f"{len(fake.requests)} attempts, each answered 503" in message
    assert "would end past the 0.3s retry deadline" in message


def test_unreachable_api_says_which_endpoint(fake: FakeGitLab) -> None:
    endpoint = "http://127.0.0.1:9/api/v4"  # discard port: nothing listens
    message = error_of(connect(config(fake, api_endpoint=endpoint, deadline=0.2)).default_branch)
    assert f"cannot reach {endpoint}" in message
    assert "no connection made; 4 attempts, none connected" in message


def test_throttle_without_retry_after_is_waited_out_until_its_reset(
    fake: FakeGitLab, sleeps: list[float]
) -> None:
    fake.throttle_next(reset_in=3, retry_after=False, method="GET")
    assert connect(config(fake, deadline=10.0)).find_open("a", "main") is None
    assert [e.status for e in fake.requests] == [429, 200]
    assert fake.requests[0].response_headers["RateLimit-Remaining"] == "0"
    # Until RateLimit-Reset (whole seconds), and a second more for clocks that differ.
    assert len(sleeps) == 1 and 3 <= sleeps[0] <= 5


def test_throttle_far_from_its_reset_says_when_it_resets(fake: FakeGitLab, sleeps: list[float]) -> None:
    reset = fake.throttle_next(reset_in=3000, retry_after=False)
    message = error_of(connect(config(fake, deadline=2.0)).find_open, "a", "main")
    when = time.strftime("%H:%M:%S", time.gmtime(reset))
    assert "GitLab rate-limited the run (429 Retry later)" in message
    assert f"the limit resets at {when} UTC" in message and f"rerun after {when} UTC" in message
    assert sleeps == [] and len(fake.requests) == 1


def test_post_answered_500_is_sent_once_and_looked_for(fake: FakeGitLab) -> None:
    fake.fail_next(500, method="POST")
    message = error_of(connect(config(fake)).create, spec())
    assert [(e.method, e.status) for e in fake.requests] == [("POST", 500), ("GET", 200)]
    assert "answered 500 Internal Server Error trying to open the merge request" in message
    assert "sent once and not retried" in message and "retrying for up to" not in message
    assert message.endswith(f"it did not: no merge request {spec().head} -> main is open; rerun")


def test_read_timeout_is_not_called_unreachable(fake: FakeGitLab) -> None:
    fake.stall_next(2.0, count=2, method="GET")
    started = time.monotonic()
    message = error_of(connect(config(fake, timeout=0.2)).find_open, "a", "main")
    assert time.monotonic() - started < 1.5 and "cannot reach" not in message
    assert "accepted the request but did not answer in time" in message
    assert "2 attempts, none answered in time" in message


def test_create_that_timed_out_but_went_through_converges_on_the_merge_request(fake: FakeGitLab) -> None:
    fake.stall_next(2.0, count=2, method="POST", processed=True)
    pr = connect(config(fake, timeout=0.2, warn=lambda _m: None)).create(spec())
    assert pr.number == 1 and len(fake.merge_requests) == 1
    # The first try opened it (its answer came too late); the second was a duplicate; then the look.
    assert [(e.method, e.status) for e in fake.requests] == [("POST", 201), ("POST", 409), ("GET", 200)]


# -- a merge whose answer was lost ---------------------------------------------------------------------


def test_merge_that_went_through_but_was_answered_502_is_reported_merged(fake: FakeGitLab) -> None:
    warnings: list[str] = []
    adapter = connect(config(fake, warn=warnings.append))
    pr = adapter.create(spec())
    fake.requests.clear()
    fake.fail_next(502, method="PUT", path="/merge$", processed=True)
    adapter.merge(pr, "merge")
    assert fake.mr(PROJECT, 1)["state"] == "merged"
    # Merged, answered 502; the resent merge: 405 (not open any more); the merge request: merged.
    assert [(e.method, e.status) for e in fake.requests] == [("PUT", 502), ("PUT", 405), ("GET", 200)]
    assert len(warnings) == 1 and "!1" in warnings[0] and "is merged" in warnings[0]


def test_merge_whose_answers_never_came_but_went_through_is_reported_merged(fake: FakeGitLab) -> None:
    adapter = connect(config(fake, timeout=0.2, warn=lambda _m: None))
    pr = adapter.create(spec())
    fake.requests.clear()
    fake.stall_next(2.0, count=2, method="PUT", path="/merge$", processed=True)
    adapter.merge(pr, "squash")
    assert fake.mr(PROJECT, 1)["state"] == "merged"
    assert [e.method for e in fake.requests] == ["PUT", "PUT", "GET"]


def test_merge_that_kept_failing_and_did_not_go_through_says_what_was_tried(fake: FakeGitLab) -> None:
    adapter = connect(config(fake, deadline=0.3))
    pr = adapter.create(spec())
    fake.requests.clear()
    fake.fail_next(503, count=1000, method="PUT")
    message = error_of(adapter.merge, pr, "merge")
    puts = fake.calls("PUT")
    assert "GitLab answered 503 Service Unavailable trying to merge !1" in message
    assert f"{len(puts)} attempts, each answered 503" in message
    assert fake.mr(PROJECT, 1)["state"] == "opened" and fake.requests[-1].method == "GET"


# -- the fake itself -------------------------------------------------------------------------------------


def test_fake_paginates_like_gitlab(fake: FakeGitLab) -> None:
    for n in range(5):
        fake.add_merge_request(PROJECT, f"b{n}", "main", f"MR {n}", author="alice")
    client = gitlab.Gitlab(fake.web_url, private_token=TOKEN)
    project = client.projects.get(PROJECT, lazy=True)
    listed = project.mergerequests.list(get_all=True, per_page=2)
    assert [mr.iid for mr in listed] == [5, 4, 3, 2, 1]
    pages = fake.calls("GET", "/merge_requests$")
    assert len(pages) == 3
    first = pages[0].response_headers
    assert (first["X-Page"], first["X-Next-Page"], first["X-Total"], first["X-Total-Pages"]) == (
        "1",
        "2",
        "5",
        "3",
    )
    assert 'rel="next"' in first["Link"] and pages[-1].response_headers["X-Next-Page"] == ""


def test_fake_serves_a_gitlab_under_a_relative_url() -> None:
    with FakeGitLab(relative_root="/gitlab") as server:
        assert isinstance(server, FakeGitLab)
        server.add_token(TOKEN, "ci-bot")
        server.add_repo("group/gitops", members={"ci-bot": MAINTAINER})
        origin = parse_origin(f"{server.web_url}/group/gitops.git")
        settings = ProviderConfig(
            origin=origin,
            credential=Credential(TOKEN, None, "token", "GITLAB_TOKEN"),
            api_endpoint=server.api_url,
            deadline=2.0,
        )
        outcome = open_or_reuse(connect(settings), spec())
        assert outcome.pr.url == f"{server.web_url}/group/gitops/-/merge_requests/1"
        assert server.requests[-1].path == "/projects/group%2Fgitops/merge_requests"


def test_python_gitlab_is_imported_only_by_the_gitlab_adapter() -> None:
    root = pathlib.Path(gl_provider.__file__).parent.parent
    for package in ("updater", "providers"):
        for source in (root / package).glob("*.py"):
            if source.name == "gitlab.py" and package == "providers":
                continue
            text = source.read_text()
            assert "import gitlab" not in text and "from gitlab" not in text, source


# -- end to end: the CLI as a pipeline runs it ------------------------------------------------------------


def test_cli_opens_then_reuses_and_merges_a_merge_request(
    git_server: GitServer, tmp_path: pathlib.Path
) -> None:
    """The installed CLI pushes to the real git server and talks to the fake over a real socket."""
    url = git_server.create_repo("group/sub/gitops.git", copy_fixture("hello-world", tmp_path / "seed"))
    with FakeGitLab() as server:
        assert isinstance(server, FakeGitLab)
        server.add_token(DEFAULT_TOKEN, "ci-bot")
        server.add_repo(PROJECT, members={"ci-bot": MAINTAINER})
        env = {**make_home(tmp_path), "GITLAB_TOKEN": DEFAULT_TOKEN}
        args = ["-git-revision=1b39bd0", "-substitute=imageName=app@sha256:0123", "-scm-provider=gitlab"]
        args.append(f"-api-endpoint={server.api_url}")
        run = run_tool(args, clone(url, tmp_path / "first", token=DEFAULT_TOKEN, detached=True), env)
        assert run.returncode == 0, run.stderr
        [mr] = server.merge_requests
        assert run.stdout == f"{mr['web_url']}\n"
        assert (mr["source_branch"], mr["target_branch"]) == ("update-to-commit-1b39bd0", "main")
        assert [(e.method, e.path) for e in server.requests] == [("GET", MRS), ("POST", MRS)]

        server.requests.clear()
        again = clone(url, tmp_path / "again", token=DEFAULT_TOKEN, detached=True)
        run = run_tool([*args, "-merge-pull-request", "-merge-method=squash"], again, env)
        assert run.returncode == 0, run.stderr
        assert run.stdout == f"{mr['web_url']}\n" and len(server.merge_requests) == 1
        branch = f"/projects/{ENCODED}/repository/branches/update-to-commit-1b39bd0"
        assert [(e.method, e.path) for e in server.requests] == [
            ("GET", MRS),  # reuse
            ("GET", branch),  # the head GitLab must have caught up with before merging
            ("PUT", f"{MRS}/1/merge"),
        ]
        assert mr["state"] == "merged" and mr["squash_commit_sha"]
