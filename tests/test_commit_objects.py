"""The tool's commits are the commits `git commit -m` makes: message clean-up, final newline, and the
raw object byte for byte (issue 10)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import identity, run_tool
from tests.gitserver import clean_env, copy_fixture, run_git
from updater.flags import cleanup_message

MESSAGES = [
    "update templates for commit 1b39bd0",
    "one line\n",
    "  \n\nfirst  \t\n\n\n# not a comment under -m\n\vx\f \nlast\n\n",
    "title\n\nbody line one\r\nbody line two   \n",
    "trailing tabs\t\t",
    "unicode\u2028stays one line\u00a0\n",
    "#42 fixed\n\n# comment\n;semicolon",
    "a\n\n\n\nb",
]
MODES = ["default", "whitespace", "strip", "verbatim", "scissors"]
DATES = {"GIT_AUTHOR_DATE": "1700000000 +0000", "GIT_COMMITTER_DATE": "1700000000 +0000"}


def _git_stores(repo: Path, message: str, mode: str, comment: str = "#") -> str:
    run_git(
        "-c",
        f"commit.cleanup={mode}",
        "-c",
        f"core.commentChar={comment}",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        message,
        cwd=repo,
        env={**clean_env(), **DATES, **identity()},
    )
    raw = run_git("cat-file", "commit", "HEAD", cwd=repo, env=clean_env()).stdout.decode()
    return raw.split("\n\n", 1)[1]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("scratch")
    run_git("init", "-q", cwd=repo, env=clean_env())
    return repo


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("message", MESSAGES, ids=range(len(MESSAGES)))
def test_the_message_is_what_git_commit_m_stores(scratch: Path, message: str, mode: str) -> None:
    assert cleanup_message(message, mode) == _git_stores(scratch, message, mode)


@pytest.mark.parametrize("comment", [";", "auto"])
def test_strip_honours_core_comment_char(scratch: Path, comment: str) -> None:
    message = "title\n# kept with ;\n; dropped with ;\nend\n"
    assert cleanup_message(message, "strip", comment) == _git_stores(scratch, message, "strip", comment)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, None),  # the default message
        ({}, "deploy hello-world 1.2  \n\n\nwhy: the digest moved\n"),
        ({"commit.cleanup": "strip"}, "deploy\n# dropped\nkept\n"),
        ({"commit.cleanup": "verbatim"}, "  deploy  \n\n\n"),
    ],
)
def test_the_tools_commit_is_byte_identical_to_git_commit(
    tmp_path: Path, config: dict[str, str], message: str | None
) -> None:
    checkout = tmp_path / "co"
    copy_fixture("hello-world", checkout)
    env = {**clean_env(), **DATES, "HOME": str(tmp_path)}
    run_git("init", "-q", "-b", "main", cwd=checkout, env=env)
    for key, value in {**config, "user.name": "Deployer", "user.email": "deploy@example.com"}.items():
        run_git("config", key, value, cwd=checkout, env=env)
    run_git("add", "-A", cwd=checkout, env=env)
    run_git("commit", "-qm", "seed", cwd=checkout, env=env)
    bare = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(checkout), str(bare)], check=True, env=env)
    run_git("remote", "add", "origin", str(bare), cwd=checkout, env=env)

    args = ["-git-revision=1b39bd0", "-substitute=imageName=i", "-create-pull-request=false"]
    if message is not None:
        args.append(f"-commit-message={message}")
    run = run_tool(args, checkout, env)
    assert run.returncode == 0, run.stderr
    ours = run_git("rev-parse", "HEAD", cwd=checkout, env=env).stdout.decode().strip()

    # git's own commit of the same tree on the same parent, with the same identity and dates.
    run_git("checkout", "-q", "--detach", "HEAD~1", cwd=checkout, env=env)
    run_git("read-tree", "--reset", "-u", ours, cwd=checkout, env=env)
    text = message if message is not None else "update templates for commit 1b39bd0"
    run_git("commit", "-q", "-m", text, cwd=checkout, env=env)
    theirs = run_git("rev-parse", "HEAD", cwd=checkout, env=env).stdout.decode().strip()
    raw = run_git("cat-file", "commit", ours, cwd=checkout, env=env).stdout
    assert raw == run_git("cat-file", "commit", theirs, cwd=checkout, env=env).stdout
    assert ours == theirs and raw.endswith(b"\n")
