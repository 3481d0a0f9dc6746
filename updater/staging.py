"""Staging: the rendered outputs and the user's tracked edits → a tree, in a private index.

Owns the private index (temp_index: a copy of the checkout's, or one read from a tree; the user's
index stays untouched until branches.adopt installs ours) and the two ways of filling it with
exactly what `git add` of the outputs plus `git add -u` would stage: stage_worktree (git's own
update-index / add -u, one loose object per blob and tree) and, for many outputs, stage_in_bulk
(every new object streamed into one pack by `git fast-import`, falling back when git's filters
would have stored other bytes). The tree then goes to gitobjects.commit_tree.
"""

from __future__ import annotations

import os
import stat

from updater.gitobjects import raw_bytes_safe

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from updater.gitproc import Git
    from updater.repostate import RepoState

# pid alone is 1 in every container: add randomness so two runs never share the scratch ref.
SCRATCH_REF = f"refs/update-gitops-repo/scratch-{os.getpid()}-{os.urandom(4).hex()}"


def temp_index(git: Git, state: RepoState, from_tree: str | None = None) -> str:
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
        git.run("read-tree", from_tree or str(state.head), env={"GIT_INDEX_FILE": path})
    return path


def stage_worktree(git: Git, state: RepoState, index: str, outputs: Sequence[str]) -> str:
    """Stage outputs and the user's tracked edits into `index`; returns the tree sha."""
    env = {"GIT_INDEX_FILE": index}
    if outputs:
        # update-index takes literal paths: `git add` would match every index entry against every
        # pathspec (10,000 outputs in 100,000 files: 12 s). Like `add -f`, it ignores .gitignore
        # (an output is meant to be committed) and applies the same clean/eol filters.
        paths = b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in outputs)
        git.run("update-index", "--add", "-z", "--stdin", env=env, stdin=paths)
    if state.edited:
        # The user changed tracked files before the run: `git add -u` stages them exactly as git
        # would (deletions, a directory turned symlink, a file turned submodule). Without such
        # edits, the usual case in CI, it would stage nothing: one git process saved.
        git.run("add", "-u", "--", ":/", env=env)
    return git.out("write-tree", env=env)


def stage_in_bulk(git: Git, state: RepoState, index: str, outputs: Mapping[str, bytes]) -> str | None:
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
    base = state.head or git.out("hash-object", "-t", "tree", "/dev/null")  # the empty tree
    import tempfile  # here: only thousands of outputs come this way

    # The stream goes through a temporary file, not memory: 50,000 outputs are ~50 MB of it.
    with tempfile.TemporaryFile() as stream:
        stream.write(b"commit %s\n" % SCRATCH_REF.encode())
        stream.write(b"committer update-gitops-repo <update-gitops-repo@localhost> 0 +0000\ndata 0\n")
        if state.head:
            stream.write(b"from %s\n" % state.head.encode())
        # What the user staged already (its blobs exist), then tracked files edited in the worktree.
        staged = str(git.run("diff-index", "--cached", "-z", "--no-renames", base, env=env)[1])
        for mode, sha, path in _raw_diff_entries(staged):
            if path not in outputs:
                stream.write(_fast_import_entry(mode, sha, path))
        edited = [
            path
            for _mode, _sha, path in _raw_diff_entries(
                str(git.run("diff-files", "-z", "--no-renames", env=env)[1])
            )
            if path not in outputs
        ]
        if not raw_bytes_safe(git, state, [*outputs, *edited]):
            return None
        for path in edited:
            stream.write(_worktree_entry(git.top, path))
        for path, content in outputs.items():
            stream.write(b"M 100644 inline %s\ndata %d\n" % (_fast_import_path(path), len(content)))
            stream.write(content)
            stream.write(b"\n")
        stream.write(b"done\n")
        git.run("fast-import", "--quiet", "--force", "--done", stdin=stream)
    try:
        tree = git.out("rev-parse", f"{SCRATCH_REF}^{{tree}}")
    finally:
        git.run("update-ref", "-d", SCRATCH_REF, check=False)
    git.run("read-tree", "--reset", tree, env=env)  # one-way merge: unchanged entries keep their stat data
    # Fresh stat data for the outputs (hashing only, the objects exist): `git status` stays fast.
    refreshed, _, _ = git.run("update-index", "--refresh", env=env, check=False)
    return tree if refreshed == 0 else None


def _worktree_entry(top: str, path: str) -> bytes:
    full = os.path.join(top, path)
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
