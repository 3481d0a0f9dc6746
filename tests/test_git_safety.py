"""The tool's git commands never touch the user's stored credentials, never hang on a silent server,
and a SIGTERM never leaves .git/index.lock behind (issue 13)."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TOOL, identity, run_tool, snapshot
from tests.gitserver import DEFAULT_TOKEN, GitServer, clean_env, clone, copy_fixture, make_home

REV = "0d6c1e2f3a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9"
ARGS = [f"-git-revision={REV}", "-substitute=imageName=registry.example.com/a@sha256:" + "c" * 64]
NO_PR = [*ARGS, "-create-pull-request=false"]


# -- credentials: the user's helpers are never asked to store or erase ---------------------------------


@pytest.mark.parametrize("token", ["wrong-token", "wrong\ntoken"], ids=["wrong", "with-a-newline"])
def test_a_refused_token_leaves_the_stored_credential_byte_identical(
    git_server: GitServer, tmp_path: Path, token: str
) -> None:
    url = git_server.create_repo("acme/creds.git", copy_fixture("hello-world", tmp_path / "seed"))
    env = make_home(tmp_path, url=url, token=DEFAULT_TOKEN)  # credential.helper=store, a valid entry
    store = Path(env["HOME"]) / ".git-credentials"
    stored = store.read_bytes()
    assert DEFAULT_TOKEN.encode() in stored
    checkout = clone(url, tmp_path / "co", detached=True, env=env)
    run = run_tool(NO_PR, checkout, {**env, "GITHUB_TOKEN": token})
    assert run.returncode != 0
    assert store.read_bytes() == stored
    assert "wrong" not in run.stderr


def test_a_successful_run_with_a_token_of_its_own_stores_nothing(
    git_server: GitServer, tmp_path: Path
) -> None:
    url = git_server.create_repo("acme/nostore.git", copy_fixture("hello-world", tmp_path / "seed"))
    env = make_home(tmp_path)  # credential.helper=store, nothing stored
    checkout = clone(url, tmp_path / "co", token=DEFAULT_TOKEN, detached=True)
    run = run_tool(NO_PR, checkout, {**env, "GITHUB_TOKEN": DEFAULT_TOKEN})
    assert run.returncode == 0, run.stderr
    assert not (Path(env["HOME"]) / ".git-credentials").exists()


# -- a server that accepts and never answers -----------------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections, reads what comes, never answers: a hung git server or proxy."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/acme/silent.git"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_a_push_to_a_server_that_never_answers_is_bounded_and_names_the_remote(
    silent_server: str, tmp_path: Path
) -> None:
    checkout = tmp_path / "co"
    copy_fixture("hello-world", checkout)
    env = {**make_home(tmp_path), **identity()}
    for args in (
        ["init", "-q"],
        ["add", "-A"],
        ["commit", "-qm", "seed"],
        ["remote", "add", "origin", silent_server],
    ):
        subprocess.run(["git", *args], cwd=checkout, check=True, env=env, capture_output=True)
    started = time.monotonic()
    run = run_tool(
        NO_PR,
        checkout,
        {**env, "GITHUB_TOKEN": DEFAULT_TOKEN, "UPDATE_GITOPS_REPO_NETWORK_TIMEOUT": "2"},
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert run.returncode == 1, run.stderr
    [line] = run.error_lines
    assert "git push to origin" in line and "2 s" in line
    assert elapsed < 20


def test_network_commands_get_a_low_speed_limit_and_a_deadline_by_default() -> None:
    from updater import transport

    assert transport.stall_seconds() == 30 and transport.DEADLINE_FACTOR * 30 == 600


# -- SIGTERM while the tool holds index.lock ---------------------------------------------------------


def test_sigterm_while_index_lock_is_held_releases_it_and_puts_everything_back(
    git_server: GitServer, tmp_path: Path
) -> None:
    url = git_server.create_repo("acme/term.git", copy_fixture("hello-world", tmp_path / "seed"))
    checkout = clone(url, tmp_path / "co", token=DEFAULT_TOKEN, detached=True)
    env = {**make_home(tmp_path), "GITHUB_TOKEN": DEFAULT_TOKEN}
    # A git that stalls in the one command the tool runs while it holds index.lock (switching HEAD to
    # the new branch), after saying so: the test then sends SIGTERM at exactly that moment.
    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    marker = tmp_path / "holding-the-lock"
    real_git = subprocess.run(
        ["sh", "-c", "command -v git"], capture_output=True, text=True, check=True
    ).stdout.strip()
    wrapper = wrappers / "git"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = symbolic-ref ] && [ "$2" = -m ]; then : > {marker}; exec sleep 60; fi\n'
        f'exec {real_git} "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    before = snapshot(checkout)
    run_env = {**env, "PATH": f"{wrappers}{os.pathsep}{env['PATH']}"}
    process = subprocess.Popen(
        [TOOL, *NO_PR], cwd=checkout, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    assert marker.exists(), process.communicate()[1]
    assert (checkout / ".git" / "index.lock").exists()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 143, stderr
    assert "terminated" in stderr and "Traceback" not in stderr
    assert not (checkout / ".git" / "index.lock").exists()
    # The outputs were written before the lock was taken and stay; git's view is as it was.
    after = snapshot(checkout)
    assert after["head"] == before["head"] and after["symbolic"] == before["symbolic"]
    assert after["refs"] == before["refs"]
    assert git_server.rev("acme/term.git", f"update-to-commit-{REV}") is None
    # And a rerun just works.
    rerun = run_tool(NO_PR, checkout, env)
    assert rerun.returncode == 0, rerun.stderr


# -- refusals worded from what the server said; full refs accepted ------------------------------------

DECLINING_HOOK = """#!/bin/sh
echo "Commit messages must reference a JIRA issue (OPS-123)." >&2
exit 1
"""


def test_a_hook_refusal_on_an_ordinary_branch_is_not_called_protection(
    git_server: GitServer, tmp_path: Path
) -> None:
    url = git_server.create_repo("acme/hooked.git", copy_fixture("hello-world", tmp_path / "seed"))
    hook = git_server.repo_dir("acme/hooked.git") / "hooks" / "pre-receive"
    hook.write_text(DECLINING_HOOK)
    hook.chmod(0o755)
    checkout = clone(url, tmp_path / "co", token=DEFAULT_TOKEN, detached=True)
    run = run_tool(NO_PR, checkout, {**make_home(tmp_path), "GITHUB_TOKEN": DEFAULT_TOKEN})
    assert run.returncode == 1
    [line] = run.error_lines
    assert "protected" not in line
    assert f"a hook on origin declined the push to update-to-commit-{REV}" in line
    assert "Commit messages must reference a JIRA issue (OPS-123)." in line


def test_a_protected_branch_is_still_called_protected(git_server: GitServer, tmp_path: Path) -> None:
    url = git_server.create_repo("acme/prot.git", copy_fixture("hello-world", tmp_path / "seed"))
    git_server.protect_branch("acme/prot.git", "main")
    checkout = clone(url, tmp_path / "co", token=DEFAULT_TOKEN, detached=True)
    run = run_tool([*NO_PR, "-branch=main"], checkout, {**make_home(tmp_path), "GITHUB_TOKEN": DEFAULT_TOKEN})
    assert run.returncode == 1
    assert "the branch is protected" in run.error_lines[0]


@pytest.mark.parametrize(
    "form", ["-branch=refs/heads/deploy/staging", "-branch", "--branch=refs/heads/deploy/staging"]
)
def test_a_branch_given_as_its_full_ref_is_that_branch(
    git_server: GitServer, tmp_path: Path, form: str
) -> None:
    url = git_server.create_repo("acme/fullref.git", copy_fixture("hello-world", tmp_path / "seed"))
    checkout = clone(url, tmp_path / "co", token=DEFAULT_TOKEN, detached=True)
    args = [*NO_PR, form, "refs/heads/deploy/staging"] if form == "-branch" else [*NO_PR, form]
    run = run_tool(args, checkout, {**make_home(tmp_path), "GITHUB_TOKEN": DEFAULT_TOKEN})
    assert run.returncode == 0, run.stderr
    assert git_server.rev("acme/fullref.git", "deploy/staging") is not None
    assert git_server.rev("acme/fullref.git", "refs/heads/refs/heads/deploy/staging") is None


def test_another_ref_is_refused_as_a_branch(tmp_path: Path) -> None:
    run = run_tool([*NO_PR, "-branch=refs/tags/v1"], tmp_path, clean_env())
    assert run.returncode == 2
    assert "names a ref that is not a branch" in run.error_lines[0]


def test_sigterm_held_while_the_outputs_are_written_puts_them_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM waits until every output is written, then fires: the outputs go back as they were."""
    from tests.test_cli_git import file_checkout
    from updater import cli, render

    checkout = file_checkout(tmp_path)
    before = snapshot(checkout)
    real_write = render.write_output

    def write_then_get_terminated(*args: object, **kwargs: object) -> None:
        real_write(*args, **kwargs)  # type: ignore[arg-type]
        os.kill(os.getpid(), signal.SIGTERM)  # held by the write's signal mask until all are written

    monkeypatch.setattr(render, "write_output", write_then_get_terminated)
    monkeypatch.chdir(checkout)
    for name, value in clean_env().items():
        monkeypatch.setenv(name, value)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        code = cli.main(["update-gitops-repo", *NO_PR])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 143
    assert snapshot(checkout) == before


def test_a_refused_token_never_runs_the_users_askpass_program(git_server: GitServer, tmp_path: Path) -> None:
    url = git_server.create_repo("acme/askpass.git", copy_fixture("hello-world", tmp_path / "seed"))
    checkout = clone(url, tmp_path / "co", token=DEFAULT_TOKEN, detached=True)
    asked = tmp_path / "asked"
    askpass = tmp_path / "askpass.sh"
    askpass.write_text(f'#!/bin/sh\necho "$1" >> {asked}\nsleep 30\necho secret\n')
    askpass.chmod(0o755)
    env = {
        **make_home(tmp_path),
        "GITHUB_TOKEN": "wrong-token",
        "GIT_ASKPASS": str(askpass),
        "SSH_ASKPASS": str(askpass),
    }
    started = time.monotonic()
    run = run_tool(NO_PR, checkout, env)
    assert run.returncode == 1 and "origin refused the credentials" in run.error_lines[0]
    assert not asked.exists() and time.monotonic() - started < 20


def test_a_hook_banner_is_skipped_for_the_lines_that_say_something() -> None:
    from updater.transport import push_outcome

    err = (
        "remote: ----------------------------------------------------------------------\n"
        "remote: Push rejected.\n"
        "remote: refs/heads/b: 4f2c…: commit message does not reference an issue\n"
        "remote: ----------------------------------------------------------------------\n"
        "To http://bitbucket.example.com/scm/p/r.git\n"
        " ! [remote rejected] b -> b (pre-receive hook declined)\n"
    )
    outcome = push_outcome(1, "", err, "b")
    assert outcome.message == (
        "a hook on origin declined the push to b: Push rejected.; "
        "refs/heads/b: 4f2c…: commit message does not reference an issue"
    )


def test_a_token_file_that_is_not_utf8_is_a_usage_error(tmp_path: Path) -> None:
    from tests.test_cli_git import file_checkout

    token = tmp_path / "token"
    token.write_bytes(b"\xff\xfe not text")
    run = run_tool([*NO_PR, f"-token-file={token}"], file_checkout(tmp_path), clean_env())
    assert run.returncode == 2 and "not UTF-8 text" in run.error_lines[0]
