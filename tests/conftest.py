"""Shared fixtures: the real git server, fixture checkouts, and running the CLI as users do."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.gitserver import (  # noqa: F401  (pytest fixtures)
    DEFAULT_TOKEN,
    DEFAULT_USER,
    GitServer,
    clean_env,
    clone,
    copy_fixture,
    git_server,
    git_server_session,
    make_home,
    run_git,
)

TOOL = str(Path(sys.executable).parent / "update-gitops-repo")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    argv: list[str]

    @property
    def error_lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.startswith("update-gitops-repo: error:")]


def run_tool(args: list[str], cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 120) -> Run:
    """Run the installed console script, as a pipeline step would: its own process, a given env."""
    argv = [TOOL, *args]
    done = subprocess.run(
        argv,
        cwd=cwd,
        env=dict(env) if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr, argv)


def identity(name: str = "t", email: str = "t@example.com") -> dict[str, str]:
    """Author and committer for git commands a test runs itself (the tool has its own default)."""
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }


@pytest.fixture
def tool() -> Callable[..., Run]:
    return run_tool


@pytest.fixture
def gnupg_home(tmp_path: Path) -> Iterator[Path]:
    """A GNUPGHOME for one test. gpg starts a gpg-agent that outlives it; it is stopped here, and a
    test that leaves one running fails, so the suite leaves no process behind."""
    if shutil.which("gpg") is None:
        pytest.skip("gpg is not installed")
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    yield home
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, check=False)
    deadline = time.monotonic() + 10
    while agents_for(home) and time.monotonic() < deadline:  # the agent exits after it answers
        time.sleep(0.05)
    assert not agents_for(home), f"a gpg-agent for {home} is still running"


def agents_for(home: Path) -> list[int]:
    """Process ids of gpg-agents started for this GNUPGHOME (read from /proc: no pgrep needed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"gpg-agent") and str(home).encode() in argv:
            found.append(int(entry.name))
    return found


def snapshot(checkout: Path) -> dict[str, object]:
    """Everything a failed run must leave as it was: status, HEAD, refs, index, every file's hash."""
    env = clean_env()

    def git(*args: str) -> str:
        return run_git(*args, cwd=checkout, env=env, check=False).stdout.decode()

    files = {}
    for path in sorted(checkout.rglob("*")):
        if ".git" in path.relative_to(checkout).parts or not path.is_file():
            continue
        files[str(path.relative_to(checkout))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return {
        "status": git("status", "--porcelain=v1", "--untracked-files=all"),
        "head": git("rev-parse", "HEAD"),
        "symbolic": git("symbolic-ref", "-q", "HEAD"),
        "refs": git("for-each-ref"),
        # What is staged (the index's content, not its stat cache, which `git status` itself refreshes).
        "index": git("ls-files", "--stage"),
        "files": files,
    }


def provider_error(call: Callable[[], object], *secrets: str) -> str:
    """The ProviderError `call` raises: one line, none of `secrets` in it."""
    from updater.errors import ProviderError

    with pytest.raises(ProviderError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message, message
    for secret in secrets:
        assert secret not in message, message
    return message


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record urllib3's retry waits instead of sleeping them, so a Retry-After of seconds costs none."""
    import time

    import urllib3.util.retry

    waited: list[float] = []

    class Clock:
        def __getattr__(self, name: str) -> Any:
            return getattr(time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            waited.append(seconds)

    monkeypatch.setattr(urllib3.util.retry, "time", Clock())
    return waited


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # In-process tests must not pick up the developer's tokens or git identity.
    for name in list(os.environ):
        if name.startswith(("GIT_", "BITBUCKET_", "UPDATE_GITOPS_REPO_")) or name in (
            "GITHUB_TOKEN",
            "GH_TOKEN",
            "GITLAB_TOKEN",
            "CI_JOB_TOKEN",
            "GITHUB_OUTPUT",
            "GITHUB_API_URL",
            "GITHUB_SERVER_URL",
            "CI_API_V4_URL",
            "CI_SERVER_HOST",
            "CI_SERVER_URL",
            "CI_PROJECT_PATH",
            "CI_DEFAULT_BRANCH",
        ):
            monkeypatch.delenv(name, raising=False)
