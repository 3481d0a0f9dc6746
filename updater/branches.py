"""Branches: naming one, and moving the branch, HEAD and the index to a new commit.

Owns the check of a branch name before anything is written (branch_name_problem), the one moment
the checkout changes (adopt: under .git/index.lock, the branch is pointed at the commit, kept under
refs/update-gitops-repo/previous/ if that would lose commits, HEAD switched to it and the private
index installed, all put back if any step fails), and moving the checked-out branch's files after a
push retry built the commit elsewhere (reset_keep). Releasing index.lock on a signal belongs here.
"""

from __future__ import annotations

import contextlib
import os

from updater.errors import GitError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from updater.gitproc import Git
    from updater.repostate import RepoState

BACKUP_PREFIX = "refs/update-gitops-repo/previous/"
_REF_FORBIDDEN = set(" ~^:?*[\\") | {chr(c) for c in range(32)} | {chr(127)}


def branch_name_problem(name: str) -> str | None:
    """Why `name` is not a valid branch name (git check-ref-format --branch), or None if it is.

    Checked before anything is written: git would only refuse it at update-ref, after the commit.
    """
    if not name:
        return "it is empty"
    if name.startswith("refs/"):
        # refs/heads/ is taken off when the flag is read; any other ref is not a branch.
        return "it names a ref that is not a branch (give the branch name, or refs/heads/<name>)"
    if name.startswith("-"):
        return "it starts with '-'"
    if name == "HEAD" or name == "@":
        return f"{name!r} is reserved"
    bad = sorted({c for c in name if c in _REF_FORBIDDEN})
    if bad:
        return "it contains " + ", ".join(repr(c) for c in bad)
    if ".." in name or "@{" in name:
        return "it contains '..' or '@{'"
    parts = name.split("/")
    if name.endswith(".") or any(not p or p.startswith(".") or p.endswith(".lock") for p in parts):
        return "a part is empty, starts with '.', or ends with '.lock' or '.'"
    return None


def adopt(git: Git, state: RepoState, branch: str, commit: str, index: str) -> str | None:
    """Point `branch` at `commit` and check it out: HEAD, and `index` as the checkout's index,
    without touching the files. All of it or, as far as git lets us, none of it.

    An existing local branch whose commits would become unreachable is kept under
    refs/update-gitops-repo/previous/<branch>; that ref name is returned.
    """
    # Take index.lock the way git does before anything moves: a stale or live one means another
    # git process is using the checkout, and replacing the index underneath it loses one side.
    lock = os.path.join(state.git_dir, "index.lock")
    try:
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        raise GitError(
            f"{lock} exists: another git process is using this checkout, or one crashed; "
            "remove the file if no git process is running, then run the tool again"
        ) from None
    locked = True
    ref = f"refs/heads/{branch}"
    moved_from: str | None = None  # the branch's old commit ("" = it did not exist) once moved
    switched = False
    try:
        moved_from, backup = _move_branch(git, state, ref, branch, commit)
        git.run("symbolic-ref", "-m", "update-gitops-repo: switch", "HEAD", ref)
        switched = True
        os.replace(index, lock)
        os.replace(lock, os.path.join(state.git_dir, "index"))  # this releases the lock
        locked = False
    except BaseException:
        # Put back what moved (best effort): HEAD may even be on the branch (-branch=<current>).
        if switched and state.branch:
            git.run("symbolic-ref", "HEAD", f"refs/heads/{state.branch}", check=False)
        elif switched and state.head:
            git.run("update-ref", "--no-deref", "HEAD", state.head, check=False)
        if moved_from is not None:
            back = ["-d", ref, commit] if moved_from == "" else [ref, moved_from, commit]
            git.run("update-ref", *back, check=False)
        raise
    finally:
        if locked:  # ours: never remove a lock another process took after the rename
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
    return backup


def _move_branch(git: Git, state: RepoState, ref: str, branch: str, commit: str) -> tuple[str, str | None]:
    """Point `ref` at `commit`; returns its old commit ("" if it was created) and the backup ref."""
    message = "update-gitops-repo: commit"
    # The usual case is a new branch: create it only if it does not exist yet (old value ""), one call.
    created, _, _ = git.run("update-ref", "-m", message, ref, commit, "", check=False)
    if created == 0:
        return "", None
    backup = None
    status, old, _ = git.run("rev-parse", "-q", "--verify", f"{ref}^{{commit}}", check=False)
    old = old.strip() if status == 0 else ""
    if old and old != state.head:
        merged, _, _ = git.run("merge-base", "--is-ancestor", old, commit, check=False)
        if merged != 0:
            backup = BACKUP_PREFIX + branch
            git.run("update-ref", backup, old)
    git.run("update-ref", "-m", message, ref, commit, old)  # old: nobody moved it meanwhile
    return old, backup


def reset_keep(git: Git, commit: str) -> None:
    """Move the checked-out branch's files to `commit` (after a retry built it elsewhere)."""
    git.run("reset", "-q", "--keep", commit)
