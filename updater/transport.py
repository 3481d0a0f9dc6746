"""Talking to origin through git: push, fetch, ls-remote, and what their refusals mean.

Owns the git commands that reach the network (push, fetch_branch, remote_default_branch; each is
given the auth environment remote.resolve_remote settled and the remote to talk to), and reading a
push's outcome (push_outcome → PushResult): landed, already there, the branch moved under us (the
wordings of git, GitHub, GitLab and Bitbucket: publish fetches, re-renders and retries), refused by
a hook or branch protection, refused credentials, or another failure, each said in one line.
Timeouts and credential-helper settings for these commands belong here.
"""

from __future__ import annotations

import os

from updater.errors import GitError, UsageError
from updater.gitproc import GitTimeout, config_env, last_line
from updater.redact import redact

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from updater.gitproc import Git


DEFAULT_STALL_SECONDS = 30
DEADLINE_FACTOR = 20  # a whole command may take this many stall periods: 10 minutes by default
_STALLED = "operation too slow"  # curl 28, as git reports a low-speed abort


class PushResult:
    __slots__ = ("message", "ok", "rejected_stale", "up_to_date")

    def __init__(self, ok: bool, rejected_stale: bool, message: str, up_to_date: bool = False) -> None:
        self.ok = ok
        self.rejected_stale = rejected_stale  # the remote moved on: fetch, rebuild, retry
        self.message = message
        self.up_to_date = up_to_date  # origin already had exactly this commit


# Wordings that mean "the branch moved under you", from git itself, GitHub, GitLab and Bitbucket.
_STALE_MARKERS = (
    "non-fast-forward",
    "fetch first",
    "[rejected]",
    "cannot lock ref",
    "incorrect old value provided",
    "reference already exists",  # newer git, when a concurrent push created the branch first
    "failed to update ref",
    "stale info",
    "failed to lock",
    "updates were rejected because the remote contains work",
    "tip of your current branch is behind",
    "the remote end hung up unexpectedly; ref changed",
    "is at ",  # "... is at X but expected Y" (GitHub, git's ref transaction)
    "has been updated since",
)
_HOOK_MARKERS = (
    "hook declined",
    "protected branch",
    "pre-receive hook",
    "gh006",
    "gl-hook",
    "you are not allowed",
)
# What forges say when the refusal is branch protection (GitHub, GitLab, Bitbucket, Gitea).
_PROTECTION_MARKERS = (
    "protected branch",
    "gh006",
    "protected ref",
    "not allowed to push code to protected",
    "not allowed to force push code to a protected",
    "branch is protected",
    "changes must be made through a pull request",
)
_AUTH_MARKERS = (
    "authentication failed",
    "terminal prompts disabled",
    "could not read username",
    "could not read password",
    "invalid username or password",
    "http basic: access denied",
    "the requested url returned error: 401",
    "the requested url returned error: 403",
    "permission denied",
)


def stall_seconds() -> int:
    """How long a transfer may make no progress before git gives up (UPDATE_GITOPS_REPO_NETWORK_TIMEOUT)."""
    value = os.environ.get("UPDATE_GITOPS_REPO_NETWORK_TIMEOUT", "").strip()
    try:
        return max(1, int(value)) if value else DEFAULT_STALL_SECONDS
    except ValueError:
        raise UsageError(
            f"UPDATE_GITOPS_REPO_NETWORK_TIMEOUT={value!r} is not a whole number of seconds"
        ) from None


def _run_remote(git: Git, *args: str, env: Mapping[str, str], remote: str) -> tuple[int, Any, str]:
    """A git command that talks to origin, bounded: over http(s), curl gives up when less than one
    byte a second moves for stall_seconds() (a server that accepts and never answers); whatever the
    transport (ssh too), git is stopped after DEADLINE_FACTOR times that."""
    stall = stall_seconds()
    bounded = {**env, **config_env({"http.lowSpeedLimit": "1", "http.lowSpeedTime": str(stall)}, base=env)}
    try:
        status, out, err = git.run(*args, env=bounded, check=False, timeout=stall * DEADLINE_FACTOR)
    except GitTimeout:
        raise GitError(
            f"git {args[0]} to {_where(git, remote)} did not finish in {stall * DEADLINE_FACTOR} s; "
            "check the network and origin (UPDATE_GITOPS_REPO_NETWORK_TIMEOUT sets the bound)"
        ) from None
    if status != 0 and _STALLED in err.lower():
        raise GitError(
            f"git {args[0]} to {_where(git, remote)} gave up: nothing arrived for {stall} s "
            "(UPDATE_GITOPS_REPO_NETWORK_TIMEOUT sets the bound)"
        )
    return status, out, err


def _where(git: Git, remote: str) -> str:
    """origin and its URL without credentials, for a message (a failure path: one more git call)."""
    from updater.values import parse_origin

    url = remote
    if remote == "origin":
        status, out, _ = git.run("config", "--get", "remote.origin.url", check=False)
        url = str(out).strip() if status == 0 else ""
    return f"origin ({parse_origin(url).display})" if url else "origin"


def push(
    git: Git, commit: str, branch: str, *, force: bool, env: Mapping[str, str], remote: str
) -> PushResult:
    refspec = f"{'+' if force else ''}{commit}:refs/heads/{branch}"
    status, out, err = _run_remote(git, "push", "--porcelain", remote, refspec, env=env, remote=remote)
    return push_outcome(status, str(out), err, branch)


def fetch_branch(git: Git, branch: str, *, env: Mapping[str, str], shallow: bool, remote: str) -> str | None:
    """Fetch origin's `branch`; its tip sha, or None when origin has no such branch."""
    args = ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head"]
    if shallow:
        args.append("--depth=1")
    tracking = f"refs/update-gitops-repo/remote/{branch}"
    status, _, err = _run_remote(
        git, *args, remote, f"+refs/heads/{branch}:{tracking}", env=env, remote=remote
    )
    if status != 0:
        if "couldn't find remote ref" in err.lower():
            return None
        raise GitError(redact(f"fetching {branch} from origin failed: {_auth_line(err)}"))
    return git.out("rev-parse", tracking)


def remote_default_branch(git: Git, *, env: Mapping[str, str], remote: str) -> str | None:
    status, out, _ = _run_remote(git, "ls-remote", "--symref", remote, "HEAD", env=env, remote=remote)
    if status != 0:
        return None
    for line in str(out).splitlines():
        if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
            return line[len("ref: refs/heads/") : -len("\tHEAD")]
    return None


def push_outcome(status: int, out: str, err: str, branch: str) -> PushResult:
    """What `git push --porcelain` said: landed, the branch moved on (retry), or why it failed."""
    text = f"{out}\n{err}"
    if status == 0:
        # --porcelain flags a ref that needed no update with "=".
        same = any(line.startswith("=\t") for line in out.splitlines())
        return PushResult(True, False, "", up_to_date=same)
    lowered = text.lower()
    if any(m in lowered for m in _HOOK_MARKERS):
        return PushResult(False, False, _explain_hook(text, branch))
    if any(m in lowered for m in _AUTH_MARKERS):
        return PushResult(False, False, f"origin refused the credentials ({_auth_line(text)})")
    if any(m in lowered for m in _STALE_MARKERS):
        return PushResult(False, True, last_line(text))
    return PushResult(False, False, _push_failure(out, err) or f"exit status {status}")


def _push_failure(out: str, err: str) -> str:
    """The line that says why: the refused ref's status from --porcelain, else git's first fatal: line
    (its last line is often the tail of a hint such as "and the repository exists.")."""
    for line in out.splitlines():
        if line.startswith("!\t") and line.count("\t") >= 2:
            return redact(line.split("\t", 2)[2].strip())
    for line in err.splitlines():
        if line.startswith("fatal:"):
            return redact(line.strip())
    return last_line(err) or last_line(out)


def _auth_line(text: str) -> str:
    for line in str(text).splitlines():
        low = line.lower()
        if any(m in low for m in _AUTH_MARKERS) or line.startswith("fatal:"):
            return redact(line.strip())
    return last_line(text)


def _explain_hook(text: str, branch: str) -> str:
    """The server's own words; "protected" only when the server said the branch is protected."""
    said = [
        ln.strip().removeprefix("remote:").strip()
        for ln in text.splitlines()
        if ln.strip().startswith("remote:")
    ]
    details = [line for line in said if any(c.isalnum() for c in line)]  # not banner rules (----), not blanks
    reason = redact("; ".join(details[:2])) if details else last_line(text)
    if any(marker in text.lower() for marker in _PROTECTION_MARKERS):
        return (
            f"origin refused the push to {branch} ({reason}): the branch is protected; push to another "
            "-branch and open a pull request instead"
        )
    return f"a hook on origin declined the push to {branch}: {reason}"
