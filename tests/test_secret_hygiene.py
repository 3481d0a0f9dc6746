"""A recognisable token, run through every way the tool can receive it, must never show up anywhere:
stdout, stderr, JSON output, generated files, commits, .git/config, PR titles and bodies, the API
requests' bodies, or the argv of any child process (read from /proc while the run is going on)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import TOOL
from tests.fakes.github import FakeGitHub
from tests.gitserver import GitServer, clone, copy_fixture, make_home, run_git

TOKEN = "ghp_SECRETtoken0123456789abcdefXYZ"  # what we must never see
WRONG = "ghp_WRONGtoken9876543210zyxwvuPQR"
REPO = "acme/hello-world-gitops"


class ArgvWatcher:
    """Polls /proc while a run is going on and keeps the command line of every process that carries
    `marker` in its environment (the run and all its children; other tests' processes are ignored)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker.encode()
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or int(pid) == me:
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as fh:
                        raw = fh.read()
                    with open(f"/proc/{pid}/environ", "rb") as fh:
                        if self.marker not in fh.read():
                            continue
                except OSError:
                    continue
                if raw:
                    self.seen.add(raw.replace(b"\0", b" ").decode("utf-8", "replace"))
            time.sleep(0.001)

    def __enter__(self) -> ArgvWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Scenario:
    name: str
    # Prepares the checkout; returns (checkout, env, extra args). Gets the server, the fake, tmp_path.
    setup: Callable[[GitServer, FakeGitHub, Path], tuple[Path, dict[str, str], list[str]]]
    expect_code: int = 0
    token_in_user_config: bool = False  # the user put it in the origin URL themselves


def _checkout(server: GitServer, tmp: Path, **kw: object) -> Path:
    url = server.repo_url(f"{REPO}.git")
    return clone(str(kw.pop("url", url)), tmp / "checkout", token=TOKEN, detached=True)


def env_token(server: GitServer, fake: FakeGitHub, tmp: Path) -> tuple[Path, dict[str, str], list[str]]:
    return _checkout(server, tmp), {**make_home(tmp), "GITHUB_TOKEN": TOKEN}, []


def tool_token(server: GitServer, fake: FakeGitHub, tmp: Path) -> tuple[Path, dict[str, str], list[str]]:
    return _checkout(server, tmp), {**make_home(tmp), "UPDATE_GITOPS_REPO_TOKEN": TOKEN}, []


def token_file(server: GitServer, fake: FakeGitHub, tmp: Path) -> tuple[Path, dict[str, str], list[str]]:
    secret = tmp / "secret" / "token"
    secret.parent.mkdir()
    secret.write_text(TOKEN + "\n")
    return _checkout(server, tmp), make_home(tmp), [f"-token-file={secret}"]


def git_credentials(server: GitServer, fake: FakeGitHub, tmp: Path) -> tuple[Path, dict[str, str], list[str]]:
    env = make_home(tmp, server.repo_url(f"{REPO}.git"), "tekton", TOKEN, style="tekton")
    return _checkout(server, tmp), env, []


def url_token(server: GitServer, fake: FakeGitHub, tmp: Path) -> tuple[Path, dict[str, str], list[str]]:
    url = server.repo_url_with_token(f"{REPO}.git", "bot", TOKEN)
    return clone(url, tmp / "checkout"), make_home(tmp), []


def wrong_token_for_git(
    server: GitServer, fake: FakeGitHub, tmp: Path
) -> tuple[Path, dict[str, str], list[str]]:
    server.allow_token(TOKEN)
    fake.add_token(WRONG)
    return _checkout(server, tmp), {**make_home(tmp), "GITHUB_TOKEN": WRONG}, []


def wrong_token_in_url(
    server: GitServer, fake: FakeGitHub, tmp: Path
) -> tuple[Path, dict[str, str], list[str]]:
    checkout = _checkout(server, tmp)
    url = server.repo_url_with_token(f"{REPO}.git", "bot", TOKEN).replace(TOKEN, TOKEN[::-1])
    run_git("remote", "set-url", "origin", url, cwd=checkout, env=make_home(tmp))
    return checkout, make_home(tmp), []


def api_refuses(server: GitServer, fake: FakeGitHub, tmp: Path) -> tuple[Path, dict[str, str], list[str]]:
    fake.tokens.pop(TOKEN)  # git accepts it, the API answers 401
    return _checkout(server, tmp), {**make_home(tmp), "GITHUB_TOKEN": TOKEN}, []


SCENARIOS = [
    Scenario("GITHUB_TOKEN", env_token),
    Scenario("UPDATE_GITOPS_REPO_TOKEN", tool_token),
    Scenario("-token-file", token_file),
    Scenario("~/.git-credentials (Tekton)", git_credentials),
    Scenario("user:token in the origin URL", url_token, token_in_user_config=True),
    Scenario("a token git refuses", wrong_token_for_git, expect_code=1),
    Scenario("a wrong token in the origin URL", wrong_token_in_url, expect_code=1, token_in_user_config=True),
    Scenario("a token the API refuses", api_refuses, expect_code=1),
]


@pytest.fixture
def world(git_server: GitServer, tmp_path: Path) -> Iterator[tuple[GitServer, FakeGitHub]]:
    git_server.allow_token(TOKEN)
    git_server.create_repo(f"{REPO}.git", copy_fixture("hello-world", tmp_path / "seed"))
    with FakeGitHub() as fake:
        fake.add_token(TOKEN)
        fake.add_repo(REPO, git_dir=git_server.repo_dir(f"{REPO}.git"))
        yield git_server, fake


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
@pytest.mark.parametrize("output", ["text", "json"])
def test_the_token_never_appears_anywhere(
    world: tuple[GitServer, FakeGitHub], tmp_path: Path, scenario: Scenario, output: str
) -> None:
    server, fake = world
    checkout, env, extra = scenario.setup(server, fake, tmp_path)
    argv = [
        TOOL,
        "-verbose",
        f"-output={output}",
        "-git-revision=1b39bd0",
        "-scm-provider=github",
        f"-api-endpoint={fake.api_url}",
        "-substitute=imageName=hello@sha256:1",
        "-substitute=token=not-a-secret-but-masked",
        f"-results-dir={tmp_path / 'results'}",
        *extra,
    ]
    marker = f"HYGIENE_RUN={os.getpid()}-{time.monotonic_ns()}"
    env[marker.split("=")[0]] = marker.split("=")[1]
    with ArgvWatcher(marker) as watcher:
        done = subprocess.run(
            argv, cwd=checkout, env=env, capture_output=True, text=True, timeout=120, check=False
        )
    assert done.returncode == scenario.expect_code, done.stderr

    places: dict[str, str] = {"stdout": done.stdout, "stderr": done.stderr}
    git_children = [c for c in watcher.seen if " push" in c or " fetch" in c or "git-remote-http" in c]
    assert git_children or scenario.expect_code, "the watcher saw no git network child at all"
    places["argv of child processes"] = "\n".join(watcher.seen)
    for path in checkout.rglob("*"):
        if path.is_file() and ".git" not in path.relative_to(checkout).parts:
            places[str(path.relative_to(checkout))] = path.read_text("utf-8", "replace")
    for path in (tmp_path / "results").glob("*"):
        places[f"results/{path.name}"] = path.read_text()
    if not scenario.token_in_user_config:
        places[".git/config"] = (checkout / ".git" / "config").read_text()
    places["~/.gitconfig"] = (tmp_path / "home" / ".gitconfig").read_text()
    places["local commits"] = run_git(
        "log", "--all", "-p", "--format=%H %an %ae%n%B", cwd=checkout, env=env
    ).stdout.decode()
    places["pushed commits"] = server.git(f"{REPO}.git", "log", "--all", "-p", "--format=%B")
    places["pull requests"] = "\n".join(f"{p.title}\n{p.body}" for p in fake.pulls(REPO))
    places["API request bodies"] = "\n".join(e.request_body.decode("utf-8", "replace") for e in fake.requests)
    for where, text in places.items():
        assert TOKEN not in text, f"the token leaked into {where}"
        assert WRONG not in text, f"the wrong token leaked into {where}"
        assert TOKEN[::-1] not in text, f"the URL's token leaked into {where}"
    # A substitution whose key looks secret is masked in the PR body.
    assert all("not-a-secret-but-masked" not in (p.body or "") for p in fake.pulls(REPO))
    if scenario.expect_code:
        assert "Traceback" not in done.stderr
