"""git objects by sha: blobs, trees and commits, read and written without touching the checkout.

Owns the commit itself (commit_tree: parent, identity, -S when commit.gpgsign asks for it, the
message on stdin), the tree of a commit (tree_of, cached), and what a push retry needs to re-make a
change on another commit (publish.rebuild_on): listing and reading a commit's files, writing blobs,
the entries that differ between two commits, and an index brought to a tree from such entries. Also
whether git would store a path's bytes exactly as they are (raw_bytes_safe), which decides whether
blobs may be written without git's filters, here and in staging.stage_in_bulk.
"""

from __future__ import annotations

import os

from updater.errors import GitError
from updater.gitproc import last_line
from updater.redact import redact
from updater.repostate import identity_env

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from updater.gitproc import Git
    from updater.repostate import RepoState

# Attributes under which `git add` stores other bytes than the file holds (eol, autocrlf, LFS, ...).
_FILTER_ATTRIBUTES = ("text", "eol", "crlf", "filter", "ident", "working-tree-encoding")


def commit_tree(git: Git, state: RepoState, tree: str, parent: str | None, message: str) -> str:
    """A commit of `tree` on `parent` (none: a root commit), signed when commit.gpgsign says so."""
    args = ["commit-tree", tree]
    if parent:
        args += ["-p", parent]
    if state.gpgsign:
        args.append("-S")
    args += ["-F", "-"]
    status, out, err = git.run(*args, env=identity_env(state), stdin=message.encode(), check=False)
    if status != 0:
        hint = " (commit.gpgsign is set: is the signing key available?)" if state.gpgsign else ""
        raise GitError(redact(f"git could not create the commit: {last_line(err)}{hint}"))
    return str(out).strip()


def tree_of(git: Git, commit: str | None) -> str | None:
    if commit is None:
        return None
    if commit in git.trees:
        return git.trees[commit]
    tree = git.out("rev-parse", f"{commit}^{{tree}}")
    if len(commit) in (40, 64) and all(c in "0123456789abcdef" for c in commit):
        git.trees[commit] = tree  # a commit's tree never changes; a ref's may
    return tree


def raw_bytes_safe(git: Git, state: RepoState, paths: Iterable[str]) -> bool:
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
    out = str(git.run("check-attr", "-z", "--stdin", *_FILTER_ATTRIBUTES, stdin=request)[1])
    fields = out.split("\0")
    # path, attribute, value triples; anything but "unspecified" may change the bytes.
    return all(fields[i + 2] == "unspecified" for i in range(0, len(fields) - 2, 3))


# -- re-making a change on another commit (push races) ---------------------------------------------


def list_tree(git: Git, commit: str, prefix: str) -> list[str]:
    args = ["ls-tree", "-r", "-z", "--full-tree", "--name-only", commit]
    if prefix:
        args += ["--", prefix]
    return [p for p in str(git.run(*args)[1]).split("\0") if p]


def read_blobs(git: Git, commit: str, paths: Iterable[str]) -> dict[str, bytes | None]:
    """Contents of `commit:path` for each path in one `cat-file --batch`; None where missing."""
    paths = list(paths)
    if not paths:
        return {}
    request = b"".join(f"{commit}:{p}\n".encode() for p in paths)
    data: bytes = git.run("cat-file", "--batch", stdin=request, raw=True)[1]
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


def write_blobs(git: Git, state: RepoState, blobs: Mapping[str, bytes]) -> list[str]:
    """Store each path's bytes as its blob, as `git add` would; returns the shas in order.

    One `hash-object --stdin-paths --no-filters` over temp files when git would store the bytes
    as they are; otherwise one `hash-object --path` per file, so git's filters apply.
    """
    if not blobs:
        return []
    if not raw_bytes_safe(git, state, blobs):
        return [
            git.out("hash-object", "-w", f"--path={path}", "--stdin", stdin=content)
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
        out = git.out("hash-object", "-w", "--no-filters", "--stdin-paths", stdin="\n".join(names).encode())
    return out.split()


def changed_entries(git: Git, old: str | None, new: str) -> list[tuple[str, str, str]]:
    """(mode, sha, path) of every path that differs between two commits; mode 0 = deleted."""
    if old is None:
        args = ["ls-tree", "-r", "-z", "--full-tree", new]
        entries = []
        for item in str(git.run(*args)[1]).split("\0"):
            if item:
                meta, path = item.split("\t", 1)
                mode, _, sha = meta.split()
                entries.append((mode, sha, path))
        return entries
    out = str(git.run("diff-tree", "-r", "-z", "--no-renames", old, new)[1])
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


def update_index(git: Git, index: str, entries: Iterable[tuple[str, str, str]]) -> str:
    """Apply (mode, sha, path) entries to `index` and return the resulting tree."""
    lines = []
    for mode, sha, path in entries:
        if mode == "000000":
            lines.append(f"0 {'0' * 40}\t{path}\0")
        else:
            lines.append(f"{mode} {sha}\t{path}\0")
    env = {"GIT_INDEX_FILE": index}
    if lines:
        git.run("update-index", "-z", "--index-info", env=env, stdin="".join(lines).encode())
    return git.out("write-tree", env=env)
