"""Running git: the one place where git processes are started, fed, waited for and judged.

Owns what every git child gets (the C locale so that its messages can be matched, no password
prompt, safe.directory through the environment: prepare_environment), git config handed over as
GIT_CONFIG_* variables (config_env), starting a process now and collecting it later (start/finish:
opening a checkout asks three things at once, see repostate), and Git, the runner bound to one
checkout: run/out at the top of its working tree, a failure raised as GitError with git's own reason
line (reason, last_line). Timeouts, a process group or signal handling for the children belong here.

git runs as a plain subprocess. GitPython would run the same commands underneath, but importing it
costs more than the whole shell-script baseline of a deploy (docs/benchmarks.md): the tool runs in
every pipeline, so it is not used.

The other git modules are plain functions that take a Git: repostate (what the checkout is),
staging (outputs and edits → a tree), gitobjects (blobs, trees, commits), branches (moving the
branch, HEAD and index), transport (push, fetch, ls-remote).
"""

from __future__ import annotations

import os
import subprocess

from updater import log
from updater.errors import GitError
from updater.redact import redact

# No dataclasses, typing or tempfile at run time: every deploy pays for their import (docs/benchmarks.md).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import IO, Any

    from updater.repostate import Opening


def config_env(settings: Mapping[str, str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """git config passed as GIT_CONFIG_COUNT/KEY/VALUE: never on argv, never on disk.

    Appends to any GIT_CONFIG_* entries already present in `base`.
    """
    source: Mapping[str, str] = os.environ if base is None else base
    start = int(source.get("GIT_CONFIG_COUNT", "0") or 0)
    env: dict[str, str] = {}
    for offset, (key, value) in enumerate(settings.items()):
        env[f"GIT_CONFIG_KEY_{start + offset}"] = key
        env[f"GIT_CONFIG_VALUE_{start + offset}"] = value
    env["GIT_CONFIG_COUNT"] = str(start + len(settings))
    return env


def prepare_environment() -> None:
    """What every git child gets, set once in this process's environment.

    English messages whatever the user's locale: transport's markers are matched against them. No
    password prompt, ever, in CI. And a mounted checkout owned by another uid (docker run,
    OpenShift) must just work: safe.directory is only read from protected config, and command-scope
    config (GIT_CONFIG_* in the environment) counts as protected, without touching any file.
    """
    os.environ.update({"LANGUAGE": "C", "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"})
    if os.environ.get("UPDATE_GITOPS_REPO_SAFE_DIRECTORY_SET") != "1":
        os.environ.update(config_env({"safe.directory": "*"}))
        os.environ["UPDATE_GITOPS_REPO_SAFE_DIRECTORY_SET"] = "1"


class Git:
    """Runs git in one checkout, found from the working dir upwards.

    Made by repostate.open_checkout, which starts the queries that find the checkout and leaves them
    in `opening`; the first command (or repostate.read_state) waits for their answers (settle), which
    set `top` and `git_dir`.
    """

    def __init__(self, workdir: str) -> None:
        prepare_environment()
        self.workdir = os.path.realpath(workdir)
        self.given = workdir  # as the caller named it, for messages
        self.top: str  # set when the opening settles: the working tree's top
        self.git_dir: str
        self.trees: dict[str, str] = {}  # commit → tree, learnt on the way (gitobjects.tree_of)
        self.opening: Opening | None = None  # the queries that open the checkout, and their answers

    def settle(self) -> None:
        """Collect what opening the checkout asked (once); a working dir outside a checkout fails here."""
        if self.opening is not None:
            self.opening.settle(self)

    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        stdin: bytes | IO[bytes] | None = None,
        check: bool = True,
        raw: bool = False,
        timeout: float | None = None,
    ) -> tuple[int, Any, str]:
        """Run `git args...` at the top of the working tree; returns (status, stdout, stderr)."""
        self.settle()
        log.debug("git " + " ".join(args))
        status, out, err_text = execute(list(args), self.top, env=env, stdin=stdin, raw=raw, timeout=timeout)
        if check and status != 0:
            raise GitError(redact(f"git {args[0]} failed: {reason(err_text) or f'exit status {status}'}"))
        return int(status), out, err_text

    def out(self, *args: str, env: Mapping[str, str] | None = None, stdin: bytes | None = None) -> str:
        text: str = self.run(*args, env=env, stdin=stdin)[1]
        return text.strip()


def execute(
    args: list[str],
    cwd: str,
    *,
    env: Mapping[str, str] | None = None,
    stdin: bytes | IO[bytes] | None = None,
    raw: bool = False,
    timeout: float | None = None,
) -> tuple[int, Any, str]:
    """Run `git args...` in `cwd` and wait for it; stdin is bytes to feed, a file, or nothing."""
    feed = stdin if isinstance(stdin, bytes) else None
    source = None if isinstance(stdin, bytes) else stdin
    process = start(args, cwd, env=env, stdin=source, feed=feed is not None)
    return finish(process, feed, raw=raw, timeout=timeout)


def start(
    args: list[str],
    cwd: str,
    *,
    env: Mapping[str, str] | None = None,
    stdin: IO[bytes] | None = None,
    feed: bool = False,
) -> subprocess.Popen[bytes]:
    """Start `git args...`; stdin is a file, a pipe to feed later (`feed`), or nothing."""
    run_env = {**os.environ, **env} if env else None  # see prepare_environment
    if stdin is not None:
        stdin.seek(0)
    source: Any = subprocess.PIPE if feed else stdin if stdin is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            env=run_env,
            stdin=source,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except FileNotFoundError:
        raise GitError("git is not installed or not on PATH") from None


def finish(
    process: subprocess.Popen[bytes],
    feed: bytes | None = None,
    *,
    raw: bool = False,
    timeout: float | None = None,
) -> tuple[int, Any, str]:
    """Wait for a started git; (status, stdout as text or bytes with `raw`, stderr as text).

    `timeout` bounds the wait (seconds); git is then stopped and GitTimeout raised. If the wait is
    interrupted (SIGINT, SIGTERM), git is stopped before the exception goes on."""
    try:
        out_bytes, err_bytes = process.communicate(feed, timeout=timeout)
    except BaseException as exc:
        stop(process)
        if isinstance(exc, subprocess.TimeoutExpired):
            command = process.args[1] if isinstance(process.args, list) else "command"
            raise GitTimeout(f"git {command!s} did not finish in {timeout:.0f} s") from None
        raise
    out: Any = out_bytes if raw else out_bytes.decode("utf-8", "surrogateescape")
    return process.returncode, out, err_bytes.decode("utf-8", "surrogateescape")


class GitTimeout(GitError):
    """A git command ran past its deadline and was stopped."""


def stop(process: subprocess.Popen[bytes]) -> None:
    """End a git child the way git cleans up after itself: SIGTERM first (git then removes its own
    lock files), SIGKILL only if it does not go within a few seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def reason(err: str) -> str:
    """git's own error line; its last line is often advice ("remove the file manually to continue")."""
    for line in err.splitlines():
        if line.startswith(("fatal:", "error:")):
            return redact(line.strip())
    return last_line(err)


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return redact(lines[-1]) if lines else ""
