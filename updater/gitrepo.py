"""The git side, through the git CLI: read the checkout, build a commit, push.

Commits are built with a temporary index (`GIT_INDEX_FILE`) and `git commit-tree`, so the user's
index, HEAD and branches stay untouched until the commit exists: a failure before that leaves the
checkout exactly as it was. `commit.gpgsign` is honoured by passing -S when the config asks for it
(commit-tree does not read that setting itself).

git runs as a plain subprocess, with the C locale so that its messages can be matched. GitPython
would run the same commands underneath, but importing it costs more than the whole shell-script
baseline of a deploy (docs/benchmarks.md): the tool runs in every pipeline, so it is not used here.
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess

from updater import log
from updater.errors import GitError
from updater.redact import redact

# No dataclasses, typing or tempfile at run time: every deploy pays for their import (docs/benchmarks.md).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import IO, Any

# The only settings the tool reads itself (one `git config` call); git applies all the others.
_CONFIG_KEYS = (
    r"^(user\.name|user\.email|commit\.gpgsign|remote\.origin\.url"
    r"|core\.autocrlf|core\.filemode|core\.symlinks)$"
)
DEFAULT_NAME = "CI"
DEFAULT_EMAIL = "ci@example.com"
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", ""}
# Attributes under which `git add` stores other bytes than the file holds (eol, autocrlf, LFS, ...).
_FILTER_ATTRIBUTES = ("text", "eol", "crlf", "filter", "ident", "working-tree-encoding")
BACKUP_PREFIX = "refs/update-gitops-repo/previous/"
# pid alone is 1 in every container: add randomness so two runs never share the scratch ref.
SCRATCH_REF = f"refs/update-gitops-repo/scratch-{os.getpid()}-{os.urandom(4).hex()}"


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


def _prepare_git_environment() -> None:
    """What every git child gets, set once in this process's environment.

    English messages whatever the user's locale: the markers above are matched against them. No
    password prompt, ever, in CI. And a mounted checkout owned by another uid (docker run,
    OpenShift) must just work: safe.directory is only read from protected config, and command-scope
    config (GIT_CONFIG_* in the environment) counts as protected, without touching any file.
    """
    os.environ.update({"LANGUAGE": "C", "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"})
    if os.environ.get("UPDATE_GITOPS_REPO_SAFE_DIRECTORY_SET") != "1":
        os.environ.update(config_env({"safe.directory": "*"}))
        os.environ["UPDATE_GITOPS_REPO_SAFE_DIRECTORY_SET"] = "1"


class RepoState:
    __slots__ = ("branch", "config", "edited", "git_dir", "head", "origin_url", "prefix", "shallow", "top")

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


class Git:
    """One repository, found from the working dir upwards."""

    def __init__(self, workdir: str) -> None:
        _prepare_git_environment()
        self.workdir = os.path.realpath(workdir)
        self.given = workdir  # as the caller named it, for messages
        self.top: str  # set by _settle: the working tree's top
        self.git_dir: str
        self._trees: dict[str, str] = {}  # commit → tree, learnt on the way
        # Every deploy waits for each git process in turn, so opening the checkout asks three things
        # at once and returns before they are answered (the caller gets on with its own work; state()
        # collects the answers): the config settings the tool reads; one rev-parse for where the
        # repository is (git finds it: parent directories, worktrees' .git files, GIT_DIR) and what
        # HEAD is; and which tracked files the user changed before the run (staged with the outputs).
        self._asking: tuple[subprocess.Popen[bytes], ...] | None = (
            self._start(["config", "-z", "--get-regexp", _CONFIG_KEYS], self.workdir),
            self._start(_DIFF_FILES, self.workdir),
            self._start(
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
                self.workdir,
            ),
        )
        self._opened: tuple[list[str], str, list[str]] | None = None  # HEAD, config, edits as found

    def _settle(self) -> None:
        """Collect what opening the checkout asked; a working dir outside a checkout fails here."""
        if self._asking is None:
            return
        config, diff_files, rev_parse = self._asking
        self._asking = None
        status, out, _ = self._finish(rev_parse)
        config_text = str(self._finish(config)[1])
        edits = self._finish(diff_files)
        found = str(out).splitlines()
        if status != 0 and len(found) < 2:
            raise GitError(
                f"{os.path.abspath(self.given)} is not inside a git repository: run in a checkout of "
                "the GitOps repository (or use -compile-only)"
            )
        # (An absolute top, too: git before 2.25 printed nothing for --show-toplevel inside .git.)
        if len(found) < 3 or found[0] == "true" or not os.path.isabs(found[2]):
            raise GitError(
                f"{self.given} is a bare repository: the tool needs a checkout with a working tree"
            )
        self.git_dir = os.path.realpath(found[1])
        self.top = os.path.realpath(found[2])
        # An unborn branch fails the rev-parse after the first three lines: _head asks again.
        self._opened = (found[3:] if status == 0 else [], config_text, _edited(*edits))

    # -- running git ---------------------------------------------------------------------------

    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        stdin: bytes | IO[bytes] | None = None,
        check: bool = True,
        raw: bool = False,
    ) -> tuple[int, Any, str]:
        """Run `git args...` at the top of the working tree; returns (status, stdout, stderr)."""
        self._settle()
        log.debug("git " + " ".join(args))
        status, out, err_text = self._execute(list(args), self.top, env=env, stdin=stdin, raw=raw)
        if check and status != 0:
            raise GitError(redact(f"git {args[0]} failed: {_reason(err_text) or f'exit status {status}'}"))
        return int(status), out, err_text

    @classmethod
    def _execute(
        cls,
        args: list[str],
        cwd: str,
        *,
        env: Mapping[str, str] | None = None,
        stdin: bytes | IO[bytes] | None = None,
        raw: bool = False,
    ) -> tuple[int, Any, str]:
        feed = stdin if isinstance(stdin, bytes) else None
        source = None if isinstance(stdin, bytes) else stdin
        return cls._finish(cls._start(args, cwd, env=env, stdin=source, feed=feed is not None), feed, raw=raw)

    @staticmethod
    def _start(
        args: list[str],
        cwd: str,
        *,
        env: Mapping[str, str] | None = None,
        stdin: IO[bytes] | None = None,
        feed: bool = False,
    ) -> subprocess.Popen[bytes]:
        """Start `git args...`; stdin is a file, a pipe to feed later (`feed`), or nothing."""
        run_env = {**os.environ, **env} if env else None  # see _prepare_git_environment
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

    @staticmethod
    def _finish(
        process: subprocess.Popen[bytes], feed: bytes | None = None, *, raw: bool = False
    ) -> tuple[int, Any, str]:
        out_bytes, err_bytes = process.communicate(feed)
        out: Any = out_bytes if raw else out_bytes.decode("utf-8", "surrogateescape")
        return process.returncode, out, err_bytes.decode("utf-8", "surrogateescape")

    def out(self, *args: str, env: Mapping[str, str] | None = None, stdin: bytes | None = None) -> str:
        text: str = self.run(*args, env=env, stdin=stdin)[1]
        return text.strip()

    # -- reading the checkout -------------------------------------------------------------------

    def state(self) -> RepoState:
        """The checkout as it was when opened (what __init__ asked git)."""
        self._settle()
        assert self._opened is not None
        top, git_dir = self.top, self.git_dir
        _refuse_unfinished_operation(git_dir)
        rel = os.path.relpath(self.workdir, top)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        found_head, cfg, edited = self._opened
        head, branch = self._head(found_head)
        config: dict[str, str] = {}
        for entry in cfg.split("\0"):
            if entry:
                key, _, value = entry.partition("\n")
                config[key.lower()] = value  # last one wins, as git does
        return RepoState(
            top=top,
            git_dir=git_dir,
            prefix=prefix,
            head=head,
            branch=branch,
            shallow=os.path.exists(os.path.join(git_dir, "shallow")),
            origin_url=config.get("remote.origin.url"),
            config=config,
            edited=edited,
        )

    def _head(self, lines: list[str]) -> tuple[str | None, str | None]:
        """HEAD's commit and branch (None when detached), and its tree for tree_of, from the lines of
        `rev-parse HEAD^{commit} HEAD^{tree} --symbolic-full-name HEAD --`."""
        if len(lines) == 4 and lines[3] == "--":
            self._trees[lines[0]] = lines[1]
            return lines[0], None if lines[2] == "HEAD" else lines[2].removeprefix("refs/heads/")
        # An unborn branch (no commit yet): ask one thing at a time.
        status, head, _ = self.run("rev-parse", "-q", "--verify", "HEAD^{commit}", check=False)
        status_b, branch, _ = self.run("symbolic-ref", "-q", "--short", "HEAD", check=False)
        return head.strip() if status == 0 else None, branch.strip() if status_b == 0 else None

    def identity_env(self, state: RepoState) -> dict[str, str]:
        """CI <ci@example.com> unless git config (or the environment) already names someone."""
        env: dict[str, str] = {}
        if not state.config.get("user.name"):
            for var in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
                env[var] = os.environ.get(var) or DEFAULT_NAME
        if not state.config.get("user.email"):
            for var in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
                env[var] = os.environ.get(var) or DEFAULT_EMAIL
        return env

    # -- building commits -----------------------------------------------------------------------

    def temp_index(self, state: RepoState, from_tree: str | None = None) -> str:
        """A private copy of the index (or an index of `from_tree`): the user's stays untouched."""
        path = os.path.join(state.git_dir, f"update-gitops-repo.{os.getpid()}.{os.urandom(4).hex()}.index")
        real_index = os.path.join(state.git_dir, "index")
        if from_tree is None and os.path.exists(real_index):
            with open(real_index, "rb") as src, open(path, "xb") as dst:
                dst.write(src.read())
                st = os.fstat(src.fileno())
            # The copy keeps the index's mtime: git re-reads every entry whose file is not older than
            # the index file itself ("racily clean"), or a same-size edit made in the tick the index
            # was written would look unchanged and be left out of the commit.
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        elif from_tree or state.head:
            self.run("read-tree", from_tree or str(state.head), env={"GIT_INDEX_FILE": path})
        return path

    def stage_worktree(self, state: RepoState, index: str, outputs: Sequence[str]) -> str:
        """Stage outputs and the user's tracked edits into `index`; returns the tree sha."""
        env = {"GIT_INDEX_FILE": index}
        if outputs:
            # update-index takes literal paths: `git add` would match every index entry against every
            # pathspec (10,000 outputs in 100,000 files: 12 s). Like `add -f`, it ignores .gitignore
            # (an output is meant to be committed) and applies the same clean/eol filters.
            paths = b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in outputs)
            self.run("update-index", "--add", "-z", "--stdin", env=env, stdin=paths)
        if state.edited:
            # The user changed tracked files before the run: `git add -u` stages them exactly as git
            # would (deletions, a directory turned symlink, a file turned submodule). Without such
            # edits, the usual case in CI, it would stage nothing: one git process saved.
            self.run("add", "-u", "--", ":/", env=env)
        return self.out("write-tree", env=env)

    def raw_bytes_safe(self, state: RepoState, paths: Iterable[str]) -> bool:
        """Whether git would store these paths' bytes exactly as they are in the working tree.

        Then blobs can be written without git's filters (fast-import, hash-object --no-filters) and
        still be what `git add` makes. Any eol/text/filter attribute, core.autocrlf, or a
        core.fileMode/core.symlinks turned off means: let git's own staging do it.
        """
        if not state.stores_bytes_as_written:
            return False
        request = b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in paths)
        if not request:
            return True
        out = str(self.run("check-attr", "-z", "--stdin", *_FILTER_ATTRIBUTES, stdin=request)[1])
        fields = out.split("\0")
        # path, attribute, value triples; anything but "unspecified" may change the bytes.
        return all(fields[i + 2] == "unspecified" for i in range(0, len(fields) - 2, 3))

    def stage_in_bulk(self, state: RepoState, index: str, outputs: Mapping[str, bytes]) -> str | None:
        """The tree `stage_worktree` would make, with every new object written into one pack.

        For thousands of outputs, `update-index` and `write-tree` create one loose object per blob and
        per directory (0.2-0.4 ms each on a slow disk: ~7 s for 10,000 outputs); `git fast-import`
        streams them into a single pack (~1 s). The tree is taken from a throwaway commit on a scratch
        ref; `index` (a copy of the user's) is then brought to that tree, keeping the stat data of
        every entry that did not change. fast-import stores bytes as they are: where git's clean
        filters (autocrlf, eol, LFS) would have changed a file, the refresh below notices and None
        tells the caller to stage the ordinary way.
        """
        env = {"GIT_INDEX_FILE": index}
        base = state.head or self.out("hash-object", "-t", "tree", "/dev/null")  # the empty tree
        import tempfile  # here: only thousands of outputs come this way

        # The stream goes through a temporary file, not memory: 50,000 outputs are ~50 MB of it.
        with tempfile.TemporaryFile() as stream:
            stream.write(b"commit %s\n" % SCRATCH_REF.encode())
            stream.write(b"committer update-gitops-repo <update-gitops-repo@localhost> 0 +0000\ndata 0\n")
            if state.head:
                stream.write(b"from %s\n" % state.head.encode())
            # What the user staged already (its blobs exist), then tracked files edited in the worktree.
            staged = str(self.run("diff-index", "--cached", "-z", "--no-renames", base, env=env)[1])
            for mode, sha, path in _raw_diff_entries(staged):
                if path not in outputs:
                    stream.write(_fast_import_entry(mode, sha, path))
            edited = [
                path
                for _mode, _sha, path in _raw_diff_entries(
                    str(self.run("diff-files", "-z", "--no-renames", env=env)[1])
                )
                if path not in outputs
            ]
            if not self.raw_bytes_safe(state, [*outputs, *edited]):
                return None
            for path in edited:
                stream.write(self._worktree_entry(path))
            for path, content in outputs.items():
                stream.write(b"M 100644 inline %s\ndata %d\n" % (_fast_import_path(path), len(content)))
                stream.write(content)
                stream.write(b"\n")
            stream.write(b"done\n")
            self.run("fast-import", "--quiet", "--force", "--done", stdin=stream)
        try:
            tree = self.out("rev-parse", f"{SCRATCH_REF}^{{tree}}")
        finally:
            self.run("update-ref", "-d", SCRATCH_REF, check=False)
        self.run(
            "read-tree", "--reset", tree, env=env
        )  # one-way merge: unchanged entries keep their stat data
        # Fresh stat data for the outputs (hashing only, the objects exist): `git status` stays fast.
        refreshed, _, _ = self.run("update-index", "--refresh", env=env, check=False)
        return tree if refreshed == 0 else None

    def _worktree_entry(self, path: str) -> bytes:
        full = os.path.join(self.top, path)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            return b"D %s\n" % _fast_import_path(path)  # `git add -u` stages a deletion too
        if stat.S_ISLNK(st.st_mode):
            mode, data = "120000", os.fsencode(os.readlink(full))
        elif stat.S_ISREG(st.st_mode):
            mode = "100755" if st.st_mode & 0o100 else "100644"  # git looks at the owner's x bit only
            with open(full, "rb") as fh:
                data = fh.read()
        else:
            return b""  # a submodule or a directory where a file was: left as it is
        return b"M %s inline %s\ndata %d\n%s\n" % (mode.encode(), _fast_import_path(path), len(data), data)

    def tree_of(self, commit: str | None) -> str | None:
        if commit is None:
            return None
        if commit in self._trees:
            return self._trees[commit]
        tree = self.out("rev-parse", f"{commit}^{{tree}}")
        if len(commit) in (40, 64) and all(c in "0123456789abcdef" for c in commit):
            self._trees[commit] = tree  # a commit's tree never changes; a ref's may
        return tree

    def commit_tree(self, state: RepoState, tree: str, parent: str | None, message: str) -> str:
        args = ["commit-tree", tree]
        if parent:
            args += ["-p", parent]
        if state.gpgsign:
            args.append("-S")
        args += ["-F", "-"]
        status, out, err = self.run(*args, env=self.identity_env(state), stdin=message.encode(), check=False)
        if status != 0:
            hint = " (commit.gpgsign is set: is the signing key available?)" if state.gpgsign else ""
            raise GitError(redact(f"git could not create the commit: {_last_line(err)}{hint}"))
        return str(out).strip()

    def adopt(self, state: RepoState, branch: str, commit: str, index: str) -> str | None:
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
            moved_from, backup = self._move_branch(state, ref, branch, commit)
            self.run("symbolic-ref", "-m", "update-gitops-repo: switch", "HEAD", ref)
            switched = True
            os.replace(index, lock)
            os.replace(lock, os.path.join(state.git_dir, "index"))  # this releases the lock
            locked = False
        except BaseException:
            # Put back what moved (best effort): HEAD may even be on the branch (-branch=<current>).
            if switched and state.branch:
                self.run("symbolic-ref", "HEAD", f"refs/heads/{state.branch}", check=False)
            elif switched and state.head:
                self.run("update-ref", "--no-deref", "HEAD", state.head, check=False)
            if moved_from is not None:
                back = ["-d", ref, commit] if moved_from == "" else [ref, moved_from, commit]
                self.run("update-ref", *back, check=False)
            raise
        finally:
            if locked:  # ours: never remove a lock another process took after the rename
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock)
        return backup

    def _move_branch(self, state: RepoState, ref: str, branch: str, commit: str) -> tuple[str, str | None]:
        """Point `ref` at `commit`; returns its old commit ("" if it was created) and the backup ref."""
        message = "update-gitops-repo: commit"
        # The usual case is a new branch: create it only if it does not exist yet (old value ""), one call.
        created, _, _ = self.run("update-ref", "-m", message, ref, commit, "", check=False)
        if created == 0:
            return "", None
        backup = None
        status, old, _ = self.run("rev-parse", "-q", "--verify", f"{ref}^{{commit}}", check=False)
        old = old.strip() if status == 0 else ""
        if old and old != state.head:
            merged, _, _ = self.run("merge-base", "--is-ancestor", old, commit, check=False)
            if merged != 0:
                backup = BACKUP_PREFIX + branch
                self.run("update-ref", backup, old)
        self.run("update-ref", "-m", message, ref, commit, old)  # old: nobody moved it meanwhile
        return old, backup

    # -- talking to origin ----------------------------------------------------------------------

    def push(
        self, commit: str, branch: str, *, force: bool, env: Mapping[str, str], remote: str
    ) -> PushResult:
        refspec = f"{'+' if force else ''}{commit}:refs/heads/{branch}"
        status, out, err = self.run("push", "--porcelain", remote, refspec, env=env, check=False)
        return push_outcome(status, str(out), err, branch)

    def fetch_branch(self, branch: str, *, env: Mapping[str, str], shallow: bool, remote: str) -> str | None:
        """Fetch origin's `branch`; its tip sha, or None when origin has no such branch."""
        args = ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head"]
        if shallow:
            args.append("--depth=1")
        tracking = f"refs/update-gitops-repo/remote/{branch}"
        status, _, err = self.run(*args, remote, f"+refs/heads/{branch}:{tracking}", env=env, check=False)
        if status != 0:
            if "couldn't find remote ref" in err.lower():
                return None
            raise GitError(redact(f"fetching {branch} from origin failed: {_auth_line(err)}"))
        return self.out("rev-parse", tracking)

    def remote_default_branch(self, *, env: Mapping[str, str], remote: str) -> str | None:
        status, out, _ = self.run("ls-remote", "--symref", remote, "HEAD", env=env, check=False)
        if status != 0:
            return None
        for line in str(out).splitlines():
            if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
                return line[len("ref: refs/heads/") : -len("\tHEAD")]
        return None

    # -- re-rendering on another commit (push races) -------------------------------------------

    def list_tree(self, commit: str, prefix: str) -> list[str]:
        args = ["ls-tree", "-r", "-z", "--full-tree", "--name-only", commit]
        if prefix:
            args += ["--", prefix]
        return [p for p in str(self.run(*args)[1]).split("\0") if p]

    def read_blobs(self, commit: str, paths: Iterable[str]) -> dict[str, bytes | None]:
        """Contents of `commit:path` for each path in one `cat-file --batch`; None where missing."""
        paths = list(paths)
        if not paths:
            return {}
        request = b"".join(f"{commit}:{p}\n".encode() for p in paths)
        data: bytes = self.run("cat-file", "--batch", stdin=request, raw=True)[1]
        result: dict[str, bytes | None] = {}
        pos = 0
        for path in paths:
            end = data.index(b"\n", pos)
            head = data[pos:end].split()
            pos = end + 1
            if len(head) == 2 and head[1] == b"missing":
                result[path] = None
                continue
            size = int(head[2])
            result[path] = data[pos : pos + size] if head[1] == b"blob" else None
            pos += size + 1
        return result

    def write_blobs(self, state: RepoState, blobs: Mapping[str, bytes]) -> list[str]:
        """Store each path's bytes as its blob, as `git add` would; returns the shas in order.

        One `hash-object --stdin-paths --no-filters` over temp files when git would store the bytes
        as they are; otherwise one `hash-object --path` per file, so git's filters apply.
        """
        if not blobs:
            return []
        if not self.raw_bytes_safe(state, blobs):
            return [
                self.out("hash-object", "-w", f"--path={path}", "--stdin", stdin=content)
                for path, content in blobs.items()
            ]
        import tempfile  # here: only a push retry comes this way

        contents = list(blobs.values())
        with tempfile.TemporaryDirectory(prefix="update-gitops-repo.") as tmp:
            names = []
            for i, blob in enumerate(contents):
                name = os.path.join(tmp, str(i))
                with open(name, "wb") as fh:
                    fh.write(blob)
                names.append(name)
            out = self.out(
                "hash-object", "-w", "--no-filters", "--stdin-paths", stdin="\n".join(names).encode()
            )
        return out.split()

    def changed_entries(self, old: str | None, new: str) -> list[tuple[str, str, str]]:
        """(mode, sha, path) of every path that differs between two commits; mode 0 = deleted."""
        if old is None:
            args = ["ls-tree", "-r", "-z", "--full-tree", new]
            entries = []
            for item in str(self.run(*args)[1]).split("\0"):
                if item:
                    meta, path = item.split("\t", 1)
                    mode, _, sha = meta.split()
                    entries.append((mode, sha, path))
            return entries
        out = str(self.run("diff-tree", "-r", "-z", "--no-renames", old, new)[1])
        fields = out.split("\0")
        entries = []
        for i in range(0, len(fields) - 1, 2):
            meta, path = fields[i], fields[i + 1]
            if not meta:
                continue
            parts = meta.lstrip(":").split()
            new_mode, new_sha = parts[1], parts[3]
            entries.append((new_mode, new_sha, path))
        return entries

    def update_index(self, index: str, entries: Iterable[tuple[str, str, str]]) -> str:
        """Apply (mode, sha, path) entries to `index` and return the resulting tree."""
        lines = []
        for mode, sha, path in entries:
            if mode == "000000":
                lines.append(f"0 {'0' * 40}\t{path}\0")
            else:
                lines.append(f"{mode} {sha}\t{path}\0")
        env = {"GIT_INDEX_FILE": index}
        if lines:
            self.run("update-index", "-z", "--index-info", env=env, stdin="".join(lines).encode())
        return self.out("write-tree", env=env)

    def reset_keep(self, commit: str) -> None:
        """Move the checked-out branch's files to `commit` (after a retry built it elsewhere)."""
        self.run("reset", "-q", "--keep", commit)


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
        return PushResult(False, True, _last_line(text))
    return PushResult(False, False, _push_failure(out, err) or f"exit status {status}")


_REF_FORBIDDEN = set(" ~^:?*[\\") | {chr(c) for c in range(32)} | {chr(127)}


def branch_name_problem(name: str) -> str | None:
    """Why `name` is not a valid branch name (git check-ref-format --branch), or None if it is.

    Checked before anything is written: git would only refuse it at update-ref, after the commit.
    """
    if not name:
        return "it is empty"
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


# What git leaves in .git while a merge, rebase, cherry-pick or revert waits for the user. Committing
# then would carry conflict markers (`git add -u` "resolves" them) and drop the operation's state.
_UNFINISHED = (
    ("MERGE_HEAD", "a merge"),
    ("rebase-merge", "a rebase"),
    ("rebase-apply", "a rebase or git am"),
    ("CHERRY_PICK_HEAD", "a cherry-pick"),
    ("REVERT_HEAD", "a revert"),
)


def _refuse_unfinished_operation(git_dir: str) -> None:
    for name, what in _UNFINISHED:
        if os.path.exists(os.path.join(git_dir, name)):
            raise GitError(
                f"{what} is in progress in this checkout ({name} exists): finish or abort it first, "
                "then run the tool again"
            )


# Which tracked files differ from the index (what `git add -u` would stage), submodules included
# whatever their `ignore` setting: `git add -u` stages a submodule's new commit regardless.
_DIFF_FILES = ["diff-files", "--name-only", "-z", "--ignore-submodules=none"]


def _edited(status: int, listing: str, err: str) -> list[str]:
    if status != 0:  # never guess "no edits": they would be left out of the commit without a word
        raise GitError(redact(f"git diff-files failed: {_reason(err) or f'exit status {status}'}"))
    return [p for p in listing.split("\0") if p]


def _reason(err: str) -> str:
    """git's own error line; its last line is often advice ("remove the file manually to continue")."""
    for line in err.splitlines():
        if line.startswith(("fatal:", "error:")):
            return redact(line.strip())
    return _last_line(err)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return redact(lines[-1]) if lines else ""


def _push_failure(out: str, err: str) -> str:
    """The line that says why: the refused ref's status from --porcelain, else git's first fatal: line
    (its last line is often the tail of a hint such as "and the repository exists.")."""
    for line in out.splitlines():
        if line.startswith("!\t") and line.count("\t") >= 2:
            return redact(line.split("\t", 2)[2].strip())
    for line in err.splitlines():
        if line.startswith("fatal:"):
            return redact(line.strip())
    return _last_line(err) or _last_line(out)


def _auth_line(text: str) -> str:
    for line in str(text).splitlines():
        low = line.lower()
        if any(m in low for m in _AUTH_MARKERS) or line.startswith("fatal:"):
            return redact(line.strip())
    return _last_line(text)


def _explain_hook(text: str, branch: str) -> str:
    details = [
        ln.strip() for ln in text.splitlines() if ln.strip().startswith("remote:") and ln.strip() != "remote:"
    ]
    reason = redact(details[0].removeprefix("remote:").strip()) if details else _last_line(text)
    return (
        f"origin refused the push to {branch} ({reason}): the branch is protected; push to another -branch "
        "and open a pull request instead"
    )


def _raw_diff_entries(raw: str) -> list[tuple[str, str, str]]:
    """(new mode, new sha, path) from `diff-index`/`diff-files -z` raw output; mode 000000 = deleted."""
    fields = raw.split("\0")
    entries = []
    for i in range(0, len(fields) - 1, 2):
        meta, path = fields[i], fields[i + 1]
        if meta.startswith(":"):
            parts = meta[1:].split()
            entries.append((parts[1], parts[3], path))
    return entries


def _fast_import_path(path: str) -> bytes:
    raw = path.encode("utf-8", "surrogateescape")
    if raw.startswith(b'"') or b"\n" in raw or b"\\" in raw:
        # fast-import's C-style quoting for the few names that need it.
        raw = b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n") + b'"'
    return raw


def _fast_import_entry(mode: str, sha: str, path: str) -> bytes:
    if mode == "000000":
        return b"D %s\n" % _fast_import_path(path)
    if mode == "160000":
        return b"M 160000 %s %s\n" % (sha.encode(), _fast_import_path(path))
    return b"M %s %s %s\n" % (mode.encode(), sha.encode(), _fast_import_path(path))
