"""From BULK_THRESHOLD changed outputs on, the commit's objects are written by `git fast-import` into
one pack. The commit must be exactly what `git add` would have made: same tree, same staging rule,
and a checkout whose index agrees with its files afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_tool
from tests.gitserver import clean_env, run_git
from updater.publish import BULK_THRESHOLD

SERVICES = BULK_THRESHOLD + 20
TEMPLATE = "apiVersion: apps/v1\r\nkind: Deployment\r\nimage: registry/app@$({ .digest })\r\n"


def git(cwd: Path, *args: str) -> str:
    return run_git(*args, cwd=cwd, env=clean_env()).stdout.decode()


def make_repo(root: Path, filtered: str) -> Path:
    """A repo with many templates and every kind of user change the staging rule covers."""
    bare, seed = root / "origin.git", root / "seed"
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    seed.mkdir(parents=True)
    git(seed, "init", "-q", "-b", "main")
    for i in range(SERVICES):
        d = seed / "apps" / f"svc-{i:03d}"
        d.mkdir(parents=True)
        (d / "deployment.yaml.tmpl").write_bytes(TEMPLATE.encode())
        (d / "deployment.yaml").write_bytes(TEMPLATE.replace("$({ .digest })", "sha256:old").encode())
    (seed / '"lead.yaml.tmpl').write_text("a: $({ .digest })\n")  # fast-import needs this path quoted
    (seed / "back\\slash dir").mkdir()
    (seed / "back\\slash dir" / "x.yaml.tmpl").write_text("b: $({ .digest })\n")
    (seed / "README.md").write_text("readme\n")
    if filtered == "eol-attribute":
        # git's clean filter turns the outputs' CRLF into LF on the way in; fast-import would not.
        (seed / ".gitattributes").write_text("*.yaml text eol=lf\n")
    elif filtered == "text-auto":
        # Normalised only where the index blob has no CR yet: the refresh alone cannot tell.
        (seed / ".gitattributes").write_text("* text=auto\n")
    (seed / "deploy.sh").write_text("#!/bin/sh\necho 1\n")
    (seed / "deploy.sh").chmod(0o755)
    (seed / "gone.txt").write_text("to be deleted\n")
    (seed / "link").symlink_to("README.md")
    git(seed, "add", "-A")
    git(seed, "-c", "user.name=s", "-c", "user.email=s@x", "commit", "-q", "-m", "seed")
    git(seed, "push", "-q", bare.as_uri(), "main")
    return bare


def checkout(bare: Path, dest: Path, filtered: str = "plain") -> Path:
    git(bare.parent, "clone", "-q", bare.as_uri(), str(dest))
    if filtered == "filemode-off":
        git(dest, "config", "core.fileMode", "false")
    # The user's own changes before the tool runs.
    (dest / "README.md").write_text("edited by a script\n")
    (dest / "deploy.sh").write_text("#!/bin/sh\necho 2\n")
    (dest / "gone.txt").unlink()
    (dest / "staged.txt").write_text("staged by the user\n")
    git(dest, "add", "staged.txt")
    (dest / "scratch.txt").write_text("untracked, not ours\n")
    return dest


@pytest.mark.parametrize("filtered", ["plain", "eol-attribute", "text-auto", "filemode-off"])
def test_bulk_commit_is_exactly_what_git_add_would_commit(tmp_path: Path, filtered: str) -> None:
    bare = make_repo(tmp_path, filtered)
    args = ["-header=false", "-substitute=digest=sha256:new"]

    tool = checkout(bare, tmp_path / "tool", filtered)
    run = run_tool(["-git-revision=1", "-create-pull-request=false", "-verbose", *args], tool, clean_env())
    assert run.returncode == 0, run.stderr
    # Where git's filters or modes could differ from the bytes written, git's own staging is used.
    assert ("git fast-import" in run.stderr) is (filtered == "plain")
    assert ("git update-index --add" in run.stderr) is (filtered != "plain")
    assert len(git(tool, "show", "--name-only", "--format=", "HEAD").split("\n")) > BULK_THRESHOLD

    # The same change made by hand with git add, in an identical checkout.
    by_hand = checkout(bare, tmp_path / "by-hand", filtered)
    assert run_tool(["-compile-only", *args], by_hand, clean_env()).returncode == 0
    git(by_hand, "add", "-u")
    outputs = [str(p.relative_to(by_hand))[: -len(".tmpl")] for p in by_hand.rglob("*.tmpl")]
    run_git("add", "-f", "--", *outputs, cwd=by_hand, env=clean_env())
    expected = git(by_hand, "write-tree").strip()

    assert git(tool, "rev-parse", "HEAD^{tree}").strip() == expected
    # The checkout's index agrees with its files: only the untracked file shows.
    assert git(tool, "status", "--porcelain") == "?? scratch.txt\n"
    assert git(tool, "ls-tree", "HEAD", "deploy.sh").startswith("100755")
    assert git(tool, "ls-tree", "HEAD", "link").startswith("120000")
    assert "gone.txt" not in git(tool, "ls-tree", "--name-only", "HEAD")
    # No scratch ref is left behind.
    assert "scratch" not in git(tool, "for-each-ref")
