"""The whole story on each provider: the CLI pushes to the real git server and opens the PR on the
provider's fake API. stdout is the PR URL; an identical second run opens nothing new."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_tool
from tests.fakes.github import FakeGitHub
from tests.gitserver import DEFAULT_TOKEN, GitServer, clone, copy_fixture, make_home

REV = "9c6ab68e75bec86422bb572ba904e5b853e32808"
IMAGE = "registry.example.com/acme/hello-world@sha256:75326f3faf8d9e10af99fb3dcbcc69756c4325fd67d806eba7ab2ec2fe04446c"
ARGS = [f"-git-revision={REV}", f"-substitute=imageName={IMAGE}"]


@pytest.fixture
def github(git_server: GitServer, tmp_path: Path) -> Iterator[tuple[FakeGitHub, Path, dict[str, str]]]:
    url = git_server.create_repo(
        "acme/hello-world-gitops.git", copy_fixture("hello-world", tmp_path / "seed")
    )
    with FakeGitHub() as fake:
        fake.add_token(DEFAULT_TOKEN)
        fake.add_repo("acme/hello-world-gitops", git_dir=git_server.repo_dir("acme/hello-world-gitops.git"))
        env = {**make_home(tmp_path), "GITHUB_TOKEN": DEFAULT_TOKEN}
        checkout = clone(url, tmp_path / "checkout", token=DEFAULT_TOKEN, detached=True)
        yield fake, checkout, env


def test_github_pull_request_is_opened_and_its_url_is_the_only_stdout(
    github: tuple[FakeGitHub, Path, dict[str, str]], git_server: GitServer, tmp_path: Path
) -> None:
    fake, checkout, env = github
    args = [*ARGS, "-scm-provider=github", f"-api-endpoint={fake.api_url}"]
    run = run_tool(args, checkout, env)
    assert run.returncode == 0, run.stderr
    [pull] = fake.pulls("acme/hello-world-gitops")
    assert run.stdout == f"{pull_url(fake, pull.number)}\n"
    assert (pull.head, pull.base, pull.title) == (
        f"update-to-commit-{REV}",
        "main",
        f"update templates for commit {REV}",
    )
    assert "application.yaml" in (pull.body or "") and IMAGE in (pull.body or "")
    # The base branch came from git (origin's HEAD), so the API saw exactly: find, create.
    assert [(c.method, c.path.rsplit("/", 1)[-1]) for c in fake.requests] == [
        ("GET", "pulls"),
        ("POST", "pulls"),
    ]
    assert git_server.rev("acme/hello-world-gitops.git", f"update-to-commit-{REV}") is not None

    # A second identical run from a fresh checkout: nothing new on git, the PR is reused with one call.
    fake.requests.clear()
    again = clone(
        git_server.repo_url("acme/hello-world-gitops.git"),
        tmp_path / "again",
        token=DEFAULT_TOKEN,
        detached=True,
    )
    tip = git_server.rev("acme/hello-world-gitops.git", f"update-to-commit-{REV}")
    run = run_tool(args, again, env)  # the same argv, so the same header: identical outputs
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"{pull_url(fake, pull.number)}\n"
    assert "pull request reused" in run.stderr
    assert git_server.rev("acme/hello-world-gitops.git", f"update-to-commit-{REV}") == tip
    assert len(fake.pulls("acme/hello-world-gitops")) == 1
    assert len(fake.requests) == 1


def test_github_merge_after_open(github: tuple[FakeGitHub, Path, dict[str, str]], tmp_path: Path) -> None:
    fake, checkout, env = github
    results = tmp_path / "results"
    args = [
        *ARGS,
        "-scm-provider=github",
        f"-api-endpoint={fake.api_url}",
        "-merge-pull-request",
        "-merge-method=squash",
        f"-results-dir={results}",
    ]
    run = run_tool(args, checkout, env)
    assert run.returncode == 0, run.stderr
    [pull] = fake.pulls("acme/hello-world-gitops")
    assert pull.merged and pull.merge_method == "squash"
    assert (results / "pr-url").read_text() == pull_url(fake, pull.number)
    assert (results / "pr-number").read_text() == str(pull.number)
    assert (results / "operation").read_text() == "created"
    assert (results / "branch").read_text() == f"update-to-commit-{REV}"
    assert len((results / "commit").read_text()) == 40


def test_github_outputs_for_actions(github: tuple[FakeGitHub, Path, dict[str, str]], tmp_path: Path) -> None:
    fake, checkout, env = github
    output = tmp_path / "github_output"
    output.write_text("earlier=1\n")
    run = run_tool(
        [*ARGS, f"-api-endpoint={fake.api_url}", "-scm-provider=github"],
        checkout,
        {**env, "GITHUB_OUTPUT": str(output)},
    )
    assert run.returncode == 0, run.stderr
    lines = output.read_text().splitlines()
    assert lines[0] == "earlier=1"
    assert dict(line.split("=", 1) for line in lines[1:])["operation"] == "created"


def test_an_unreachable_api_fails_after_the_push_with_one_line(git_server: GitServer, tmp_path: Path) -> None:
    url = git_server.create_repo("acme/r.git", copy_fixture("hello-world", tmp_path / "seed"))
    checkout = clone(url, tmp_path / "co", token=DEFAULT_TOKEN, detached=True)
    env = {**make_home(tmp_path), "GITHUB_TOKEN": DEFAULT_TOKEN}
    run = run_tool(
        [*ARGS, "-scm-provider=github", "-api-endpoint=http://127.0.0.1:9/api/v3", "-base-branch=main"],
        checkout,
        env,
    )
    assert run.returncode == 1
    assert len(run.error_lines) == 1 and "Traceback" not in run.stderr
    assert git_server.rev("acme/r.git", f"update-to-commit-{REV}") is not None  # the push is not undone


def pull_url(fake: FakeGitHub, number: int) -> str:
    return f"{fake.web_url}/acme/hello-world-gitops/pull/{number}"


API_TOKEN = "ATATT3xFfGF0exampleAtlassianApiToken0123456789"


@pytest.mark.parametrize(
    ("username", "git_user"),
    [("ci-bot", "ci-bot"), (None, "x-bitbucket-api-token-auth")],
    ids=["with-the-bitbucket-username", "without-a-username"],
)
def test_bitbucket_cloud_pull_request_with_an_atlassian_api_token(
    git_server: GitServer, tmp_path: Path, username: str | None, git_user: str
) -> None:
    """REST takes the API token with the account's e-mail, git with the Bitbucket username or
    x-bitbucket-api-token-auth (never the e-mail); app passwords are gone."""
    from tests.fakes.bitbucket_cloud import FakeBitbucketCloud

    git_server.allow(git_user, API_TOKEN)  # exactly this username for git, as Bitbucket checks it
    url = git_server.create_repo(
        "acme/hello-world-gitops.git", copy_fixture("hello-world", tmp_path / "seed")
    )
    checkout = clone(url, tmp_path / "checkout", token=API_TOKEN, user=git_user, detached=True)
    env = {**make_home(tmp_path), "BITBUCKET_EMAIL": "ci-bot@example.com", "BITBUCKET_API_TOKEN": API_TOKEN}
    if username:
        env["BITBUCKET_USERNAME"] = username
    with FakeBitbucketCloud() as bb:
        assert bb.app_passwords_removed
        bb.add_api_token("ci-bot@example.com", API_TOKEN, username="ci-bot")
        assert bb.accepts_git(git_user, API_TOKEN) and not bb.accepts_git("ci-bot@example.com", API_TOKEN)
        bb.add_repo("acme", "hello-world-gitops", git_dir=git_server.repo_dir("acme/hello-world-gitops.git"))
        args = [
            *ARGS,
            "-scm-provider=bitbucket-cloud",
            f"-api-endpoint={bb.api_url}",
            "-merge-pull-request",
            "-merge-method=squash",
        ]
        run = run_tool(args, checkout, env)
        assert run.returncode == 0, run.stderr
        [pull] = bb.pulls
        assert run.stdout == f"{bb.web_url}/acme/hello-world-gitops/pull-requests/{pull.id}\n"
        assert (pull.source, pull.destination, pull.state) == (f"update-to-commit-{REV}", "main", "MERGED")
        assert pull.merge_strategy == "squash"
        assert len(bb.requests) == 3  # find, create, merge
        assert API_TOKEN not in run.stderr and "ci-bot@example.com" not in run.stdout


def test_bitbucket_cloud_app_password_is_refused_before_anything_is_written(
    git_server: GitServer, tmp_path: Path
) -> None:
    from tests.conftest import snapshot
    from tests.fakes.bitbucket_cloud import FakeBitbucketCloud

    url = git_server.create_repo(
        "acme/hello-world-gitops.git", copy_fixture("hello-world", tmp_path / "seed")
    )
    checkout = clone(url, tmp_path / "checkout", token=DEFAULT_TOKEN, detached=True)
    env = {
        **make_home(tmp_path),
        "BITBUCKET_USERNAME": "ci-bot",
        "BITBUCKET_APP_PASSWORD": "app-pw-0123456789",
    }
    before = snapshot(checkout)
    with FakeBitbucketCloud() as bb:
        run = run_tool([*ARGS, "-scm-provider=bitbucket-cloud", f"-api-endpoint={bb.api_url}"], checkout, env)
        assert run.returncode == 2
        [line] = run.error_lines
        assert "app password, which Atlassian removed on 2026-07-28" in line and "BITBUCKET_API_TOKEN" in line
        assert "app-pw-0123456789" not in run.stderr and bb.requests == []
    assert snapshot(checkout) == before
    assert git_server.rev("acme/hello-world-gitops.git", f"update-to-commit-{REV}") is None


def test_bitbucket_cloud_git_refusing_a_stored_app_password_says_what_to_use(
    git_server: GitServer, tmp_path: Path
) -> None:
    """An app password from ~/.git-credentials (as Tekton writes it): git's 401 names the remedy."""
    url = git_server.create_repo(
        "acme/hello-world-gitops.git", copy_fixture("hello-world", tmp_path / "seed")
    )
    checkout = clone(url, tmp_path / "checkout", token=DEFAULT_TOKEN, detached=True)
    env = make_home(tmp_path, url=url, user="ci-bot", token="app-pw-0123456789")  # refused by the server
    run = run_tool([*ARGS, "-scm-provider=bitbucket-cloud", "-create-pull-request=false"], checkout, env)
    assert run.returncode == 1
    [line] = run.error_lines
    assert "origin refused the credentials" in line and "no longer takes app passwords" in line
    assert "app-pw-0123456789" not in run.stderr
