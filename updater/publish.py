"""Commit the rendered outputs on the branch and push it, converging when others push too.

The first commit is built from the working tree. When origin rejects the push because the branch
moved (another pipeline, or a branch left by an earlier run), the new tip is fetched, the templates
are rendered again *on that tip* with the same substitutions, the user's other tracked edits are
carried over, and the push is retried with bounded, jittered back-off. Re-rendering instead of
rebasing means two writers of the same file never conflict: the last one wins with a complete file.
"""

from __future__ import annotations

import contextlib
import os
import time

from updater import branches, gitobjects, log, staging, transport
from updater.errors import GitError
from updater.templates import output_path, select

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from updater.gitproc import Git
    from updater.repostate import RepoState
    from updater.templates import Selector

    # Renders one template's bytes into its output's bytes (same argv, values, header as the first run).
    RenderFn = Callable[[str, bytes], bytes]


class Published:
    __slots__ = ("attempts", "commit", "pushed")

    def __init__(self, commit: str, pushed: bool, attempts: int) -> None:
        self.commit = commit  # what the branch points at on origin now
        self.pushed = pushed  # False when origin already had exactly this change
        self.attempts = attempts


class LocalCommit:
    __slots__ = ("commit", "outputs", "parent", "templates")

    def __init__(self, commit: str, parent: str | None, outputs: list[str], templates: list[str]) -> None:
        self.commit = commit
        self.parent = parent
        self.outputs = outputs  # relative to the repository top
        self.templates = templates  # the templates the first render used, relative to the repository top


# From this many changed outputs on, new objects go into one pack (git fast-import) instead of one
# file each: below it the extra git processes cost more than the loose objects they save.
BULK_THRESHOLD = 100


def commit_worktree(
    git: Git,
    state: RepoState,
    templates: Mapping[str, bytes],
    changed: int,
    message: str,
    branch: str,
) -> LocalCommit | None:
    """Stage outputs + tracked edits, commit on HEAD, check the branch out. None when nothing changed.

    `templates` maps each template (relative to the working dir) to the bytes just written to its
    output. Until the commit exists nothing in the checkout moves; then the branch, HEAD and the
    index move together (branches.adopt), before anything is pushed.
    """
    top_outputs = {state.prefix + output_path(t): content for t, content in templates.items()}
    index = staging.temp_index(git, state)
    try:
        tree = staging.stage_in_bulk(git, state, index, top_outputs) if changed >= BULK_THRESHOLD else None
        if tree is None:
            if changed >= BULK_THRESHOLD:  # git's filters rewrite some file: start over the ordinary way
                os.unlink(index)
                index = staging.temp_index(git, state)
            tree = staging.stage_worktree(git, state, index, list(top_outputs))
        if tree == gitobjects.tree_of(git, state.head):
            return None
        commit = gitobjects.commit_tree(git, state, tree, state.head, message)
        backup = branches.adopt(git, state, branch, commit, index)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(index)  # gone already when adopt made it the checkout's index
    if backup:
        log.warn(f"local branch {branch} had other commits; they are kept as {backup}")
    top_templates = [state.prefix + t for t in templates]
    return LocalCommit(commit, state.head, list(top_outputs), top_templates)


def unpublished_head(
    git: Git, state: RepoState, branch: str, templates: Mapping[str, bytes], message: str
) -> LocalCommit | None:
    """HEAD when it is a commit of ours on `branch` that origin was not seen to receive; else None.

    A rerun in the same checkout after a failed push (a bad token, a declined hook, a killed run)
    renders the same outputs and finds nothing to commit, but origin lacks the commit: it must be
    pushed, not reported as "nothing changed". Only the tool's own commit (this run's message, one
    parent) is pushed so: a commit of the user's on the branch is theirs to push. A push to origin by
    name moves refs/remotes/origin/<branch>, so after a good run this costs one local rev-parse.
    """
    if state.branch != branch or state.head is None:
        return None
    status, seen, _ = git.run(
        "rev-parse", "-q", "--verify", f"refs/remotes/origin/{branch}^{{commit}}", check=False
    )
    if status == 0 and seen.strip() == state.head:
        return None
    raw = git.run("cat-file", "commit", state.head, raw=True)[1]
    headers, _, body = bytes(raw).partition(b"\n\n")
    parents = [
        line[len(b"parent ") :].decode() for line in headers.split(b"\n") if line.startswith(b"parent ")
    ]
    if len(parents) != 1 or body != message.encode("utf-8"):
        return None  # not ours
    top_outputs = [state.prefix + output_path(t) for t in templates]
    return LocalCommit(state.head, parents[0], top_outputs, [state.prefix + t for t in templates])


PULL_REQUEST_DONE = "refs/update-gitops-repo/pull-request/"


def pull_request_pending(git: Git, state: RepoState, branch: str) -> bool:
    """HEAD is `branch` at a commit origin has, whose pull request step (in this checkout) did not
    finish: the push landed and the API call after it failed."""
    if state.branch != branch or state.head is None:
        return False
    tracking, done = f"refs/remotes/origin/{branch}", PULL_REQUEST_DONE + branch
    listing = git.out("for-each-ref", "--format=%(refname) %(objectname)", tracking, done)
    refs = dict(line.split(" ", 1) for line in listing.splitlines() if " " in line)
    return refs.get(tracking) == state.head and refs.get(done) != state.head


def pull_request_done(git: Git, branch: str, commit: str) -> None:
    """Note that `commit`'s pull request step finished (pull_request_pending reads it)."""
    git.run("update-ref", PULL_REQUEST_DONE + branch, commit, check=False)


def push_converging(
    git: Git,
    state: RepoState,
    local: LocalCommit,
    *,
    branch: str,
    message: str,
    selector: Selector,
    render: RenderFn,
    auth_env: Mapping[str, str],
    remote: str,
    force: bool,
    attempts: int,
    sleep: Callable[[float], None] = time.sleep,
) -> Published:
    commit = local.commit
    rejected = ""  # why the previous push was refused
    for attempt in range(1, attempts + 1):
        if attempt > 1:
            # Back off *before* fetching: the tip fetched after the wait is the freshest one, and the
            # re-rendered commit goes out at once. (Sleeping between fetch and push would let the
            # others move the branch again meanwhile.) Full jitter spreads concurrent writers out.
            import random  # here: only a rejected push needs it

            delay = random.uniform(0, min(4.0, 0.1 * 2 ** (attempt - 1)))
            log.info(f"origin/{branch} moved on; re-rendering on its new tip and retrying in {delay:.1f}s")
            sleep(delay)
            tip = transport.fetch_branch(git, branch, env=auth_env, shallow=state.shallow, remote=remote)
            if tip is None:
                _move_checkout(git, local.commit, commit)
                raise GitError(
                    f"push to origin/{branch} was rejected ({rejected}) but origin has no such branch"
                )
            rebuilt = rebuild_on(git, state, local, tip, message=message, selector=selector, render=render)
            if rebuilt is None:
                log.info(f"origin/{branch} already has this change ({tip[:12]})")
                _move_checkout(git, local.commit, tip)
                return Published(tip, False, attempt)
            commit = rebuilt
            log.debug(f"re-rendered on {tip[:12]}")
        log.debug(f"push {commit[:12]} to origin/{branch} (attempt {attempt}/{attempts})")
        result = transport.push(git, commit, branch, force=force, env=auth_env, remote=remote)
        if result.ok:
            _move_checkout(git, local.commit, commit)
            if result.up_to_date:
                log.info(f"origin/{branch} already has {commit[:12]}: nothing to push")
            return Published(commit, not result.up_to_date, attempt)
        if not result.rejected_stale or force:
            _move_checkout(git, local.commit, commit)
            why = result.message.rstrip(".")
            raise GitError(f"push to origin/{branch} failed: {why}. The commit is kept locally on {branch}")
        rejected = result.message
    _move_checkout(git, local.commit, commit)
    raise GitError(
        f"push to origin/{branch} was still rejected after {attempts} attempts because other pushes keep "
        f"moving it; the commit is kept locally on {branch}; rerun, or raise -push-attempts"
    )


def rebuild_on(
    git: Git,
    state: RepoState,
    local: LocalCommit,
    tip: str,
    *,
    message: str,
    selector: Selector,
    render: RenderFn,
) -> str | None:
    """Our change re-made on `tip`: templates rendered from tip's tree plus the user's other edits.

    Returns the new commit, or None when tip already contains exactly this change.
    """
    prefix = state.prefix
    # The user's own edits to tracked files (not outputs) travel with the change; an edited template
    # is rendered as edited, not as the tip has it.
    outputs = set(local.outputs)
    carried = [e for e in gitobjects.changed_entries(git, local.parent, local.commit) if e[2] not in outputs]
    carried_paths = {path: (mode, sha) for mode, sha, path in carried}
    in_tree = gitobjects.list_tree(git, tip, prefix.rstrip("/"))
    on_tip = {
        prefix + t for t in select((p[len(prefix) :] for p in in_tree if p.startswith(prefix)), selector)
    }
    # Templates: those the tip has, plus those the first render used (an untracked one is rendered
    # from the working tree again: it is nowhere else).
    from_commit = [p for p in sorted(on_tip | set(local.templates)) if p in carried_paths]
    from_tip = [p for p in sorted(on_tip) if p not in carried_paths]
    candidates = [p for p in local.templates if p not in on_tip and p not in carried_paths]
    tracked = gitobjects.read_blobs(git, local.commit, candidates)
    sources: dict[str, bytes | None] = {
        **gitobjects.read_blobs(
            git, local.commit, [p for p in from_commit if carried_paths[p][0] != "000000"]
        ),
        **gitobjects.read_blobs(git, tip, from_tip),
        **{p: _read_worktree(state.top, p) for p in candidates if tracked.get(p) is None},
    }
    rendered: dict[str, bytes] = {}
    for path, raw in sorted(sources.items()):
        if raw is not None:
            rendered[output_path(path)] = render(path[len(prefix) :], raw)
    current = gitobjects.read_blobs(git, tip, list(rendered))
    changed = {path: data for path, data in rendered.items() if current.get(path) != data}
    shas = gitobjects.write_blobs(git, state, changed)
    entries = [("100644", sha, path) for path, sha in zip(changed, shas, strict=True)]
    entries += [e for e in carried if e[2] not in rendered]
    index = staging.temp_index(git, state, from_tree=tip)
    try:
        tree = gitobjects.update_index(git, index, entries)
    finally:
        if os.path.exists(index):
            os.unlink(index)
    if tree == gitobjects.tree_of(git, tip):
        return None
    return gitobjects.commit_tree(git, state, tree, tip, message)


def _read_worktree(top: str, path: str) -> bytes | None:
    try:
        with open(os.path.join(top, path), "rb") as fh:
            return fh.read()
    except OSError:
        return None


def _move_checkout(git: Git, current: str, commit: str) -> None:
    """Move the checked-out branch from `current` to `commit`, once the push attempts are over."""
    if commit == current:
        return
    try:
        branches.reset_keep(git, commit)
    except GitError as exc:
        log.warn(f"the checkout could not be moved to {commit[:12]} ({exc}); the branch on origin is correct")
