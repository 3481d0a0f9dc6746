"""-merge-when=checks-pass and -wait (issue 11 item 5): the policy of providers/merging.py and each
adapter's auto-merge and merge state, on the stateful fakes, with a clock that only pretends to sleep.

Each fake models its forge's documented behaviour (see the fakes' docstrings): GitHub's GraphQL
`enablePullRequestAutoMerge` and its "clean status" refusal, GitLab's `auto_merge` /
`merge_when_pipeline_succeeds`, Bitbucket Data Center's `autoMerge` merge request (8.15+) and Bitbucket
Cloud's pull-request statuses. Tests flip the fake to "checks passed" from inside the clock's sleep to
see the merge happen while the tool waits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from providers import merging
from providers.base import MergeState, ProviderConfig, PullRequest, PullRequestSpec, open_or_reuse
from tests.conftest import provider_error
from tests.fakes.github import FakeGitHub, Protection
from updater.errors import EXIT_NOT_MERGED, EXIT_NOT_MERGED_YET, NotMerged, NotMergedYet, ProviderError
from updater.values import Credential, parse_origin

TOKEN = "ghp_merge_when_secret"


class FakeClock:
    """monotonic() and sleep() that only count; `on_sleep(n)` runs before the n-th sleep returns."""

    def __init__(self, on_sleep: Callable[[int], None] | None = None) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)


# -- the policy, on a scripted adapter ------------------------------------------------------------------


class Scripted:
    """An adapter whose merge states come from a list (the last one repeats)."""

    name = "bitbucket-cloud"

    def __init__(self, states: list[MergeState], auto: str | None = None) -> None:
        self.states = states
        self.auto = auto
        self.calls: list[str] = []
        if auto is not None:
            self.auto_merge = self._auto_merge

    def _auto_merge(self, pr: PullRequest, method: str) -> str:
        self.calls.append(f"auto_merge {method}")
        assert self.auto is not None
        return self.auto

    def merge(self, pr: PullRequest, method: str) -> None:
        self.calls.append(f"merge {method}")

    def merge_state(self, pr: PullRequest) -> MergeState:
        self.calls.append("state")
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]


PR = PullRequest(7, "https://forge.example/pr/7", "t", "b")


def test_merge_now_is_one_merge_call_and_no_look() -> None:
    adapter = Scripted([MergeState("open")])
    assert merging.land(adapter, PR, merge=True, when="now", method="squash", clock=FakeClock()) == "merged"
    assert adapter.calls == ["merge squash"]


def test_nothing_asked_is_not_requested_and_costs_nothing() -> None:
    adapter = Scripted([MergeState("open")])
    assert merging.land(adapter, PR, merge=False, clock=FakeClock()) == "not-requested"
    assert adapter.calls == []


def test_polls_back_off_from_two_seconds_to_a_minute_and_stop_at_the_deadline() -> None:
    adapter = Scripted([MergeState("open", "pending", detail="waiting for ci/build")], auto="auto-enabled")
    clock = FakeClock()
    with pytest.raises(NotMergedYet) as caught:
        merging.land(adapter, PR, merge=True, when="checks-pass", wait=600, clock=clock)
    assert clock.sleeps == [2, 4, 8, 16, 32, *[60] * 8, 58]
    assert sum(clock.sleeps) == 600
    assert caught.value.merge == "timed-out" and caught.value.exit_code == EXIT_NOT_MERGED_YET == 4
    message = str(caught.value)
    assert "-wait=10m" in message and "waiting for ci/build" in message and "auto-merge stays on" in message
    assert "\n" not in message


def test_without_auto_merge_the_tool_waits_for_the_checks_and_merges() -> None:
    states = [MergeState("open", "pending")] * 3 + [MergeState("open", "passed", ready=True)]
    adapter = Scripted(states)
    clock = FakeClock()
    status = merging.land(
        adapter, PR, merge=True, when="checks-pass", method="rebase", wait=3600, clock=clock
    )
    assert status == "merged"
    assert adapter.calls == ["state"] * 4 + ["merge rebase"]
    assert clock.sleeps == [2, 4, 8]


def test_without_auto_merge_and_no_wait_checks_once_then_says_to_wait() -> None:
    adapter = Scripted([MergeState("open", "pending", detail="1 build in progress")])
    with pytest.raises(NotMergedYet) as caught:
        merging.land(adapter, PR, merge=True, when="checks-pass", wait=0, clock=FakeClock())
    assert caught.value.merge == "checks-pending"
    assert "-wait=DURATION" in str(caught.value) and "1 build in progress" in str(caught.value)
    assert adapter.calls == ["state"]


def test_without_auto_merge_and_no_wait_merges_when_ready_already() -> None:
    adapter = Scripted([MergeState("open", "passed", ready=True)])
    assert merging.land(adapter, PR, merge=True, when="checks-pass", clock=FakeClock()) == "merged"


@pytest.mark.parametrize(
    ("state", "merge", "code"),
    [
        (MergeState("closed"), "closed", EXIT_NOT_MERGED),
        (MergeState("open", "failed", detail="ci/build failed"), "checks-failed", EXIT_NOT_MERGED),
        (MergeState("open", "pending", auto_merge=False), "auto-disabled", EXIT_NOT_MERGED),
    ],
)
def test_waiting_ends_with_the_reason_it_will_not_land(state: MergeState, merge: str, code: int) -> None:
    adapter = Scripted([MergeState("open", "pending", auto_merge=True), state], auto="auto-enabled")
    with pytest.raises(NotMerged) as caught:
        merging.land(adapter, PR, merge=True, when="checks-pass", wait=60, clock=FakeClock())
    assert caught.value.merge == merge and caught.value.exit_code == code == 3
    assert "\n" not in str(caught.value)


def test_wait_without_a_merge_waits_for_someone_else_to_merge() -> None:
    adapter = Scripted([MergeState("open", "pending"), MergeState("merged")])
    clock = FakeClock()
    assert merging.land(adapter, PR, merge=False, wait=60, clock=clock) == "merged"
    assert adapter.calls == ["state", "state"] and clock.sleeps == [2]


def test_auto_enabled_without_wait_returns_at_once() -> None:
    adapter = Scripted([MergeState("open")], auto="auto-enabled")
    log = Log()
    assert (
        merging.land(adapter, PR, merge=True, when="checks-pass", clock=FakeClock(), log=log)
        == "auto-enabled"
    )
    assert adapter.calls == ["auto_merge merge"]
    assert log.lines == ["Bitbucket Cloud merges pull request #7 when its checks pass (auto-merge enabled)"]


# -- GitHub ---------------------------------------------------------------------------------------------

GH_REPO = "acme/gitops"


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_token(TOKEN, login="ci-bot")
        fake.add_token("read-only", login="viewer", access="read")
        fake.add_repo(
            GH_REPO,
            branches=["feature"],
            allow_auto_merge=True,
            protection={"main": Protection(required_checks=("ci/build",))},
        )
        yield fake


def gh_adapter(
    fake: FakeGitHub, token: str = TOKEN, origin: str = "https://github.com/acme/gitops.git"
) -> Any:
    from providers import github

    config = ProviderConfig(
        origin=parse_origin(origin),
        credential=Credential(token, None, "token", "GITHUB_TOKEN"),
        api_endpoint=fake.api_url,
        deadline=2.0,
        timeout=5.0,
        warn=lambda _m: None,
    )
    return github.connect(config)


def gh_open(fake: FakeGitHub, adapter: Any) -> PullRequest:
    outcome = open_or_reuse(adapter, PullRequestSpec(head="feature", base="main", title="Deploy", body="x"))
    fake.requests.clear()
    return outcome.pr


def graphql_calls(fake: FakeGitHub) -> list[Any]:
    return [json.loads(c.request_body) for c in fake.requests if c.path.endswith("/graphql")]


def test_github_enables_auto_merge_with_one_graphql_request(gh: FakeGitHub) -> None:
    adapter = gh_adapter(gh)
    pr = gh_open(gh, adapter)
    assert merging.land(adapter, pr, merge=True, when="checks-pass", method="squash", clock=FakeClock()) == (
        "auto-enabled"
    )
    [call] = gh.requests
    # Enterprise Server's GraphQL sits beside /api/v3, at /api/graphql.
    assert (call.method, call.path) == ("POST", "/api/graphql")
    sent = json.loads(call.request_body)
    assert "enablePullRequestAutoMerge" in sent["query"]
    [pull] = gh.pulls(GH_REPO)
    assert sent["variables"]["mergeMethod"] == "SQUASH"
    assert sent["variables"]["expectedHeadOid"] == gh.repos[GH_REPO].branch_sha("feature")
    assert pull.auto_merge is not None and not pull.merged


def test_github_auto_merge_merges_once_the_check_passes_while_waiting(gh: FakeGitHub) -> None:
    adapter = gh_adapter(gh)
    pr = gh_open(gh, adapter)
    clock = FakeClock(on_sleep=lambda n: gh.pass_check(GH_REPO, pr.number, "ci/build") if n == 2 else None)
    status = merging.land(adapter, pr, merge=True, when="checks-pass", method="merge", wait=1800, clock=clock)
    assert status == "merged"
    [pull] = gh.pulls(GH_REPO)
    assert pull.merged and pull.merged_by == "ci-bot"
    assert clock.sleeps == [2, 4]
    assert len(graphql_calls(gh)) == 1 + 3  # the mutation, then three looks


def test_github_clean_status_falls_back_to_a_direct_merge(gh: FakeGitHub) -> None:
    gh.repos[GH_REPO].protection.clear()  # nothing to wait for: GitHub refuses to enable auto-merge
    adapter = gh_adapter(gh)
    pr = gh_open(gh, adapter)
    assert (
        merging.land(adapter, pr, merge=True, when="checks-pass", method="rebase", clock=FakeClock())
        == "merged"
    )
    assert [(c.method, c.path.rsplit("/", 1)[-1]) for c in gh.requests] == [
        ("POST", "graphql"),
        ("PUT", "merge"),
    ]
    answer = gh.requests[0].response_json
    assert answer["data"] == {"enablePullRequestAutoMerge": None}
    assert answer["errors"][0]["message"] == "Pull request Pull request is in clean status"
    [pull] = gh.pulls(GH_REPO)
    assert pull.merged and pull.merge_method == "rebase"


def test_github_unstable_status_falls_back_to_a_direct_merge_too(gh: FakeGitHub) -> None:
    gh.repos[GH_REPO].protection.clear()
    adapter = gh_adapter(gh)
    pr = gh_open(gh, adapter)
    gh.fail_check(GH_REPO, pr.number, "lint")  # not required: GitHub merges all the same
    assert merging.land(adapter, pr, merge=True, when="checks-pass", clock=FakeClock()) == "merged"
    assert "unstable status" in gh.requests[0].response_json["errors"][0]["message"]


def test_github_repository_without_auto_merge_is_one_clear_line(gh: FakeGitHub) -> None:
    gh.repos[GH_REPO].allow_auto_merge = False
    adapter = gh_adapter(gh)
    pr = gh_open(gh, adapter)
    message = provider_error(lambda: adapter.auto_merge(pr, "merge"), TOKEN)
    assert "Auto merge is not allowed for this repository" in message
    assert "Allow auto-merge" in message and "-merge-when=now" in message
    assert not gh.pulls(GH_REPO)[0].merged


def test_github_read_only_token_is_told_the_permission(gh: FakeGitHub) -> None:
    adapter = gh_adapter(gh)
    pr = gh_open(gh, adapter)
    reader = gh_adapter(gh, token="read-only")
    message = provider_error(lambda: reader.auto_merge(pr, "merge"), "read-only", TOKEN)
    assert "Resource not accessible" in message and "Pull requests write" in message


def test_github_bad_token_on_graphql_is_the_usual_401_line(gh: FakeGitHub) -> None:
    adapter = gh_adapter(gh)
    pr = gh_open(gh, adapter)
    gh.tokens.pop(TOKEN)
    message = provider_error(lambda: adapter.auto_merge(pr, "merge"), TOKEN)
    assert "401" in message and "invalid, expired or revoked" in message


def test_github_failed_required_check_ends_the_wait(gh: FakeGitHub) -> None:
    adapter = gh_adapter(gh)
    pr = gh_open(gh, adapter)
    clock = FakeClock(on_sleep=lambda n: gh.fail_check(GH_REPO, pr.number, "ci/build"))
    with pytest.raises(NotMerged) as caught:
        merging.land(adapter, pr, merge=True, when="checks-pass", wait=600, clock=clock)
    assert caught.value.merge == "checks-failed" and "ci/build failed" in str(caught.value)


def test_github_auto_merge_turned_off_while_waiting(gh: FakeGitHub) -> None:
    adapter = gh_adapter(gh)
    pr = gh_open(gh, adapter)
    clock = FakeClock(on_sleep=lambda n: gh.disable_auto_merge(GH_REPO, pr.number))
    with pytest.raises(NotMerged) as caught:
        merging.land(adapter, pr, merge=True, when="checks-pass", wait=600, clock=clock)
    assert caught.value.merge == "auto-disabled"


def test_github_closed_while_waiting(gh: FakeGitHub) -> None:
    adapter = gh_adapter(gh)
    pr = gh_open(gh, adapter)

    def close(_n: int) -> None:
        gh.pulls(GH_REPO)[0].state = "closed"

    with pytest.raises(NotMerged) as caught:
        merging.land(adapter, pr, merge=True, when="checks-pass", wait=600, clock=FakeClock(close))
    assert caught.value.merge == "closed"


def test_github_graphql_of_api_github_com_is_at_slash_graphql() -> None:
    with FakeGitHub(prefix="") as fake:
        fake.add_token(TOKEN)
        fake.add_repo(
            GH_REPO, branches=["feature"], allow_auto_merge=True, protection={"main": Protection(1)}
        )
        adapter = gh_adapter(fake)
        pr = gh_open(fake, adapter)
        assert adapter.auto_merge(pr, "merge") == "auto-enabled"
        assert [c.path for c in fake.requests] == ["/graphql"]
        state = adapter.merge_state(pr)
        assert (state.state, state.checks, state.auto_merge, state.ready) == ("open", "none", True, False)


def test_github_merge_state_names_the_required_checks_it_waits_for(gh: FakeGitHub) -> None:
    adapter = gh_adapter(gh)
    pr = gh_open(gh, adapter)
    gh.fail_check(GH_REPO, pr.number, "lint")  # optional: does not count as failed
    state = adapter.merge_state(pr)
    assert (state.state, state.checks, state.ready, state.auto_merge) == ("open", "pending", False, False)
    assert state.detail == "waiting for ci/build"
    gh.pass_check(GH_REPO, pr.number, "ci/build")
    state = adapter.merge_state(pr)
    assert (state.checks, state.ready) == ("passed", True)


# -- GitLab ---------------------------------------------------------------------------------------------

GL_PROJECT = "platform/deploy/gitops"
GL_TOKEN = "glpat-merge-when-secret"


@pytest.fixture
def gl() -> Iterator[Any]:
    from tests.fakes.gitlab import MAINTAINER, FakeGitLab

    with FakeGitLab() as server:
        server.add_token(GL_TOKEN, "ci-bot")
        server.add_repo(GL_PROJECT, members={"ci-bot": MAINTAINER}, pipeline_must_succeed=True)
        yield server


def gl_adapter(fake: Any) -> Any:
    from providers import gitlab

    config = ProviderConfig(
        origin=parse_origin(f"https://gitlab.example.com/{GL_PROJECT}.git"),
        credential=Credential(GL_TOKEN, None, "token", "GITLAB_TOKEN"),
        api_endpoint=fake.api_url,
        deadline=2.0,
        timeout=5.0,
        warn=lambda _m: None,
    )
    return gitlab.connect(config)


def gl_open(fake: Any, adapter: Any, pipeline: str | None = "running") -> PullRequest:
    pr = open_or_reuse(adapter, PullRequestSpec(head="deploy", base="main", title="Deploy", body="x")).pr
    fake.mr(GL_PROJECT, pr.number)["_pipeline"] = pipeline
    fake.requests.clear()
    return pr


def test_gitlab_sets_auto_merge_in_one_request_with_both_parameter_names(gl: Any) -> None:
    adapter = gl_adapter(gl)
    pr = gl_open(gl, adapter)
    assert merging.land(adapter, pr, merge=True, when="checks-pass", method="squash", clock=FakeClock()) == (
        "auto-enabled"
    )
    [call] = gl.requests
    assert call.method == "PUT" and call.path.endswith(f"/merge_requests/{pr.number}/merge")
    sent = json.loads(call.request_body)
    assert sent["auto_merge"] is True and sent["merge_when_pipeline_succeeds"] is True
    assert sent["squash"] is True and sent["sha"] == gl.mr(GL_PROJECT, pr.number)["sha"]
    mr = gl.mr(GL_PROJECT, pr.number)
    assert mr["state"] == "opened" and mr["merge_when_pipeline_succeeds"] is True


def test_gitlab_merges_when_the_pipeline_succeeds_while_the_tool_waits(gl: Any) -> None:
    adapter = gl_adapter(gl)
    pr = gl_open(gl, adapter)
    clock = FakeClock(on_sleep=lambda n: gl.finish_pipeline(GL_PROJECT, pr.number) if n == 3 else None)
    assert merging.land(adapter, pr, merge=True, when="checks-pass", wait=900, clock=clock) == "merged"
    assert gl.mr(GL_PROJECT, pr.number)["state"] == "merged"
    assert clock.sleeps == [2, 4, 8]


def test_gitlab_before_17_11_is_served_by_merge_when_pipeline_succeeds(gl: Any) -> None:
    gl.version = (16, 11)  # ignores auto_merge; only a running pipeline has a strategy
    adapter = gl_adapter(gl)
    pr = gl_open(gl, adapter)
    assert adapter.auto_merge(pr, "merge") == "auto-enabled"
    assert gl.mr(GL_PROJECT, pr.number)["merge_when_pipeline_succeeds"] is True


def test_gitlab_without_a_pipeline_merges_at_once(gl: Any) -> None:
    gl.projects[GL_PROJECT]["only_allow_merge_if_pipeline_succeeds"] = False
    adapter = gl_adapter(gl)
    pr = gl_open(gl, adapter, pipeline=None)
    assert merging.land(adapter, pr, merge=True, when="checks-pass", clock=FakeClock()) == "merged"
    assert gl.mr(GL_PROJECT, pr.number)["state"] == "merged" and len(gl.requests) == 1


def test_gitlab_failed_pipeline_is_refused_in_one_line(gl: Any) -> None:
    adapter = gl_adapter(gl)
    pr = gl_open(gl, adapter, pipeline="failed")
    message = provider_error(lambda: adapter.auto_merge(pr, "merge"), GL_TOKEN)
    assert message.startswith(f"GitLab refused to set auto-merge on !{pr.number}") and "405" in message


def test_gitlab_failed_pipeline_while_waiting_ends_the_wait(gl: Any) -> None:
    adapter = gl_adapter(gl)
    pr = gl_open(gl, adapter)
    clock = FakeClock(on_sleep=lambda n: gl.finish_pipeline(GL_PROJECT, pr.number, "failed"))
    with pytest.raises(NotMerged) as caught:
        merging.land(adapter, pr, merge=True, when="checks-pass", wait=900, clock=clock)
    assert caught.value.merge == "checks-failed" and "failed" in str(caught.value)


def test_gitlab_merge_state_reads_pipeline_and_auto_merge(gl: Any) -> None:
    adapter = gl_adapter(gl)
    pr = gl_open(gl, adapter)
    state = adapter.merge_state(pr)
    assert (state.state, state.checks, state.ready, state.auto_merge) == ("open", "pending", False, False)
    assert state.detail == "pipeline running"
    gl.finish_pipeline(GL_PROJECT, pr.number)
    state = adapter.merge_state(pr)
    assert (state.checks, state.ready) == ("passed", True)


# -- Bitbucket Data Center ----------------------------------------------------------------------------

BBS_TOKEN = "bbs-merge-when-secret"


@pytest.fixture
def bbs() -> Iterator[Any]:
    from tests.fakes.bitbucket_server import FakeBitbucketServer

    with FakeBitbucketServer(context="/bitbucket") as server:
        server.add_token(BBS_TOKEN, "ci-bot")
        server.add_repo(
            "PROJ", "gitops", permissions={"ci-bot": "REPO_WRITE"}, required_builds=1, auto_merge=True
        )
        yield server


def bbs_adapter(fake: Any) -> Any:
    from providers import bitbucket_server

    config = ProviderConfig(
        origin=parse_origin(f"{fake.base_url}/scm/PROJ/gitops.git"),
        credential=Credential(BBS_TOKEN, None, "token", "BITBUCKET_SERVER_TOKEN"),
        deadline=2.0,
        timeout=5.0,
        warn=lambda _m: None,
    )
    return bitbucket_server.connect(config)


def bbs_open(fake: Any, adapter: Any) -> PullRequest:
    pr = open_or_reuse(adapter, PullRequestSpec(head="deploy", base="main", title="Deploy", body="x")).pr
    fake.requests.clear()
    return pr


def test_bitbucket_dc_requests_auto_merge_on_the_merge_call(bbs: Any) -> None:
    adapter = bbs_adapter(bbs)
    pr = bbs_open(bbs, adapter)
    assert merging.land(adapter, pr, merge=True, when="checks-pass", clock=FakeClock()) == "auto-enabled"
    assert [(c.method, c.path.rsplit("/", 1)[-1]) for c in bbs.requests] == [
        ("GET", "application-properties"),
        ("POST", "merge"),
    ]
    assert json.loads(bbs.requests[1].request_body) == {"autoMerge": True}
    pull = bbs.pull("PROJ", "gitops", pr.number)
    assert pull["state"] == "OPEN" and pull["_auto_merge_request"]["strategyId"] == "no-ff"


def test_bitbucket_dc_auto_merge_lands_when_the_builds_pass_while_waiting(bbs: Any) -> None:
    adapter = bbs_adapter(bbs)
    pr = bbs_open(bbs, adapter)
    clock = FakeClock(on_sleep=lambda n: bbs.pass_builds("PROJ", "gitops", pr.number) if n == 1 else None)
    assert merging.land(adapter, pr, merge=True, when="checks-pass", wait=600, clock=clock) == "merged"
    assert bbs.pull("PROJ", "gitops", pr.number)["state"] == "MERGED"


def test_bitbucket_dc_with_nothing_vetoing_merges_at_once(bbs: Any) -> None:
    adapter = bbs_adapter(bbs)
    pr = bbs_open(bbs, adapter)
    bbs.pass_builds("PROJ", "gitops", pr.number)
    assert merging.land(adapter, pr, merge=True, when="checks-pass", clock=FakeClock()) == "merged"


def test_bitbucket_dc_before_8_15_waits_and_merges_itself(bbs: Any) -> None:
    bbs.version = "8.9.4"
    warnings: list[str] = []
    adapter = bbs_adapter(bbs)
    adapter.config = ProviderConfig(**{**adapter.config.__dict__, "warn": warnings.append})
    pr = bbs_open(bbs, adapter)
    clock = FakeClock(on_sleep=lambda n: bbs.pass_builds("PROJ", "gitops", pr.number) if n == 2 else None)
    assert merging.land(adapter, pr, merge=True, when="checks-pass", wait=600, clock=clock) == "merged"
    assert "8.9.4 has no auto-merge" in warnings[0]
    merges = [c for c in bbs.requests if c.method == "POST"]
    assert len(merges) == 1 and "autoMerge" not in json.loads(merges[0].request_body or b"{}")


def test_bitbucket_dc_repository_with_auto_merge_off_falls_back_to_waiting(bbs: Any) -> None:
    bbs.repos[("PROJ", "gitops")]["_auto_merge"] = False
    warnings: list[str] = []
    adapter = bbs_adapter(bbs)
    adapter.config = ProviderConfig(**{**adapter.config.__dict__, "warn": warnings.append})
    pr = bbs_open(bbs, adapter)
    with pytest.raises(NotMergedYet) as caught:
        merging.land(adapter, pr, merge=True, when="checks-pass", wait=0, clock=FakeClock())
    assert caught.value.merge == "checks-pending"
    assert "Not all required builds are successful yet" in str(caught.value)
    assert "auto-merge is off for PROJ/gitops" in warnings[0]


def test_bitbucket_dc_declined_while_waiting(bbs: Any) -> None:
    bbs.version = "8.9.4"
    adapter = bbs_adapter(bbs)
    pr = bbs_open(bbs, adapter)

    def decline(_n: int) -> None:
        bbs.pull("PROJ", "gitops", pr.number)["state"] = "DECLINED"

    with pytest.raises(NotMerged) as caught:
        merging.land(adapter, pr, merge=True, when="checks-pass", wait=600, clock=FakeClock(decline))
    assert caught.value.merge == "closed"


# -- Bitbucket Cloud ------------------------------------------------------------------------------------

BBC_TOKEN = "bbc-access-token-secret"


@pytest.fixture(scope="module")
def bbc_server() -> Iterator[Any]:
    from tests.fakes.bitbucket_cloud import FakeBitbucketCloud

    with FakeBitbucketCloud() as fake:  # one per module: stopping one takes up to half a second
        yield fake


@pytest.fixture
def bbc(bbc_server: Any) -> Any:
    bbc_server.reset()
    bbc_server.add_access_token(BBC_TOKEN)
    bbc_server.add_repo("team", "gitops", mainbranch="main", require_passing_builds=True)
    return bbc_server


def bbc_adapter(fake: Any) -> Any:
    from providers import bitbucket_cloud

    config = ProviderConfig(
        origin=parse_origin("https://bitbucket.org/team/gitops.git"),
        credential=Credential(BBC_TOKEN, "x-token-auth", "access-token", "BITBUCKET_ACCESS_TOKEN"),
        api_endpoint=fake.api_url,
        deadline=2.0,
        timeout=5.0,
        warn=lambda _m: None,
    )
    return bitbucket_cloud.connect(config)


def bbc_open(fake: Any, adapter: Any) -> tuple[PullRequest, Any]:
    pr = open_or_reuse(adapter, PullRequestSpec(head="deploy", base="main", title="Deploy", body="x")).pr
    pull = fake.pull(fake.repos["team/gitops"], pr.number)
    fake.set_status(pull, "pipeline", "INPROGRESS")
    fake.requests.clear()
    return pr, pull


def test_bitbucket_cloud_has_no_auto_merge_so_the_tool_waits_for_the_builds_and_merges(bbc: Any) -> None:
    adapter = bbc_adapter(bbc)
    assert not hasattr(adapter, "auto_merge")
    pr, pull = bbc_open(bbc, adapter)
    clock = FakeClock(on_sleep=lambda n: bbc.set_status(pull, "pipeline", "SUCCESSFUL") if n == 2 else None)
    status = merging.land(
        adapter, pr, merge=True, when="checks-pass", method="squash", wait=1200, clock=clock
    )
    assert status == "merged"
    assert pull.state == "MERGED" and pull.merge_strategy == "squash"
    paths = [f"{c.method} {c.path.split('/pullrequests/')[-1]}" for c in bbc.requests]
    assert paths == [f"GET {pr.number}", f"GET {pr.number}/statuses"] * 3 + [f"POST {pr.number}/merge"]
    assert clock.sleeps == [2, 4]


def test_bitbucket_cloud_does_not_merge_before_ci_has_reported_anything(bbc: Any) -> None:
    """Right after the push no build status exists yet: that is not "checks passed"."""
    adapter = bbc_adapter(bbc)
    pr = open_or_reuse(adapter, PullRequestSpec(head="deploy", base="main", title="Deploy", body="x")).pr
    pull = bbc.pull(bbc.repos["team/gitops"], pr.number)
    # The pipeline reports only after the first look; then it passes.
    clock = FakeClock(
        on_sleep=lambda n: bbc.set_status(pull, "pipeline", "INPROGRESS" if n == 1 else "SUCCESSFUL")
    )
    status = merging.land(adapter, pr, merge=True, when="checks-pass", wait=1200, clock=clock)
    assert status == "merged" and pull.state == "MERGED"
    assert clock.sleeps == [2, 4]  # looked three times: none (not merged), in progress, passed


def test_bitbucket_cloud_without_any_ci_merges_once_ci_had_time_to_report(bbc: Any) -> None:
    bbc.reset()
    bbc.add_access_token(BBC_TOKEN)
    bbc.add_repo("team", "gitops", mainbranch="main")  # no build requirement, no pipeline
    adapter = bbc_adapter(bbc)
    pr = open_or_reuse(adapter, PullRequestSpec(head="deploy", base="main", title="Deploy", body="x")).pr
    clock = FakeClock()
    status = merging.land(adapter, pr, merge=True, when="checks-pass", wait=1200, clock=clock)
    assert status == "merged"
    assert sum(clock.sleeps) >= merging.NO_CHECKS_GRACE and sum(clock.sleeps) < 2 * merging.NO_CHECKS_GRACE


def test_bitbucket_cloud_failed_build_ends_the_wait(bbc: Any) -> None:
    adapter = bbc_adapter(bbc)
    pr, pull = bbc_open(bbc, adapter)
    clock = FakeClock(on_sleep=lambda n: bbc.set_status(pull, "pipeline", "FAILED"))
    with pytest.raises(NotMerged) as caught:
        merging.land(adapter, pr, merge=True, when="checks-pass", wait=1200, clock=clock)
    assert caught.value.merge == "checks-failed" and "pipeline failed" in str(caught.value)
    assert pull.state == "OPEN"


def test_bitbucket_cloud_times_out_with_the_builds_still_running(bbc: Any) -> None:
    adapter = bbc_adapter(bbc)
    pr, _pull = bbc_open(bbc, adapter)
    clock = FakeClock()
    with pytest.raises(NotMergedYet) as caught:
        merging.land(adapter, pr, merge=True, when="checks-pass", wait=90, clock=clock)
    assert caught.value.merge == "timed-out" and sum(clock.sleeps) == 90
    message = str(caught.value)
    assert "-wait=1m30s" in message and "1 build in progress: pipeline" in message and "still open" in message


# -- the CLI, end to end: real git server, fake forge, -output=json --------------------------------------

REV = "9c6ab68e75bec86422bb572ba904e5b853e32808"
CLI_ARGS = [f"-git-revision={REV}", "-substitute=imageName=registry.example.com/app@sha256:0123"]


@pytest.fixture
def e2e(git_server: Any, tmp_path: Path) -> Iterator[tuple[FakeGitHub, Path, dict[str, str]]]:
    from tests.gitserver import DEFAULT_TOKEN, clone, copy_fixture, make_home

    url = git_server.create_repo(
        "acme/hello-world-gitops.git", copy_fixture("hello-world", tmp_path / "seed")
    )
    with FakeGitHub() as fake:
        fake.add_token(DEFAULT_TOKEN)
        fake.add_repo(
            "acme/hello-world-gitops",
            git_dir=git_server.repo_dir("acme/hello-world-gitops.git"),
            allow_auto_merge=True,
            protection={"main": Protection(required_checks=("ci/build",))},
        )
        env = {**make_home(tmp_path), "GITHUB_TOKEN": DEFAULT_TOKEN}
        checkout = clone(url, tmp_path / "checkout", token=DEFAULT_TOKEN, detached=True)
        yield fake, checkout, env


def cli_args(fake: FakeGitHub, *extra: str) -> list[str]:
    return [*CLI_ARGS, "-scm-provider=github", f"-api-endpoint={fake.api_url}", "-output=json", *extra]


def run_in_process(
    args: list[str], checkout: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> int:
    """cli.main in this process, so that the wait's clock can be a pretend one."""
    from tests.conftest import TOOL
    from updater import cli

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(checkout)
    monkeypatch.setattr(merging, "time", clock)
    return cli.main([TOOL, *args])


def test_cli_checks_pass_enables_auto_merge_and_reports_it(
    e2e: tuple[FakeGitHub, Path, dict[str, str]], tmp_path: Path
) -> None:
    from tests.conftest import run_tool

    fake, checkout, env = e2e
    results = tmp_path / "results"
    output = tmp_path / "github_output"
    run = run_tool(
        cli_args(fake, "-merge-when=checks-pass", "-merge-method=squash", f"-results-dir={results}"),
        checkout,
        {**env, "GITHUB_OUTPUT": str(output)},
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["merge"] == "auto-enabled" and report["pull_request"]["merged"] is False
    assert (results / "merge").read_text() == "auto-enabled"
    assert "merge=auto-enabled" in output.read_text().splitlines()
    assert "pull request merge: auto-enabled (squash)" in run.stderr
    # The budget of a new pull request (find + create) plus the one GraphQL mutation.
    assert [(c.method, c.path.rsplit("/", 1)[-1]) for c in fake.requests] == [
        ("GET", "pulls"),
        ("POST", "pulls"),
        ("POST", "graphql"),
    ]
    [pull] = fake.pulls("acme/hello-world-gitops")
    assert pull.auto_merge is not None and pull.auto_merge["mergeMethod"] == "SQUASH"


def test_cli_merge_now_keeps_one_extra_request_and_says_merged(
    e2e: tuple[FakeGitHub, Path, dict[str, str]],
) -> None:
    from tests.conftest import run_tool

    fake, checkout, env = e2e
    fake.repos["acme/hello-world-gitops"].protection.clear()
    run = run_tool(cli_args(fake, "-merge-pull-request"), checkout, env)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["merge"] == "merged"
    assert [c.method for c in fake.requests] == ["GET", "POST", "PUT"]


def test_cli_without_merge_reports_not_requested(e2e: tuple[FakeGitHub, Path, dict[str, str]]) -> None:
    from tests.conftest import run_tool

    fake, checkout, env = e2e
    run = run_tool(cli_args(fake), checkout, env)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["merge"] == "not-requested"
    assert len(fake.requests) == 2


def test_cli_waits_until_the_checks_pass_and_github_merges(
    e2e: tuple[FakeGitHub, Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    fake, checkout, env = e2e

    def checks_pass(n: int) -> None:
        if n == 2:
            fake.pass_check("acme/hello-world-gitops", 1, "ci/build")

    clock = FakeClock(on_sleep=checks_pass)
    code = run_in_process(
        cli_args(fake, "-merge-when=checks-pass", "-wait=30m"), checkout, env, monkeypatch, clock
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert report["merge"] == "merged" and report["pull_request"]["merged"] is True
    assert clock.sleeps == [2, 4]
    [pull] = fake.pulls("acme/hello-world-gitops")
    assert pull.merged


def test_cli_wait_that_runs_out_exits_4_with_the_reason(
    e2e: tuple[FakeGitHub, Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    fake, checkout, env = e2e
    clock = FakeClock()
    code = run_in_process(
        cli_args(fake, "-merge-when=checks-pass", "-wait=5m"), checkout, env, monkeypatch, clock
    )
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert code == 4 == report["exit_code"]
    assert report["merge"] == "timed-out" and report["pull_request"]["merged"] is False
    assert "was not merged within -wait=5m" in report["error"] and "waiting for ci/build" in report["error"]
    errors = [ln for ln in captured.err.splitlines() if ln.startswith("update-gitops-repo: error:")]
    assert len(errors) == 1 and TOKEN not in captured.err
    assert sum(clock.sleeps) == 300


def test_cli_failed_check_exits_3(
    e2e: tuple[FakeGitHub, Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    fake, checkout, env = e2e
    clock = FakeClock(on_sleep=lambda n: fake.fail_check("acme/hello-world-gitops", 1, "ci/build"))
    code = run_in_process(
        cli_args(fake, "-merge-when=checks-pass", "-wait=1h"), checkout, env, monkeypatch, clock
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 3 and report["merge"] == "checks-failed" and "ci/build failed" in report["error"]


def test_cli_auto_merge_not_allowed_is_one_line_exit_1(e2e: tuple[FakeGitHub, Path, dict[str, str]]) -> None:
    from tests.conftest import run_tool

    fake, checkout, env = e2e
    fake.repos["acme/hello-world-gitops"].allow_auto_merge = False
    run = run_tool(cli_args(fake, "-merge-when=checks-pass"), checkout, env)
    assert run.returncode == 1
    report = json.loads(run.stdout)
    assert report["merge"] == "failed" and "Auto merge is not allowed" in report["error"]
    assert len(run.error_lines) == 1


def test_cli_bitbucket_cloud_checks_pass_needs_a_wait_before_anything_is_pushed(
    git_server: Any, tmp_path: Path
) -> None:
    from tests.conftest import run_tool
    from tests.gitserver import DEFAULT_TOKEN, clone, copy_fixture, make_home

    url = git_server.create_repo("acme/gitops.git", copy_fixture("hello-world", tmp_path / "seed"))
    checkout = clone(url, tmp_path / "checkout", token=DEFAULT_TOKEN, detached=True)
    env = {**make_home(tmp_path), "BITBUCKET_ACCESS_TOKEN": DEFAULT_TOKEN}
    args = [*CLI_ARGS, "-scm-provider=bitbucket-cloud", "-api-endpoint=http://127.0.0.1:9/2.0"]
    run = run_tool([*args, "-merge-when=checks-pass", "-output=json"], checkout, env)
    assert run.returncode == 2, run.stderr
    assert "Bitbucket Cloud has no auto-merge" in json.loads(run.stdout)["error"]
    assert f"update-to-commit-{REV}" not in git_server.branches("acme/gitops.git")


def test_cli_bad_wait_is_a_usage_error() -> None:
    from updater import flags
    from updater.errors import UsageError

    with pytest.raises(UsageError, match="missing unit"):
        flags.parse(["-wait=30"])
    assert flags.parse(["-wait=1h30m"]).wait == 5400
    assert flags.parse(["-merge-when=checks-pass"]).merge_requested
    with pytest.raises(UsageError, match="use one of now, checks-pass"):
        flags.parse(["-merge-when=later"])


def test_help_documents_the_new_flags_and_exit_statuses() -> None:
    from updater import flags

    text = flags.usage()
    assert "-merge-when when" in text and "-wait duration" in text
    assert "3 the pull request will not land" in text and "4 it has not landed yet" in text


def test_errors_live_in_one_place() -> None:
    from updater import errors

    assert (errors.EXIT_NOT_MERGED, errors.EXIT_NOT_MERGED_YET) == (3, 4)
    assert issubclass(NotMerged, ProviderError) and issubclass(NotMergedYet, NotMerged)


_ = Path  # kept for the CLI tests below
