"""What the checkout is: opening it, and RepoState, the facts every later git step works from.

Owns the queries that open a checkout (started together by open_checkout before the rest of the tool
loads, answered on first use: Opening), what they mean (read_state: top, git dir, HEAD and its branch,
shallow, origin's URL, the few config settings the tool reads, the tracked files the user edited),
the refusal to work in a checkout with a merge, rebase, cherry-pick or revert in progress, and the
commit identity (identity_env). Nothing here writes to the repository.
"""

from __future__ import annotations

import os

from updater.errors import GitError
from updater.gitproc import Git, finish, reason, start
from updater.redact import redact

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess

# The only settings the tool reads itself (one `git config` call); git applies all the others.
_CONFIG_KEYS = (
    r"^(user\.name|user\.email|commit\.gpgsign|remote\.origin\.url"
    r"|core\.autocrlf|core\.filemode|core\.symlinks|commit\.cleanup|core\.commentchar"
    r"|remote\.origin\.pushurl|url\..*\.insteadof|url\..*\.pushinsteadof)$"
)
DEFAULT_NAME = "CI"
DEFAULT_EMAIL = "ci@example.com"
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", ""}
# Which tracked files differ from the index (what `git add -u` would stage), submodules included
# whatever their `ignore` setting: `git add -u` stages a submodule's new commit regardless.
_DIFF_FILES = ["diff-files", "--name-only", "-z", "--ignore-submodules=none"]


class RepoState:
    __slots__ = (
        "branch",
        "config",
        "edited",
        "git_dir",
        "head",
        "origin_url",
        "prefix",
        "rewrites",
        "shallow",
        "top",
    )

    def __init__(
        self,
        top: str,
        git_dir: str,
        prefix: str,
        head: str | None,
        branch: str | None,
        shallow: bool,
        origin_url: str | None,
        config: dict[str, str],
        edited: list[str],
        rewrites: list[tuple[str, str, bool]] | None = None,
    ) -> None:
        self.top = top  # absolute path of the working tree's top
        self.git_dir = git_dir
        self.prefix = prefix  # working dir relative to top, "" or "a/b/" (with trailing slash)
        self.head = head  # commit sha, None on an unborn branch
        self.branch = branch  # current branch name, None when HEAD is detached
        self.shallow = shallow
        self.origin_url = origin_url  # may hold user:token: never in a message
        self.config = config  # the few settings the tool reads, lower-case keys
        # Tracked files that differed from the index when the run started (paths from the top): the
        # user's edits, committed with the outputs as `git add -u` would.
        self.edited = edited
        # git's URL rewrites (url.<base>.insteadOf / pushInsteadOf = prefix): (base, prefix, push only).
        self.rewrites = rewrites or []

    def urls_git_uses(self, url: str) -> list[str]:
        """Where git really fetches from and pushes to for `url` (origin's, or one given instead):
        url.*.insteadOf and pushInsteadOf rewrites (the longest prefix wins), and remote.origin.pushurl."""
        fetch = _rewrite(url, [(b, p) for b, p, push in self.rewrites if not push]) or url
        pushurl = self.config.get("remote.origin.pushurl")
        if pushurl:
            push = _rewrite(pushurl, [(b, p) for b, p, push in self.rewrites if not push]) or pushurl
        else:
            push = _rewrite(url, [(b, p) for b, p, push in self.rewrites if push]) or fetch
        return list(dict.fromkeys([fetch, push]))

    @property
    def gpgsign(self) -> bool:
        return self.config.get("commit.gpgsign", "").lower() in _TRUE

    @property
    def stores_bytes_as_written(self) -> bool:
        """No config makes git store other bytes or modes than the working tree's (see raw_bytes_safe)."""
        autocrlf = self.config.get("core.autocrlf", "false").lower()
        filemode = self.config.get("core.filemode", "true").lower()
        symlinks = self.config.get("core.symlinks", "true").lower()
        return autocrlf in _FALSE and filemode in _TRUE and symlinks in _TRUE


def _rewrite(url: str, rules: list[tuple[str, str]]) -> str | None:
    """git's url.<base>.insteadOf: the longest matching prefix is replaced by its base."""
    matches = [(prefix, base) for base, prefix in rules if prefix and url.startswith(prefix)]
    if not matches:
        return None
    prefix, base = max(matches, key=lambda m: len(m[0]))
    return base + url[len(prefix) :]


def open_checkout(workdir: str) -> Git:
    """The checkout around `workdir`; returns at once while git looks (read_state collects it)."""
    git = Git(workdir)
    git.opening = Opening(git.workdir)
    return git


class Opening:
    """The three questions that open a checkout, asked at once, answered on first use.

    Every deploy waits for each git process in turn, so opening the checkout asks three things at
    once and returns before they are answered (the caller gets on with its own work; read_state, or
    the first git command, collects the answers): the config settings the tool reads; one rev-parse
    for where the repository is (git finds it: parent directories, worktrees' .git files, GIT_DIR)
    and what HEAD is; and which tracked files the user changed before the run (staged with the
    outputs).
    """

    __slots__ = ("asking", "found")

    def __init__(self, workdir: str) -> None:
        self.asking: tuple[subprocess.Popen[bytes], ...] | None = (
            start(["config", "-z", "--get-regexp", _CONFIG_KEYS], workdir),
            start(_DIFF_FILES, workdir),
            start(
                [
                    "rev-parse",
                    "--is-bare-repository",
                    "--absolute-git-dir",
                    "--show-toplevel",
                    "HEAD^{commit}",
                    "HEAD^{tree}",
                    "--symbolic-full-name",
                    "HEAD",
                    "--",
                ],
                workdir,
            ),
        )
        self.found: tuple[list[str], str, list[str]] | None = None  # HEAD, config, edits as found

    def settle(self, git: Git) -> None:
        """Collect the answers (once) into `found`, and git's top and git dir."""
        if self.asking is None:
            return
        config, diff_files, rev_parse = self.asking
        self.asking = None
        status, out, _ = finish(rev_parse)
        config_text = str(finish(config)[1])
        edits = finish(diff_files)
        found = str(out).splitlines()
        if status != 0 and len(found) < 2:
            raise GitError(
                f"{os.path.abspath(git.given)} is not inside a git repository: run in a checkout of "
                "the GitOps repository (or use -compile-only)"
            )
        # (An absolute top, too: git before 2.25 printed nothing for --show-toplevel inside .git.)
        if len(found) < 3 or found[0] == "true" or not os.path.isabs(found[2]):
            raise GitError(f"{git.given} is a bare repository: the tool needs a checkout with a working tree")
        git.git_dir = os.path.realpath(found[1])
        git.top = os.path.realpath(found[2])
        # An unborn branch fails the rev-parse after the first three lines: _head asks again.
        self.found = (found[3:] if status == 0 else [], config_text, _edited(*edits))


def read_state(git: Git) -> RepoState:
    """The checkout as it was when opened (what open_checkout asked git)."""
    git.settle()
    assert git.opening is not None and git.opening.found is not None
    top, git_dir = git.top, git.git_dir
    refuse_unfinished_operation(git_dir)
    rel = os.path.relpath(git.workdir, top)
    prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
    found_head, cfg, edited = git.opening.found
    head, branch = _head(git, found_head)
    config: dict[str, str] = {}
    rewrites: list[tuple[str, str, bool]] = []
    for entry in cfg.split("\0"):
        if entry:
            key, _, value = entry.partition("\n")
            lowered = key.lower()
            if lowered.startswith("url.") and lowered.endswith(("insteadof", "pushinsteadof")):
                # url.<base>.insteadOf = <prefix> (many values each): the base keeps its case.
                push = lowered.endswith(".pushinsteadof")
                rewrites.append((key[4 : key.rindex(".")], value, push))
                continue
            config[lowered] = value  # last one wins, as git does
    return RepoState(
        top=top,
        git_dir=git_dir,
        prefix=prefix,
        head=head,
        branch=branch,
        shallow=os.path.exists(os.path.join(git_dir, "shallow")),
        origin_url=config.get("remote.origin.url"),
        rewrites=rewrites,
        config=config,
        edited=edited,
    )


def _head(git: Git, lines: list[str]) -> tuple[str | None, str | None]:
    """HEAD's commit and branch (None when detached), and its tree for tree_of, from the lines of
    `rev-parse HEAD^{commit} HEAD^{tree} --symbolic-full-name HEAD --`."""
    if len(lines) == 4 and lines[3] == "--":
        git.trees[lines[0]] = lines[1]
        return lines[0], None if lines[2] == "HEAD" else lines[2].removeprefix("refs/heads/")
    # An unborn branch (no commit yet): ask one thing at a time.
    status, head, _ = git.run("rev-parse", "-q", "--verify", "HEAD^{commit}", check=False)
    status_b, branch, _ = git.run("symbolic-ref", "-q", "--short", "HEAD", check=False)
    return head.strip() if status == 0 else None, branch.strip() if status_b == 0 else None


def _edited(status: int, listing: str, err: str) -> list[str]:
    if status != 0:  # never guess "no edits": they would be left out of the commit without a word
        raise GitError(redact(f"git diff-files failed: {reason(err) or f'exit status {status}'}"))
    return [p for p in listing.split("\0") if p]


def identity_env(state: RepoState) -> dict[str, str]:
    """CI <ci@example.com> unless git config (or the environment) already names someone."""
    env: dict[str, str] = {}
    if not state.config.get("user.name"):
        for var in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
            env[var] = os.environ.get(var) or DEFAULT_NAME
    if not state.config.get("user.email"):
        for var in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
            env[var] = os.environ.get(var) or DEFAULT_EMAIL
    return env


# What git leaves in .git while a merge, rebase, cherry-pick or revert waits for the user. Committing
# then would carry conflict markers (`git add -u` "resolves" them) and drop the operation's state.
_UNFINISHED = (
    ("MERGE_HEAD", "a merge"),
    ("rebase-merge", "a rebase"),
    ("rebase-apply", "a rebase or git am"),
    ("CHERRY_PICK_HEAD", "a cherry-pick"),
    ("REVERT_HEAD", "a revert"),
)


def refuse_unfinished_operation(git_dir: str) -> None:
    for name, what in _UNFINISHED:
        if os.path.exists(os.path.join(git_dir, name)):
            raise GitError(
                f"{what} is in progress in this checkout ({name} exists): finish or abort it first, "
                "then run the tool again"
            )
