"""Hostile templates and paths: symlinks out of the repository or into .git, outputs that are not plain
files, -filepath globs that climb out, bytes that are not text, a template too large to hold.

Each is refused before anything is written: exit 2, one error line that names the path, nothing
changed outside the repository (the directory the links point at is hashed before and after) and the
checkout exactly as it was (snapshot()). The CLI runs as a pipeline step would: its own process, on a
clone of a file:// remote.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import run_tool, snapshot
from tests.gitserver import clean_env, copy_fixture, run_git
from updater.render import MAX_TEMPLATE_BYTES

# What actions/checkout leaves in .git/config: the token a leaked .git/config would carry.
PERSISTED_TOKEN = "ghs_persistedCheckoutToken0123456789"


@dataclass
class Repo:
    checkout: Path  # a clone of the hello-world fixture, on main
    remote: Path  # its bare file:// origin
    outside: Path  # a directory beside the checkout that the hostile links point at

    def link(self, rel: str, target: Path | str) -> None:
        path = self.checkout / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        path.symlink_to(target)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    env = clean_env()
    seed = copy_fixture("hello-world", tmp_path / "seed")
    remote = tmp_path / "remote.git"
    run_git("init", "-q", "--bare", "-b", "main", str(remote), env=env)
    run_git("init", "-q", "-b", "main", str(seed), env=env)
    run_git("add", "-A", cwd=seed, env=env)
    run_git(
        "-c", "user.name=seed", "-c", "user.email=seed@x", "commit", "-q", "-m", "seed", cwd=seed, env=env
    )
    run_git("push", "-q", remote.as_uri(), "main", cwd=seed, env=env)
    checkout = tmp_path / "checkout"
    run_git("clone", "-q", remote.as_uri(), str(checkout), env=env)
    run_git(
        "config",
        "http.https://github.com/.extraheader",
        f"AUTHORIZATION: basic {PERSISTED_TOKEN}",
        cwd=checkout,
        env=env,
    )
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret.yaml.tmpl").write_text("stolen: $({ .imageName })\n")
    (outside / "dir" / "behind.yaml.tmpl").write_text("behind: $({ .imageName })\n")
    (outside / "tree" / "prod").mkdir(parents=True)
    (outside / "tree" / "prod" / "app.yaml.tmpl").write_text("prod: $({ .imageName })\n")
    (outside / "target.yaml").write_text("an outside file the output link points at\n")
    return Repo(checkout, remote, outside)


def tree_state(root: Path) -> dict[str, str]:
    """Every entry under root: file hashes, link targets, directories (fifos by kind)."""
    state: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                state[rel] = "link:" + os.readlink(path)
            elif path.is_dir():
                state[rel] = "dir"
            elif path.is_file():
                state[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                state[rel] = "special"
    return state


def remote_refs(repo: Repo) -> str:
    return run_git("for-each-ref", cwd=repo.remote, env=clean_env()).stdout.decode()


@dataclass(frozen=True)
class Case:
    name: str
    setup: Callable[[Repo], None]
    message: str  # a substring of the one error line
    args: tuple[str, ...] = ()  # "{outside}" is replaced by the outside directory
    cwd: str = ""  # working dir relative to the checkout
    compile_only: bool = False  # also (or only) check the -compile-only path
    extra: list[str] = field(default_factory=list)


def _nothing(r: Repo) -> None:
    pass


def _template_link_outside(r: Repo) -> None:
    r.link("evil.yaml.tmpl", r.outside / "secret.yaml.tmpl")


def _template_link_relative_outside(r: Repo) -> None:
    r.link("apps/evil.yaml.tmpl", "../../outside/secret.yaml.tmpl")


def _template_link_into_git(r: Repo) -> None:
    r.link("leak.yaml.tmpl", ".git/config")


def _template_link_into_git_hooks(r: Repo) -> None:
    (r.checkout / ".git" / "hooks" / "post-checkout.tmpl").write_text("#!/bin/sh\necho $({ .imageName })\n")
    r.link("hooks", ".git/hooks")


def _dir_link_outside(r: Repo) -> None:
    r.link("linked", r.outside / "dir")


def _parent_link_outside(r: Repo) -> None:
    r.link("clusters", r.outside / "tree")


def _deeper_parent_link_outside(r: Repo) -> None:
    (r.checkout / "envs" / "staging").mkdir(parents=True)
    (r.checkout / "envs" / "staging" / "app.yaml.tmpl").write_text("staging: $({ .imageName })\n")
    r.link("envs/prod", r.outside / "tree" / "prod")


def _output_link_outside(r: Repo) -> None:
    r.link("application.yaml", r.outside / "target.yaml")


def _output_link_dangling_outside(r: Repo) -> None:
    r.link("application.yaml", r.outside / "not-there-yet.yaml")


def _output_link_inside(r: Repo) -> None:
    r.link("application.yaml", "README.md")


def _output_is_a_directory(r: Repo) -> None:
    (r.checkout / "application.yaml").unlink()
    (r.checkout / "application.yaml").mkdir()
    (r.checkout / "application.yaml" / "kept.txt").write_text("mine\n")


def _output_is_a_fifo(r: Repo) -> None:
    (r.checkout / "application.yaml").unlink()
    os.mkfifo(r.checkout / "application.yaml")


def _template_is_a_fifo(r: Repo) -> None:
    os.mkfifo(r.checkout / "pipe.yaml.tmpl")


def _template_not_utf8(r: Repo) -> None:
    (r.checkout / "latin1.yaml.tmpl").write_bytes(b"name: caf\xe9 $({ .imageName })\n")


def _template_utf16(r: Repo) -> None:
    (r.checkout / "utf16.yaml.tmpl").write_bytes("image: $({ .imageName })\n".encode("utf-16"))


def _template_binary(r: Repo) -> None:
    (r.checkout / "blob.bin.tmpl").write_bytes(bytes(range(256)))


def _template_too_large(r: Repo) -> None:
    # Sparse: one byte over the limit without writing 64 MiB.
    with open(r.checkout / "huge.yaml.tmpl", "wb") as fh:
        fh.truncate(MAX_TEMPLATE_BYTES + 1)


def _template_name_with_newline(r: Repo) -> None:
    (r.checkout / "x\nkind: Secret\n#.yaml.tmpl").write_text("v: $({ .imageName })\n")


def _template_name_with_escape(r: Repo) -> None:
    (r.checkout / "\x1b[2Jclear.yaml.tmpl").write_text("v: $({ .imageName })\n")


CASES = [
    Case(
        "a template that is a symlink out of the repository",
        _template_link_outside,
        "evil.yaml.tmpl: the template resolves outside the repository",
        compile_only=True,
    ),
    Case(
        "a template that is a relative symlink climbing out",
        _template_link_relative_outside,
        "apps/evil.yaml.tmpl: the template resolves outside the repository",
    ),
    Case(
        "a template that is a symlink to .git/config (persisted checkout token)",
        _template_link_into_git,
        "leak.yaml.tmpl: the template resolves into the repository's .git directory",
        compile_only=True,
    ),
    Case(
        "templates behind a symlinked directory leading into .git/hooks",
        _template_link_into_git_hooks,
        "hooks/post-checkout.tmpl: the template resolves into the repository's .git directory",
        args=("-filepath=hooks/*.tmpl",),
    ),
    Case(
        "a symlinked directory out of the repository, inside the default walk",
        _dir_link_outside,
        "linked: a symlinked directory that leads outside the repository",
        compile_only=True,
    ),
    Case(
        "a symlinked directory out of the repository, named by -filepath",
        _dir_link_outside,
        "linked: a symlinked directory that leads outside the repository",
        args=("-filepath=linked/*.tmpl",),
    ),
    Case(
        "a symlinked directory out of the repository, reached by a ** glob",
        _dir_link_outside,
        "linked: a symlinked directory that leads outside the repository",
        args=("-filepath=**/*.tmpl",),
    ),
    Case(
        "a symlinked parent directory out of the repository",
        _parent_link_outside,
        "clusters/prod: a symlinked directory that leads outside the repository",
        args=("-filepath=clusters/prod/*.tmpl",),
    ),
    Case(
        "a symlinked directory out of the repository below the walk's root",
        _deeper_parent_link_outside,
        "envs/prod: a symlinked directory that leads outside the repository",
        args=("-filepath=envs/*/*.tmpl",),
    ),
    Case(
        "a symlinked directory out of the repository, from a sub-directory working dir",
        _deeper_parent_link_outside,
        "prod: a symlinked directory that leads outside the repository",
        cwd="envs",
    ),
    Case(
        "an output that is a symlink out of the repository",
        _output_link_outside,
        "application.yaml: the output resolves outside the repository",
        compile_only=True,
    ),
    Case(
        "an output that is a dangling symlink out of the repository",
        _output_link_dangling_outside,
        "application.yaml: the output resolves outside the repository",
    ),
    Case(
        "an output that is a symlink inside the repository",
        _output_link_inside,
        "application.yaml: the output is a symlink; refusing to write through it",
    ),
    Case(
        "an output path that is a directory",
        _output_is_a_directory,
        "application.yaml: the output path is a directory",
    ),
    Case(
        "an output path that is a fifo (reading it would block forever)",
        _output_is_a_fifo,
        "application.yaml: the output path exists and is not a regular file",
    ),
    Case(
        "a template that is a fifo", _template_is_a_fifo, "pipe.yaml.tmpl: the template is not a regular file"
    ),
    Case(
        "-filepath climbing out with ../",
        _nothing,
        "leaves the working directory",
        args=("-filepath=../outside/*.tmpl",),
    ),
    Case(
        "-filepath climbing out from inside a directory",
        _nothing,
        "leaves the working directory",
        args=("-filepath=apps/../../outside/*.tmpl",),
    ),
    Case(
        "-filepath climbing out with backslashes",
        _nothing,
        "leaves the working directory",
        args=("-filepath=..\\outside\\*.tmpl",),
    ),
    Case(
        "-filepath as an absolute path",
        _nothing,
        "is absolute: give a glob relative to the working directory",
        args=("-filepath={outside}/*.tmpl",),
        compile_only=True,
    ),
    Case("a template in Latin-1", _template_not_utf8, "latin1.yaml.tmpl: not UTF-8 text (byte 9)"),
    Case("a template in UTF-16", _template_utf16, "utf16.yaml.tmpl: not UTF-8 text (byte 0)"),
    Case("a binary file named .tmpl", _template_binary, "blob.bin.tmpl: not UTF-8 text"),
    Case(
        "a template over the size limit (sparse)",
        _template_too_large,
        f"huge.yaml.tmpl: the template is {MAX_TEMPLATE_BYTES + 1} bytes, over the {MAX_TEMPLATE_BYTES} limit",
        compile_only=True,
    ),
    Case(
        "a template name with a newline (would inject into the header)",
        _template_name_with_newline,
        "'x\\nkind: Secret\\n#.yaml.tmpl': the path contains a control character",
    ),
    Case(
        "a template name with a terminal escape",
        _template_name_with_escape,
        "'\\x1b[2Jclear.yaml.tmpl': the path contains a control character",
    ),
]

BASE = ["-git-revision=1b39bd0", "-substitute=imageName=registry/app@sha256:1", "-create-pull-request=false"]


def _params() -> list[object]:
    params: list[object] = []
    for case in CASES:
        params.append(pytest.param(case, False, id=case.name))
        if case.compile_only:
            params.append(pytest.param(case, True, id=f"{case.name} (-compile-only)"))
    return params


@pytest.mark.parametrize(("case", "compile_only"), _params())
def test_hostile_input_is_refused_and_nothing_is_written(repo: Repo, case: Case, compile_only: bool) -> None:
    case.setup(repo)
    before, outside_before, refs_before = snapshot(repo.checkout), tree_state(repo.outside), remote_refs(repo)
    args = [a.replace("{outside}", str(repo.outside)) for a in case.args]
    run = run_tool(
        [*BASE, *(["-compile-only"] if compile_only else []), *args],
        repo.checkout / case.cwd,
        clean_env(),
        timeout=30,
    )

    assert run.returncode == 2, run.stderr
    assert len(run.error_lines) == 1, run.stderr
    assert case.message in run.error_lines[0], run.error_lines[0]
    assert "Traceback" not in run.stderr
    assert PERSISTED_TOKEN not in run.stderr + run.stdout
    assert tree_state(repo.outside) == outside_before
    assert snapshot(repo.checkout) == before
    assert remote_refs(repo) == refs_before
    # No temporary file was left beside any output either.
    assert not [p for p in repo.checkout.rglob(".update-gitops-repo.*") if ".git" not in p.parts]


def test_symlinks_that_stay_inside_the_repository_still_work(repo: Repo, tmp_path: Path) -> None:
    """The refusals are about escaping: a template linked to a shared one, a symlinked directory that
    points inside, and a working dir reached through a symlink are all ordinary."""
    shared = repo.checkout / "shared"
    shared.mkdir()
    (shared / "base.yaml.tmpl").write_text("image: $({ .imageName })\n")
    repo.link("apps/app.yaml.tmpl", "../shared/base.yaml.tmpl")
    repo.link("alias", "shared")  # not followed by the walk: shared/ is rendered once, by its real path
    via = tmp_path / "workspace-link"
    via.symlink_to(repo.checkout)
    run = run_tool([*BASE, "-compile-only"], via, clean_env())
    assert run.returncode == 0, run.stderr
    assert (repo.checkout / "apps" / "app.yaml").read_text().endswith("image: registry/app@sha256:1\n")
    assert (repo.checkout / "shared" / "base.yaml").read_text().endswith("image: registry/app@sha256:1\n")
    # application.yaml.tmpl, apps/app.yaml.tmpl, shared/base.yaml.tmpl; not shared/ again through alias/
    assert "rendered 3 templates" in run.stderr
