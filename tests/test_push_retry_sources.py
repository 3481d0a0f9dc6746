"""When the branch moved and the change is re-made on the new tip, each template is rendered from
where the first render took it: the tip's version, the user's edited version, or an untracked file."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_tool
from tests.gitserver import clean_env, run_git


def git(cwd: Path, *args: str) -> str:
    return run_git(*args, cwd=cwd, env=clean_env()).stdout.decode()


def commit_all(cwd: Path, message: str) -> None:
    git(cwd, "add", "-A")
    git(cwd, "-c", "user.name=o", "-c", "user.email=o@x", "commit", "-q", "-m", message)


def test_a_retry_renders_edited_and_untracked_templates_as_the_first_render_did(tmp_path: Path) -> None:
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "main")
    (seed / "edited.yaml.tmpl").write_text("old: $({ .v })\n")
    (seed / "plain.yaml.tmpl").write_text("plain: $({ .v })\n")
    commit_all(seed, "seed")
    git(seed, "push", "-q", bare.as_uri(), "main")

    checkout = tmp_path / "checkout"
    git(tmp_path, "clone", "-q", bare.as_uri(), str(checkout))
    # Another pipeline lands a commit first: the tool's first push will be rejected.
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", bare.as_uri(), str(other))
    (other / "plain.yaml.tmpl").write_text("plain (changed upstream): $({ .v })\n")
    (other / "unrelated.txt").write_text("someone else's work\n")
    commit_all(other, "upstream change")
    git(other, "push", "-q", "origin", "main")

    # The user's script edits a tracked template and generates an untracked one before the tool runs.
    (checkout / "edited.yaml.tmpl").write_text("new: $({ .v })\n")
    (checkout / "generated.yaml.tmpl").write_text("generated: $({ .v })\n")
    args = [
        "-git-revision=1",
        "-branch=main",
        "-create-pull-request=false",
        "-header=false",
        "-substitute=v=42",
    ]
    run = run_tool(args, checkout, clean_env())
    assert run.returncode == 0, run.stderr
    assert "re-rendering on its new tip" in run.stderr

    def on_main(path: str) -> str:
        return git(bare, "show", f"main:{path}")

    assert on_main("unrelated.txt") == "someone else's work\n"  # nothing of the other writer lost
    assert on_main("edited.yaml.tmpl") == "new: $({ .v })\n"  # the user's edit carried over
    assert on_main("edited.yaml") == "new: 42\n"  # rendered from the edited template
    assert on_main("plain.yaml") == "plain (changed upstream): 42\n"  # rendered from the tip's template
    assert on_main("generated.yaml") == "generated: 42\n"  # the untracked template's output kept
    assert "generated.yaml.tmpl" not in git(bare, "ls-tree", "--name-only", "main")  # still untracked
