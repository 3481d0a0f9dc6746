"""A corpus of bad (and borderline) input, run as one table-driven test.

Each case sets up a world (a checkout of the hello-world GitOps repository on a file:// or smart-HTTP
remote, or something that is not quite one), runs the CLI as a pipeline step would, and declares the
exit status and a substring of the one error line it must print. Every case, whatever its status:
no traceback, at most one error line, and nothing of the user's is lost. A case that fails before
committing leaves the checkout exactly as it was (snapshot()); a case that legitimately commits keeps
every file the user had byte for byte, and every ref the user had stays reachable.
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from tests.conftest import Run, run_tool, snapshot
from tests.fakes.github import FakeGitHub
from tests.gitserver import DEFAULT_TOKEN, GitServer, clone, copy_fixture, make_home, run_git

HELLO = "acme/hello-world-gitops.git"
REV = "1b39bd0a4cf0b0dd1f1e2f32cbe0c7d1e2d3f4a5"
IMAGE = "registry.example.com/hello-world@sha256:" + "e3" * 32
# The ordinary arguments of a run that pushes a branch and opens no pull request.
OK = (f"-git-revision={REV}", f"-substitute=imageName={IMAGE}", "-create-pull-request=false")


@dataclass
class World:
    tmp: Path
    server: GitServer
    cwd: Path = Path()
    env: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)  # for "{name}" in a case's args

    def git(self, *args: str) -> str:
        return run_git(*args, cwd=self.cwd, env=self.env).stdout.decode().strip()

    def write(self, rel: str, text: str | bytes) -> None:
        path = self.cwd / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode() if isinstance(text, str) else text)


Outcome = Literal["unchanged", "kept"]


@dataclass(frozen=True)
class Case:
    name: str
    setup: Callable[[World], None]
    args: tuple[str, ...]
    code: int
    message: str  # a substring of the one error line; "" when the run succeeds (no error line at all)
    outcome: Outcome = "unchanged"  # "kept": the run may commit (and push); the user's files and refs survive
    stderr: str = ""  # a substring expected elsewhere on stderr (a warning, a note)
    verify: Callable[[World, Run], None] | None = None  # what only this case can check
    max_seconds: float = 20.0


# -- worlds ------------------------------------------------------------------------------------------


def local(w: World) -> None:
    """A clone (on main) of a file:// bare repository seeded with the hello-world fixture; an untracked
    file of the user's lies around, as in any CI workspace."""
    env = w.env = make_home(w.tmp)
    seed = copy_fixture("hello-world", w.tmp / "seed")
    bare = w.tmp / "remote.git"
    run_git("init", "-q", "--bare", "-b", "main", str(bare), env=env)
    run_git("init", "-q", "-b", "main", str(seed), env=env)
    run_git("add", "-A", cwd=seed, env=env)
    run_git(
        "-c", "user.name=seed", "-c", "user.email=seed@x", "commit", "-q", "-m", "seed", cwd=seed, env=env
    )
    run_git("push", "-q", bare.as_uri(), "main", cwd=seed, env=env)
    w.cwd = w.tmp / "checkout"
    run_git("clone", "-q", bare.as_uri(), str(w.cwd), env=env)
    w.write("scratch/notes.txt", "the user's untracked notes\n")


def served(w: World) -> None:
    """A Tekton checkout (detached, depth 1) of the fixture on the smart-HTTP server, token in
    ~/.git-credentials."""
    url = w.server.create_repo(HELLO, copy_fixture("hello-world", w.tmp / "seed"))
    w.env = make_home(w.tmp, url, "tekton-bot", DEFAULT_TOKEN, style="tekton")
    w.cwd = clone(url, w.tmp / "workspace", detached=True, env=w.env)
    w.write("scratch/notes.txt", "the user's untracked notes\n")


def then(*steps: Callable[[World], None]) -> Callable[[World], None]:
    def run(w: World) -> None:
        for step in steps:
            step(w)

    return run


def template(rel: str, text: str | bytes) -> Callable[[World], None]:
    return lambda w: w.write(rel, text)


def plain_directory(w: World) -> None:
    w.env = make_home(w.tmp)
    w.cwd = copy_fixture("hello-world", w.tmp / "not-a-repo")


def bare_repository(w: World) -> None:
    local(w)
    w.cwd = w.tmp / "remote.git"


def no_origin(w: World) -> None:
    local(w)
    w.git("remote", "remove", "origin")


def origin_is_not_a_repository(w: World) -> None:
    local(w)
    w.git("remote", "set-url", "origin", (w.tmp / "nothing-here.git").as_uri())


def origin_on_a_closed_port(w: World) -> None:
    local(w)
    w.git("remote", "set-url", "origin", f"http://127.0.0.1:{closed_port()}/acme/gone.git")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api_on_a_closed_port(w: World) -> None:
    served(w)
    w.values["api"] = f"http://127.0.0.1:{closed_port()}/api/v3"


def tracked_edit(w: World) -> None:
    w.write("README.md", "edited by a pipeline script before the tool ran\n")


def staged_edit(w: World) -> None:
    w.write("README.md", "staged by the user\n")
    w.git("add", "README.md")


def detached(w: World) -> None:
    w.git("checkout", "-q", "--detach")


def merge_in_progress(w: World) -> None:
    ident = ("-c", "user.name=u", "-c", "user.email=u@x")
    w.git("checkout", "-q", "-b", "side")
    w.write("README.md", "side\n")
    w.git(*ident, "commit", "-q", "-am", "side")
    w.git("checkout", "-q", "main")
    w.write("README.md", "main\n")
    w.git(*ident, "commit", "-q", "-am", "main")
    run_git(*ident, "merge", "side", cwd=w.cwd, env=w.env, check=False)  # conflicts, by design
    assert (w.cwd / ".git" / "MERGE_HEAD").exists()


def stale_index_lock(w: World) -> None:
    (w.cwd / ".git" / "index.lock").write_bytes(b"")


def branch_name_taken_by_a_directory(w: World) -> None:
    # refs/heads/update-to-commit-<rev>/ is a directory: git cannot create the branch here (origin,
    # which has no such ref, would take the push: it must not get it).
    w.git("branch", f"update-to-commit-{REV}/old", "HEAD")


def stale_head_lock(w: World) -> None:
    (w.cwd / ".git" / "HEAD.lock").write_bytes(b"")
    w.values["head"] = w.git("rev-parse", "HEAD")


def main_put_back(w: World, run: Run) -> None:
    assert w.git("rev-parse", "main") == w.values["head"]
    assert w.git("status", "--porcelain") == "?? scratch/"  # outputs put back, nothing staged
    nothing_pushed_to_the_local_remote(w, run)


def nothing_pushed_and_head_lock_kept(w: World, run: Run) -> None:
    assert f"update-to-commit-{REV}" not in w.server.branches(HELLO)
    assert w.git("rev-parse", "HEAD") == w.values["head"]
    assert (w.cwd / ".git" / "HEAD.lock").exists()  # the user's to remove


def local_branch_with_other_commits(w: World) -> None:
    w.git("checkout", "-q", "-b", f"update-to-commit-{REV}")
    w.write("mine.txt", "work on a branch of the same name\n")
    w.git("add", "mine.txt")
    w.git("-c", "user.name=u", "-c", "user.email=u@x", "commit", "-q", "-m", "my work")
    w.values["mine"] = w.git("rev-parse", "HEAD")
    w.git("checkout", "-q", "main")


def remote_branch_with_other_commits(w: World) -> None:
    served(w)
    w.values["theirs"] = w.server.commit_directly(
        HELLO, {"other.txt": "pushed by someone else\n"}, branch=f"update-to-commit-{REV}", start_point="main"
    )


def unborn(w: World) -> None:
    w.env = make_home(w.tmp)
    bare = w.tmp / "empty.git"
    run_git("init", "-q", "--bare", "-b", "main", str(bare), env=w.env)
    w.cwd = w.tmp / "fresh"
    run_git("init", "-q", "-b", "main", str(w.cwd), env=w.env)
    w.git("remote", "add", "origin", bare.as_uri())
    w.write("application.yaml.tmpl", 'image: "$({ .imageName })"\n')


def wrong_token(w: World) -> None:
    url = w.server.create_repo(HELLO, copy_fixture("hello-world", w.tmp / "seed"))
    w.cwd = clone(url, w.tmp / "workspace", token=DEFAULT_TOKEN)
    w.env = {**make_home(w.tmp), "GITHUB_TOKEN": "ghp_wrongTokenWrongToken0123"}


def no_credentials(w: World) -> None:
    url = w.server.create_repo(HELLO, copy_fixture("hello-world", w.tmp / "seed"))
    w.cwd = clone(url, w.tmp / "workspace", token=DEFAULT_TOKEN)
    w.env = make_home(w.tmp)


def protected_main(w: World) -> None:
    served(w)
    w.server.protect_branch(HELLO, "main")


def shallow_pipeline_checkout(w: World) -> None:
    served(w)
    assert (w.cwd / ".git" / "shallow").exists()
    assert w.git("rev-parse", "--abbrev-ref", "HEAD") == "HEAD"  # detached, as Tekton leaves it


def body_template(w: World) -> None:
    w.write("../pr-body.md.j2", "Deploys {{ revision }} {% for f in files %}")  # unclosed for-loop


# -- what some cases check beyond the table ------------------------------------------------------------


def head_file(w: World, rel: str) -> str:
    return w.git("show", f"HEAD:{rel}")


def last_value_wins(w: World, run: Run) -> None:
    assert 'image: "second"' in head_file(w, "application.yaml")


def empty_value_renders_empty(w: World, run: Run) -> None:
    assert 'image: ""' in head_file(w, "application.yaml")


def edit_is_committed(w: World, run: Run) -> None:
    assert head_file(w, "README.md") == "edited by a pipeline script before the tool ran"
    assert w.git("status", "--porcelain") == "?? scratch/"


def staged_is_committed(w: World, run: Run) -> None:
    assert head_file(w, "README.md") == "staged by the user"


def on_top_of_their_commit(w: World, run: Run) -> None:
    tip = w.server.rev(HELLO, f"update-to-commit-{REV}")
    assert w.server.git(HELLO, "rev-parse", f"{tip}~1") == w.values["theirs"]
    assert w.server.read(HELLO, "other.txt", tip) == b"pushed by someone else\n"


def old_branch_kept(w: World, run: Run) -> None:
    assert w.git("rev-parse", f"refs/update-gitops-repo/previous/update-to-commit-{REV}") == w.values["mine"]


def pushed_before_the_api_failed(w: World, run: Run) -> None:
    assert f"update-to-commit-{REV}" in w.server.branches(HELLO)


def nothing_pushed_to_the_server(w: World, run: Run) -> None:
    assert f"update-to-commit-{REV}" not in w.server.branches(HELLO)


def nothing_pushed_to_the_local_remote(w: World, run: Run) -> None:
    heads = run_git("for-each-ref", "--format=%(refname)", "refs/heads/", cwd=w.tmp / "remote.git", env=w.env)
    assert heads.stdout.decode().split() == ["refs/heads/main"]


def committed_locally_not_pushed(w: World, run: Run) -> None:
    assert w.git("log", "-1", "--format=%s") == f"update templates for commit {REV}"


def main_untouched_on_origin(w: World, run: Run) -> None:
    committed_locally_not_pushed(w, run)
    assert w.server.git(HELLO, "log", "-1", "--format=%s", "main") == "Initial commit"


def json_on_stdout(w: World, run: Run) -> None:
    import json

    data = json.loads(run.stdout)
    assert data["exit_code"] == 2 and "no value for key 'imageName'" in data["error"]


# -- a forge API that misbehaves (a fake GitHub on 127.0.0.1, tests/fakes/github.py) ------------------

_FORGES: dict[int, FakeGitHub] = {}
# A deploy that opens (and with -merge-pull-request merges) a pull request on the fake GitHub.
ON_GITHUB = (
    f"-git-revision={REV}",
    f"-substitute=imageName={IMAGE}",
    "-scm-provider=github",
    "-api-endpoint={api}",
    "-base-branch=main",
)


def github_api(*faults: Callable[..., None]) -> Callable[[World], None]:
    """The served checkout, and a fake GitHub API for it (branches read from the git server's
    repository) with `faults` scripted on it; stopped when the world goes."""

    def setup(w: World) -> None:
        import weakref

        served(w)
        gh = FakeGitHub().start()
        gh.add_token(DEFAULT_TOKEN, login="tekton-bot")
        gh.add_repo("acme/hello-world-gitops", git_dir=w.server.root / HELLO)
        for fault in faults:
            fault(gh)
        w.values["api"] = gh.api_url
        _FORGES[id(w)] = gh
        weakref.finalize(w, _stop_forge, id(w))

    return setup


def _stop_forge(key: int) -> None:
    gh = _FORGES.pop(key, None)
    if gh is not None:
        gh.stop()


def api_calls(w: World) -> list[tuple[str, int]]:
    return [(e.method, e.status) for e in _FORGES[id(w)].requests]


def merged_although_answered_502(w: World, run: Run) -> None:
    pushed_before_the_api_failed(w, run)
    (pull,) = _FORGES[id(w)].pulls("acme/hello-world-gitops")
    assert pull.merged and run.stdout.strip().endswith(f"/pull/{pull.number}")
    assert api_calls(w)[-3:] == [("PUT", 502), ("PUT", 405), ("GET", 200)]


def create_sent_once(w: World, run: Run) -> None:
    pushed_before_the_api_failed(w, run)
    # find, the create (not resent), one look for the pull request in case the server opened it
    assert api_calls(w) == [("GET", 200), ("POST", 500), ("GET", 200)]


def not_waited_for(w: World, run: Run) -> None:
    pushed_before_the_api_failed(w, run)
    assert api_calls(w) == [("GET", 403)]


# -- the corpus ----------------------------------------------------------------------------------------

# -- issues 10 and 13: trust, bounds and exactness ----------------------------------------------------

_SILENT: list[socket.socket] = []  # listening sockets nobody accepts from: the kernel completes the
# handshake, then nothing ever answers (a hung git server or proxy); kept open for the test session.


def origin_that_never_answers(w: World) -> None:
    local(w)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    _SILENT.append(listener)
    w.git("remote", "set-url", "origin", f"http://127.0.0.1:{listener.getsockname()[1]}/acme/silent.git")
    w.env = {**w.env, "GITHUB_TOKEN": DEFAULT_TOKEN, "UPDATE_GITOPS_REPO_NETWORK_TIMEOUT": "2"}


def origin_over_plain_http_elsewhere(w: World) -> None:
    local(w)
    w.git("remote", "set-url", "origin", "http://git.example.test/acme/hello-world-gitops.git")
    w.env = {**w.env, "GITHUB_TOKEN": DEFAULT_TOKEN}


def stored_credential_and_a_wrong_token(w: World) -> None:
    served(w)
    w.env = {**w.env, "GITHUB_TOKEN": "ghp_wrongTokenWrongToken0123"}
    w.values["stored"] = (Path(w.env["HOME"]) / ".git-credentials").read_text()


def stored_credential_intact(w: World, run: Run) -> None:
    assert (Path(w.env["HOME"]) / ".git-credentials").read_text() == w.values["stored"]
    committed_locally_not_pushed(w, run)


def hook_declines_every_push(w: World) -> None:
    served(w)
    hook = w.server.root / HELLO / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'deploys are frozen until 18:00' >&2\nexit 1\n")
    hook.chmod(0o755)


def json_error_on_stdout(run: Run, error: str) -> None:
    import json

    data = json.loads(run.stdout)
    assert data["exit_code"] == 2 and error in data["error"]


def header_stays_comment_lines(w: World, run: Run) -> None:
    import yaml

    text = (w.cwd / "application.yaml").read_text()
    lines = text.split("\n")
    assert lines[0].startswith("# ") and lines[1].startswith("# ") and lines[2] == ""
    assert "$'-substitute=ca=-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----'" in lines[1]
    yaml.safe_load_all(text)


CASES = [
    # Flags: syntax and values. Nothing is touched.
    Case(
        "undefined flag", local, (*OK, "-template-path=x"), 2, "flag provided but not defined: -template-path"
    ),
    Case(
        "undefined flag with two dashes",
        local,
        (*OK, "--templates=x"),
        2,
        "flag provided but not defined: -templates",
    ),
    Case("three dashes", local, ("---git-revision=1",), 2, "bad flag syntax: ---git-revision=1"),
    Case("a flag without a name", local, (*OK, "-=x"), 2, "bad flag syntax: -=x"),
    Case("a lone dash", local, (*OK, "-"), 2, "unexpected argument '-'"),
    Case("a positional argument", local, (*OK, "production"), 2, "unexpected argument 'production'"),
    Case(
        "a boolean given its value as the next argument",
        local,
        (*OK, "-create-pull-request", "false"),
        2,
        "unexpected argument 'false'",
    ),
    Case(
        "a boolean with a value that is not one",
        local,
        (*OK, "-create-pull-request=nope"),
        2,
        'invalid boolean value "nope" for -create-pull-request',
    ),
    Case(
        "a flag missing its value at the end", local, (*OK, "-branch"), 2, "flag needs an argument: -branch"
    ),
    Case("-push-attempts=0", local, (*OK, "-push-attempts=0"), 2, "must be at least 1"),
    Case(
        "-push-attempts not a number",
        local,
        (*OK, "-push-attempts=ten"),
        2,
        'invalid value "ten" for -push-attempts',
    ),
    Case(
        "-output not a known format",
        local,
        (*OK, "-output=yaml"),
        2,
        'invalid value "yaml" for -output: use one of text, json',
    ),
    Case(
        "-missing-key not a known mode",
        local,
        (*OK, "-missing-key=zero"),
        2,
        'invalid value "zero" for -missing-key',
    ),
    Case(
        "-merge-method not a known method",
        local,
        (*OK, "-merge-method=fast-forward"),
        2,
        'invalid value "fast-forward" for -merge-method',
    ),
    Case(
        "neither -git-revision nor -branch",
        local,
        (f"-substitute=imageName={IMAGE}",),
        2,
        "set -git-revision",
    ),
    Case(
        "an empty -git-revision",
        local,
        ("-git-revision=", f"-substitute=imageName={IMAGE}"),
        2,
        "set -git-revision",
    ),
    Case(
        "a -branch git refuses",
        local,
        (*OK, "-branch=release..1"),
        2,
        "-branch 'release..1' is not a valid git branch name",
    ),
    Case(
        "a -branch that looks like an option",
        local,
        (*OK, "-branch=-f"),
        2,
        "-branch '-f' is not a valid git branch name: it starts with '-'",
    ),
    Case(
        "a -git-revision that makes a bad branch name",
        local,
        ("-git-revision=v1 final", f"-substitute=imageName={IMAGE}", "-create-pull-request=false"),
        2,
        "-branch 'update-to-commit-v1 final' (made from -git-revision) is not a valid git branch name",
    ),
    Case(
        "a -base-branch git refuses",
        local,
        (*OK, "-base-branch=main~1"),
        2,
        "-base-branch 'main~1' is not a valid git branch name",
    ),
    Case(
        "an unsupported -scm-provider",
        local,
        (*OK, "-scm-provider=gitea"),
        2,
        "-scm-provider=gitea is not supported",
    ),
    Case(
        "-token-file that does not exist",
        local,
        (*OK, "-token-file=/nonexistent/token"),
        2,
        "-token-file /nonexistent/token: cannot read it",
    ),
    Case(
        "-ca-bundle that does not exist",
        local,
        (*OK, "-ca-bundle=/nonexistent/ca.pem"),
        2,
        "-ca-bundle /nonexistent/ca.pem: cannot read it",
    ),
    Case(
        "-pr-body-template that does not exist",
        local,
        (f"-git-revision={REV}", f"-substitute=imageName={IMAGE}", "-pr-body-template=/nonexistent/body.md"),
        2,
        "-pr-body-template /nonexistent/body.md: cannot read it",
    ),
    Case(
        "-pr-body-template with a Jinja syntax error",
        then(local, body_template),
        (f"-git-revision={REV}", f"-substitute=imageName={IMAGE}", "-pr-body-template=../pr-body.md.j2"),
        2,
        "-pr-body-template: ",
    ),
    Case(
        "-filepath that is not a valid glob", local, (*OK, "-filepath=[z-a].tmpl"), 2, "is not a valid glob"
    ),
    Case(
        "-filepath matching nothing",
        local,
        (*OK, "-filepath=staging/*.tmpl"),
        0,
        "",
        stderr="no templates found matching staging/*.tmpl; nothing to do",
    ),
    # Substitutions.
    Case(
        "-substitute without '='",
        local,
        (*OK, "-substitute=imageName"),
        2,
        'invalid value "imageName" for -substitute: expected key=value',
    ),
    Case(
        "-substitute with an empty key", local, (*OK, "-substitute==value"), 2, 'the key before "=" is empty'
    ),
    Case(
        "-substitute missing its value at the end",
        local,
        (*OK, "-substitute"),
        2,
        "flag needs an argument: -substitute",
    ),
    Case(
        "a duplicate -substitute: the last wins, with a warning",
        local,
        (*OK, "-substitute=imageName=first", "-substitute=imageName=second"),
        0,
        "",
        "kept",
        stderr="warning: -substitute imageName given more than once; the last value wins",
        verify=last_value_wins,
    ),
    Case(
        "an empty -substitute value is a value",
        local,
        (*OK[:1], "-substitute=imageName=", *OK[2:]),
        0,
        "",
        "kept",
        verify=empty_value_renders_empty,
    ),
    # Templates.
    Case(
        "a missing key",
        local,
        (f"-git-revision={REV}", "-create-pull-request=false"),
        2,
        "application.yaml.tmpl:20: no value for key 'imageName'",
    ),
    Case(
        "a missing key, reported as JSON too",
        local,
        (f"-git-revision={REV}", "-output=json"),
        2,
        "no value for key 'imageName'",
        verify=json_on_stdout,
    ),
    Case(
        "an unterminated placeholder",
        then(local, template("bad.yaml.tmpl", "image: $({ .imageName }\n")),
        OK,
        2,
        "bad.yaml.tmpl:1: unsupported placeholder",
    ),
    Case(
        "a placeholder without the dot",
        then(local, template("bad.yaml.tmpl", "a: 1\nimage: $({ imageName })\n")),
        OK,
        2,
        "bad.yaml.tmpl:2: unsupported placeholder '$({ imageName })'",
    ),
    Case(
        "a Go template pipeline",
        then(local, template("bad.yaml.tmpl", "image: $({ .imageName | quote })\n")),
        OK,
        2,
        "bad.yaml.tmpl:1: unsupported placeholder",
    ),
    Case(
        "a Go template action",
        then(local, template("bad.yaml.tmpl", "$({ if .debug })debug: true$({ end })\n")),
        OK,
        2,
        "bad.yaml.tmpl:1: unsupported placeholder",
    ),
    Case(
        "an empty placeholder",
        then(local, template("bad.yaml.tmpl", "image: $({ })\n")),
        OK,
        2,
        "bad.yaml.tmpl:1: unsupported placeholder",
    ),
    Case(
        "one bad template among good ones writes nothing",
        then(local, template("zz/late.yaml.tmpl", "tag: $({ .imageTag })\n")),
        OK,
        2,
        "zz/late.yaml.tmpl:1: no value for key 'imageTag'",
    ),
    # The checkout.
    Case("not a git repository", plain_directory, OK, 1, "is not inside a git repository"),
    Case("a bare repository", bare_repository, OK, 1, "is a bare repository"),
    Case("no origin", no_origin, OK, 1, "the repository has no remote named origin"),
    Case(
        "a merge in progress with conflicts",
        then(local, merge_in_progress),
        OK,
        1,
        "a merge is in progress in this checkout (MERGE_HEAD exists)",
    ),
    Case(
        "a stale .git/HEAD.lock with -branch the checked-out branch",
        then(local, stale_head_lock),
        (*OK, "-branch=main"),
        1,
        "git update-ref failed: fatal: update_ref failed for ref 'refs/heads/main': cannot lock ref 'HEAD'",
        verify=main_put_back,
    ),
    Case(
        "a stale .git/HEAD.lock",
        then(served, stale_head_lock),
        OK,
        1,
        "git symbolic-ref failed: error: Unable to create",
        verify=nothing_pushed_and_head_lock_kept,
    ),
    Case(
        "a stale .git/index.lock",
        then(local, stale_index_lock),
        OK,
        1,
        ".git/index.lock exists: another git process is using this checkout",
        verify=nothing_pushed_to_the_local_remote,
    ),
    Case(
        "a dirty tree: tracked edits are committed with the outputs",
        then(local, tracked_edit),
        OK,
        0,
        "",
        "kept",
        verify=edit_is_committed,
    ),
    Case(
        "staged changes are committed with the outputs",
        then(local, staged_edit),
        OK,
        0,
        "",
        "kept",
        verify=staged_is_committed,
    ),
    Case("a detached HEAD", then(local, detached), OK, 0, "", "kept"),
    Case("a shallow, detached pipeline checkout", shallow_pipeline_checkout, OK, 0, "", "kept"),
    Case("a repository without any commit yet", unborn, OK, 0, "", "kept"),
    Case(
        "a local branch of the same name with other commits",
        then(local, local_branch_with_other_commits),
        OK,
        0,
        "",
        "kept",
        stderr=f"they are kept as refs/update-gitops-repo/previous/update-to-commit-{REV}",
        verify=old_branch_kept,
    ),
    Case(
        "a remote branch of the same name with other commits",
        remote_branch_with_other_commits,
        OK,
        0,
        "",
        "kept",
        stderr="moved on",
        verify=on_top_of_their_commit,
    ),
    Case(
        "a local ref in the way of the branch",
        then(served, branch_name_taken_by_a_directory),
        OK,
        1,
        f"git update-ref failed: fatal: update_ref failed for ref 'refs/heads/update-to-commit-{REV}'",
        verify=nothing_pushed_to_the_server,
    ),
    # The remote.
    Case(
        "origin is not a repository",
        origin_is_not_a_repository,
        OK,
        1,
        "does not appear to be a git repository. The commit is kept locally",
        "kept",
        verify=committed_locally_not_pushed,
    ),
    Case(
        "origin on a closed port",
        origin_on_a_closed_port,
        OK,
        1,
        "Failed to connect to 127.0.0.1",
        "kept",
        verify=committed_locally_not_pushed,
        max_seconds=10,
    ),
    Case(
        "a wrong token",
        wrong_token,
        OK,
        1,
        "origin refused the credentials",
        "kept",
        verify=committed_locally_not_pushed,
    ),
    Case(
        "no credentials at all",
        no_credentials,
        OK,
        1,
        "origin refused the credentials",
        "kept",
        verify=committed_locally_not_pushed,
    ),
    Case(
        "a push refused by branch protection",
        protected_main,
        (*OK, "-branch=main"),
        1,
        "the branch is protected; push to another -branch and open a pull request instead",
        "kept",
        verify=main_untouched_on_origin,
    ),
    Case(
        "an API endpoint on a closed port",
        api_on_a_closed_port,
        (
            f"-git-revision={REV}",
            f"-substitute=imageName={IMAGE}",
            "-scm-provider=github",
            "-api-endpoint={api}",
            "-base-branch=main",
        ),
        1,
        "cannot reach http://127.0.0.1:",
        "kept",
        verify=pushed_before_the_api_failed,
        max_seconds=15,
    ),
    # The forge's API misbehaving after the push: each message says what was tried, and a merge
    # that went through is not reported as refused.
    Case(
        "a merge the API carried out but answered 502 (the resent merge: 405 not mergeable)",
        github_api(lambda gh: gh.fail_next(502, method="PUT", path="/merge$", processed=True)),
        (*ON_GITHUB, "-merge-pull-request"),
        0,
        "",
        "kept",
        stderr="reading the pull request back shows it is merged",
        verify=merged_although_answered_502,
    ),
    Case(
        "a pull request the API answered 500 (a POST is not resent)",
        github_api(lambda gh: gh.fail_next(500, method="POST")),
        ON_GITHUB,
        1,
        "sent once and not retried, because the server may have carried the POST out before failing; "
        "it did not: no pull request",
        "kept",
        verify=create_sent_once,
    ),
    Case(
        "GitHub's primary rate limit used up for the next hour (403, x-ratelimit-remaining 0)",
        github_api(lambda gh: gh.fail_next(403, times=50, reset_in=3600)),
        ON_GITHUB,
        1,
        "past the 120s retry deadline: not waiting for it; rerun after",
        "kept",
        verify=not_waited_for,
        max_seconds=15,
    ),
    Case(
        "GitHub's secondary rate limit without Retry-After",
        github_api(lambda gh: gh.fail_next(403, times=50)),
        ON_GITHUB,
        1,
        "not retried, as GitHub gave no Retry-After and asks clients to wait at least a minute",
        "kept",
        verify=not_waited_for,
        max_seconds=15,
    ),
    # Issues 10 and 13: what is refused before anything is written, what is bounded, what is worded
    # from what the server said.
    Case(
        "a token would go over plain http to another host",
        origin_over_plain_http_elsewhere,
        OK,
        2,
        "origin http://git.example.test is plain http",
    ),
    Case(
        "an -api-endpoint over plain http to another host",
        served,
        (
            f"-git-revision={REV}",
            f"-substitute=imageName={IMAGE}",
            "-api-endpoint=http://api.example.test/api/v3",
        ),
        2,
        "the API endpoint http://api.example.test is plain http",
        verify=nothing_pushed_to_the_server,
    ),
    Case(
        "a pull request from a local origin without -api-endpoint",
        then(local, lambda w: w.env.update(GITHUB_TOKEN=DEFAULT_TOKEN)),
        (f"-git-revision={REV}", f"-substitute=imageName={IMAGE}"),
        1,
        "cannot derive the GitHub API endpoint from a local origin",
        stderr="guessed github",
        verify=nothing_pushed_to_the_local_remote,
    ),
    Case(
        "a wrong GITHUB_TOKEN beside a valid stored credential",
        stored_credential_and_a_wrong_token,
        OK,
        1,
        "origin refused the credentials",
        "kept",
        verify=stored_credential_intact,
    ),
    Case(
        "an origin that accepts the connection and never answers",
        origin_that_never_answers,
        OK,
        1,
        "git push to origin (http://127.0.0.1:",
        "kept",
        verify=committed_locally_not_pushed,
        max_seconds=15,
    ),
    Case(
        "a pre-receive hook declining an ordinary branch",
        hook_declines_every_push,
        OK,
        1,
        f"a hook on origin declined the push to update-to-commit-{REV}: deploys are frozen until 18:00",
        "kept",
        verify=committed_locally_not_pushed,
    ),
    Case(
        "a multi-line -substitute value (a PEM certificate)",
        served,
        (*OK, "-substitute=ca=-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"),
        0,
        "",
        "kept",
        verify=header_stays_comment_lines,
    ),
    Case(
        "-branch naming a tag ref",
        served,
        (*OK, "-branch=refs/tags/v1"),
        2,
        "-branch 'refs/tags/v1' is not a valid git branch name: it names a ref that is not a branch",
    ),
    Case(
        "-output=json and an undefined flag",
        served,
        ("-output=json", "-no-such-flag", *OK),
        2,
        "flag provided but not defined: -no-such-flag",
        verify=lambda w, run: json_error_on_stdout(run, "flag provided but not defined: -no-such-flag"),
    ),
]


def tree_digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if ".git" not in p.relative_to(root).parts and p.is_file()
    }


def refs_of(w: World) -> dict[str, str]:
    out = run_git(
        "for-each-ref", "--format=%(refname) %(objectname)", cwd=w.cwd, env=w.env, check=False
    ).stdout
    return dict(line.split(" ", 1) for line in out.decode().splitlines() if line)


def test_bad_input_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_one_clear_line_and_loses_nothing(
    git_server: GitServer, tmp_path: Path, case: Case
) -> None:
    w = World(tmp_path, git_server)
    case.setup(w)
    before, files_before, refs_before = snapshot(w.cwd), tree_digests(w.cwd), refs_of(w)
    git_dir = w.cwd / ".git"
    locked_before = (git_dir / "index.lock").exists()
    args = [a.format(**w.values) for a in case.args]

    started = time.monotonic()
    run = run_tool(args, w.cwd, w.env, timeout=60)
    elapsed = time.monotonic() - started

    assert run.returncode == case.code, run.stderr
    assert "Traceback" not in run.stderr
    if case.code == 0:
        assert run.error_lines == [], run.stderr
    else:
        assert len(run.error_lines) == 1, run.stderr
        assert case.message in run.error_lines[0], run.error_lines[0]
    assert case.stderr in run.stderr
    assert elapsed < case.max_seconds, f"took {elapsed:.1f}s"

    if case.outcome == "unchanged":
        assert snapshot(w.cwd) == before
    else:
        # Every file the user had is as it was (outputs excepted), and every commit a ref of theirs
        # pointed at is still reachable from some ref.
        outputs = {p.removesuffix(".tmpl") for p in files_before if p.endswith(".tmpl")}
        after = tree_digests(w.cwd)
        assert {p: d for p, d in files_before.items() if p not in outputs} == {
            p: after.get(p) for p in files_before if p not in outputs
        }
        for ref, old in refs_before.items():
            holders = run_git("for-each-ref", "--contains", old, cwd=w.cwd, env=w.env).stdout
            assert holders.strip(), f"{ref} ({old}) is no longer reachable"
    assert not [p for p in w.cwd.rglob(".update-gitops-repo.*")]
    # No private index left behind, and index.lock as it was (a stale one is the user's to remove).
    assert not list(git_dir.glob("update-gitops-repo.*")) if git_dir.is_dir() else True
    assert (git_dir / "index.lock").exists() == locked_before
    if case.verify is not None:
        case.verify(w, run)
