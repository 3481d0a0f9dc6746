"""Exit 0 means the change is on origin: a rerun in the same checkout after a failed push pushes the
commit the first run left on the branch, instead of saying "nothing changed" (issue 10)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import run_tool
from tests.gitserver import DEFAULT_TOKEN, GitServer, clone, copy_fixture, make_home, run_git

REV = "7a1b2c3d4e5f60718293a4b5c6d7e8f901234567"
ARGS = [
    f"-git-revision={REV}",
    "-substitute=imageName=registry.example.com/a@sha256:" + "d" * 64,
    "-create-pull-request=false",
]
BRANCH = f"update-to-commit-{REV}"
REPO = "acme/rerun.git"

DECLINING_HOOK = "#!/bin/sh\necho 'deploys are frozen until 18:00' >&2\nexit 1\n"


def _bad_token(server: GitServer, env: dict[str, str]) -> Callable[[], dict[str, str]]:
    env["GITHUB_TOKEN"] = "ghp_notTheRightTokenAtAll000"

    def fixed() -> dict[str, str]:
        return {**env, "GITHUB_TOKEN": DEFAULT_TOKEN}

    return fixed


def _declining_hook(server: GitServer, env: dict[str, str]) -> Callable[[], dict[str, str]]:
    hook = server.repo_dir(REPO) / "hooks" / "pre-receive"
    hook.write_text(DECLINING_HOOK)
    hook.chmod(0o755)

    def fixed() -> dict[str, str]:
        hook.unlink(missing_ok=True)
        return env

    return fixed


@pytest.mark.parametrize("failure", [_bad_token, _declining_hook], ids=["bad-token", "declined-by-a-hook"])
def test_a_rerun_after_a_failed_push_pushes_the_commit_left_behind(
    git_server: GitServer,
    tmp_path: Path,
    failure: Callable[[GitServer, dict[str, str]], Callable[[], dict[str, str]]],
) -> None:
    url = git_server.create_repo(REPO, copy_fixture("hello-world", tmp_path / "seed"))
    checkout = clone(url, tmp_path / "co", token=DEFAULT_TOKEN, detached=True)
    env = {**make_home(tmp_path), "GITHUB_TOKEN": DEFAULT_TOKEN}
    fix = failure(git_server, env)

    first = run_tool(ARGS, checkout, env)
    assert first.returncode == 1, first.stderr
    assert git_server.rev(REPO, BRANCH) is None
    left = run_git("rev-parse", "HEAD", cwd=checkout, env=env).stdout.decode().strip()

    rerun = run_tool(ARGS, checkout, fix())  # the same workspace, as a Tekton retry reuses it
    assert rerun.returncode == 0, rerun.stderr
    assert "nothing changed" not in rerun.stderr
    assert "which origin was not seen to receive: pushing it" in rerun.stderr
    assert git_server.rev(REPO, BRANCH) == left

    # Now origin has it: a third run is really "nothing changed", and talks to nobody.
    git_server.clear_log()
    third = run_tool(ARGS, checkout, fix())
    assert third.returncode == 0, third.stderr
    assert "nothing changed" in third.stderr
    assert git_server.requests() == []


def test_a_rerun_whose_push_finds_origin_already_has_the_commit_says_so(
    git_server: GitServer, tmp_path: Path
) -> None:
    """The remote-tracking ref can be missing (a push to origin's URL, a pruned ref): origin is asked."""
    url = git_server.create_repo(REPO, copy_fixture("hello-world", tmp_path / "seed"))
    checkout = clone(url, tmp_path / "co", token=DEFAULT_TOKEN, detached=True)
    env = {**make_home(tmp_path), "GITHUB_TOKEN": DEFAULT_TOKEN}
    assert run_tool(ARGS, checkout, env).returncode == 0
    run_git("update-ref", "-d", f"refs/remotes/origin/{BRANCH}", cwd=checkout, env=env)
    again = run_tool(ARGS, checkout, env)
    assert again.returncode == 0, again.stderr
    assert "already has" in again.stderr


def test_a_commit_of_the_users_on_the_branch_is_not_pushed_by_a_run_with_nothing_to_do(
    git_server: GitServer, tmp_path: Path
) -> None:
    url = git_server.create_repo(REPO, copy_fixture("hello-world", tmp_path / "seed"))
    env = {**make_home(tmp_path), "GITHUB_TOKEN": DEFAULT_TOKEN}
    checkout = clone(url, tmp_path / "co", token=DEFAULT_TOKEN)  # main checked out
    args = [*ARGS, "-branch=main"]
    assert run_tool(args, checkout, env).returncode == 0
    pushed = git_server.rev(REPO, "main")
    (checkout / "wip.txt").write_text("work in progress\n")
    run_git("add", "wip.txt", cwd=checkout, env=env)
    run_git(
        "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-qm", "WIP do not push", cwd=checkout, env=env
    )

    again = run_tool(args, checkout, env)
    assert again.returncode == 0, again.stderr
    assert "nothing changed" in again.stderr
    assert git_server.rev(REPO, "main") == pushed  # the user's commit stayed local


def test_a_rerun_after_the_pull_request_call_failed_opens_it(git_server: GitServer, tmp_path: Path) -> None:
    from tests.fakes.github import FakeGitHub

    url = git_server.create_repo(REPO, copy_fixture("hello-world", tmp_path / "seed"))
    checkout = clone(url, tmp_path / "co", token=DEFAULT_TOKEN, detached=True)
    env = {**make_home(tmp_path), "GITHUB_TOKEN": DEFAULT_TOKEN}
    with FakeGitHub() as fake:
        fake.add_token(DEFAULT_TOKEN)
        fake.add_repo("acme/rerun", git_dir=git_server.repo_dir(REPO))
        args = [f"-git-revision={REV}", ARGS[1], "-scm-provider=github", f"-api-endpoint={fake.api_url}"]
        fake.fail_next(422, method="POST", path="/pulls$")
        first = run_tool(args, checkout, env)
        assert first.returncode == 1 and git_server.rev(REPO, BRANCH) is not None
        assert fake.pulls("acme/rerun") == []

        rerun = run_tool(args, checkout, env)  # the same workspace
        assert rerun.returncode == 0, rerun.stderr
        assert "its pull request step did not finish: doing it" in rerun.stderr
        [pull] = fake.pulls("acme/rerun")
        assert rerun.stdout.strip().endswith(f"/pull/{pull.number}")

        # Done now: a third run asks the forge nothing.
        fake.requests.clear()
        third = run_tool(args, checkout, env)
        assert third.returncode == 0 and "nothing changed" in third.stderr
        assert fake.requests == []
