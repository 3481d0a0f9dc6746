"""Push races: many pipelines pushing to one branch of one GitOps repository at the same moment.

Real processes (the installed console script), a real smart-HTTP remote (git http-backend), started
together. A run that loses a race must fetch the new tip, re-render on it and push again, so that no
change is lost and no file is ever a mix of two runs. Also: the classifier that decides "the branch
moved under you", fed the wordings of git itself, GitHub, GitLab and Bitbucket; and what a run says
when the branch keeps moving until its attempts run out.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import TOOL
from tests.gitserver import DEFAULT_TOKEN, GitServer, clone, make_home, run_git
from updater import render
from updater.transport import push_outcome

REPO = "acme/fleet.git"
CLUSTERS = 20
CLUSTER_TEMPLATE = "cluster: {n}\nimage: $({{ .image }})\n"
# Several placeholders on several lines: a file mixing two runs' values would show it.
SHARED_TEMPLATE = "apiVersion: v1\nkind: ConfigMap\ndata:\n  image: $({ .image })\n  tag: $({ .tag })\n  again: $({ .image })\n"


@dataclass
class Finished:
    index: int
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.startswith("update-gitops-repo: error:")]


def run_together(
    jobs: list[tuple[list[str], Path]], env: Mapping[str, str], timeout: float = 120
) -> list[Finished]:
    """Start every job at the same instant (threads released by one barrier), wait for all of them."""
    barrier = threading.Barrier(len(jobs))
    results: list[Finished | None] = [None] * len(jobs)

    def one(i: int, args: list[str], cwd: Path) -> None:
        argv = [TOOL, *args]
        barrier.wait()
        done = subprocess.run(argv, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout)
        results[i] = Finished(i, argv, done.returncode, done.stdout, done.stderr)

    threads = [threading.Thread(target=one, args=(i, args, cwd)) for i, (args, cwd) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is not None for r in results), "a run did not finish"
    return [r for r in results if r is not None]


def checkouts_of(
    server: GitServer, tmp_path: Path, count: int, files: Mapping[str, str]
) -> tuple[list[Path], dict[str, str]]:
    """`count` Tekton-style checkouts (detached, depth 1) of one new repository; token in ~/.git-credentials."""
    url = server.create_repo(REPO, dict(files))
    env = make_home(tmp_path, url, "tekton-bot", DEFAULT_TOKEN, style="tekton")
    first = clone(url, tmp_path / "ws" / "0", detached=True, env=env)
    checkouts = [first]
    for i in range(1, count):
        # A copy is what a fresh clone would make (same commit, same shallow boundary), only faster.
        checkouts.append(Path(shutil.copytree(first, tmp_path / "ws" / str(i), symlinks=True)))
    return checkouts, env


def rendering(template_rel: str, argv: list[str], raw: str, values: dict[str, str]) -> bytes:
    """What one run writes for one template: the header with its own argv, then the body."""
    return render.render_bytes(raw.encode(), values, template=template_rel, argv=argv, missing_default=False)


def test_twenty_concurrent_pushes_to_one_branch_all_land(git_server: GitServer, tmp_path: Path) -> None:
    files = {f"clusters/c{n}/config.yaml.tmpl": CLUSTER_TEMPLATE.format(n=n) for n in range(CLUSTERS)}
    checkouts, env = checkouts_of(git_server, tmp_path, CLUSTERS, files)
    base = git_server.rev(REPO, "main")
    jobs = []
    for n, checkout in enumerate(checkouts):
        args = [
            f"-git-revision=rev{n:02d}",
            f"-substitute=image=registry/app@sha256:{n:064x}",
            "-branch=main",
            "-create-pull-request=false",
        ]
        # Half select their cluster with -filepath from the top, half run inside their cluster's directory.
        if n % 2 == 0:
            jobs.append(([*args, f"-filepath=clusters/c{n}/*.tmpl"], checkout))
        else:
            jobs.append((args, checkout / "clusters" / f"c{n}"))

    started = time.monotonic()
    runs = run_together(jobs, env)
    elapsed = time.monotonic() - started

    for run in runs:
        assert run.returncode == 0, f"run {run.index}: {run.stderr}"
        assert "Traceback" not in run.stderr
    # Exactly 20 new commits on main, in a line, one per run: none lost, none doubled.
    new = git_server.git(REPO, "rev-list", f"{base}..main").split()
    assert len(new) == CLUSTERS
    assert git_server.git(REPO, "rev-list", "--count", "--merges", f"{base}..main") == "0"
    subjects = {sha: git_server.git(REPO, "log", "-1", "--format=%s", sha) for sha in new}
    assert sorted(subjects.values()) == [f"update templates for commit rev{n:02d}" for n in range(CLUSTERS)]
    # Each commit changes its own cluster's output and nothing else.
    for sha, subject in subjects.items():
        n = int(subject.rsplit("rev", 1)[1])
        touched = git_server.git(REPO, "diff-tree", "--no-commit-id", "-r", "--name-only", sha).split()
        assert touched == [f"clusters/c{n}/config.yaml"], subject
    # Every output on main is exactly what its run rendered (the header carries the run's own argv).
    for run in runs:
        n = run.index
        template = f"clusters/c{n}/config.yaml.tmpl" if n % 2 == 0 else "config.yaml.tmpl"
        want = rendering(
            template, run.argv, CLUSTER_TEMPLATE.format(n=n), {"image": f"registry/app@sha256:{n:064x}"}
        )
        assert git_server.read(REPO, f"clusters/c{n}/config.yaml", "main") == want
    assert sorted(git_server.files(REPO, "main")) == sorted(
        [*files, *(f"clusters/c{n}/config.yaml" for n in range(CLUSTERS))]
    )
    # Each checkout ends on main at a commit that is on origin's main, with nothing left over.
    on_main = set(new)
    for n, checkout in enumerate(checkouts):
        head = run_git("rev-parse", "HEAD", cwd=checkout, env=env).stdout.decode().strip()
        assert head in on_main, n
        assert run_git("status", "--porcelain", cwd=checkout, env=env).stdout == b"", n
    assert elapsed < 60, f"20 racing runs took {elapsed:.1f}s"


def test_ten_runs_rendering_the_same_file_leave_one_complete_rendering(
    git_server: GitServer, tmp_path: Path
) -> None:
    count = 10
    checkouts, env = checkouts_of(git_server, tmp_path, count, {"app/config.yaml.tmpl": SHARED_TEMPLATE})
    base = git_server.rev(REPO, "main")
    jobs = []
    for i, checkout in enumerate(checkouts):
        args = [
            f"-git-revision=same{i}",
            f"-substitute=image=registry/app:{i}",
            f"-substitute=tag=v{i}.{i}",
            "-branch=main",
            "-create-pull-request=false",
        ]
        jobs.append((args, checkout))

    runs = run_together(jobs, env)

    complete = {
        rendering(
            "app/config.yaml.tmpl",
            run.argv,
            SHARED_TEMPLATE,
            {"image": f"registry/app:{run.index}", "tag": f"v{run.index}.{run.index}"},
        )
        for run in runs
    }
    assert len(complete) == count
    for run in runs:
        assert run.returncode in (0, 1), f"run {run.index}: {run.stderr}"
        assert "Traceback" not in run.stderr
        if run.returncode == 1:
            # Failing is allowed under this much contention, but cleanly: one line saying why.
            assert len(run.error_lines) == 1, run.stderr
            assert "-push-attempts" in run.error_lines[0]
    succeeded = [r for r in runs if r.returncode == 0]
    assert succeeded, "no run got its change in"
    # Every state main went through holds one complete rendering: never a mix, never half a file.
    new = git_server.git(REPO, "rev-list", f"{base}..main").split()
    assert len(new) == len(succeeded)
    for sha in new:
        assert git_server.read(REPO, "app/config.yaml", sha) in complete, sha
    # The last one to land wins, with its whole file.
    last = git_server.git(REPO, "log", "-1", "--format=%s", "main").rsplit("same", 1)[1]
    assert git_server.read(REPO, "app/config.yaml", "main") == rendering(
        "app/config.yaml.tmpl",
        runs[int(last)].argv,
        SHARED_TEMPLATE,
        {"image": f"registry/app:{last}", "tag": f"v{last}.{last}"},
    )


MOVE_ON_EVERY_PUSH = """\
#!/bin/sh
# Another writer lands between every push's ref advertisement and its ref update: git then refuses
# the update with "cannot lock ref '<ref>': is at X but expected Y", exactly as GitHub words it.
ref=$1
tip=$(git rev-parse "$ref")
next=$(git -c user.name=other -c user.email=other@example.com commit-tree "$tip^{tree}" -p "$tip" -m "other writer")
git update-ref "$ref" "$next"
"""


def test_when_the_attempts_run_out_the_error_says_so_and_the_commit_is_kept(
    git_server: GitServer, tmp_path: Path
) -> None:
    (checkout,), env = checkouts_of(git_server, tmp_path, 1, {"app/config.yaml.tmpl": SHARED_TEMPLATE})
    hook = git_server.repo_dir(REPO) / "hooks" / "update"
    hook.write_text(MOVE_ON_EVERY_PUSH)
    hook.chmod(0o755)
    git_server.clear_log()
    args = [
        "-git-revision=late",
        "-substitute=image=i",
        "-substitute=tag=t",
        "-branch=main",
        "-create-pull-request=false",
        "-push-attempts=3",
    ]
    done = subprocess.run([TOOL, *args], cwd=checkout, env=env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 1, done.stderr
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("update-gitops-repo: error:")]
    assert errors == [
        "update-gitops-repo: error: push to origin/main was still rejected after 3 attempts because other "
        "pushes keep moving it; the commit is kept locally on main; rerun, or raise -push-attempts"
    ]
    assert "Traceback" not in done.stderr
    assert len(git_server.push_requests(REPO)) == 3  # one push per attempt, each re-rendered on the new tip
    subjects = git_server.git(REPO, "log", "--format=%s", "main").splitlines()
    assert subjects == ["other writer"] * 3 + ["Initial commit"]
    # Nothing is lost: the change is committed locally, on the last tip it was rendered on.
    local = run_git("log", "-1", "--format=%s%n%P", "main", cwd=checkout, env=env).stdout.decode().split("\n")
    assert local[0] == "update templates for commit late"
    assert local[1] == git_server.git(REPO, "rev-parse", "main~1")  # the tip of the third attempt
    assert b"image: i" in (checkout / "app" / "config.yaml").read_bytes()
    assert run_git("status", "--porcelain", cwd=checkout, env=env).stdout == b""


def test_a_retry_carries_the_users_tracked_edits_onto_the_new_tip(
    git_server: GitServer, tmp_path: Path
) -> None:
    files = {"app/config.yaml.tmpl": SHARED_TEMPLATE, "app/notes.txt": "v1\n"}
    (checkout,), env = checkouts_of(git_server, tmp_path, 1, files)
    # Someone else's push lands after the checkout was made.
    theirs = git_server.commit_directly(REPO, {"other/file.txt": "theirs\n"}, branch="main")
    # A pipeline script edited a tracked file before the tool ran; it was not staged.
    (checkout / "app" / "notes.txt").write_text("v2 by the pipeline\n")
    (checkout / "scratch.log").write_text("untracked, not ours to commit\n")
    args = [
        "-git-revision=carry",
        "-substitute=image=i",
        "-substitute=tag=t",
        "-branch=main",
        "-create-pull-request=false",
    ]
    done = subprocess.run([TOOL, *args], cwd=checkout, env=env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert "moved on" in done.stderr  # it did have to retry
    assert git_server.git(REPO, "rev-parse", "main~1") == theirs
    changed = git_server.git(REPO, "diff-tree", "--no-commit-id", "-r", "--name-only", "main").split()
    assert sorted(changed) == ["app/config.yaml", "app/notes.txt"]
    assert git_server.read(REPO, "app/notes.txt", "main") == b"v2 by the pipeline\n"
    assert git_server.read(REPO, "other/file.txt", "main") == b"theirs\n"
    # The checkout followed: it has their file, keeps the untracked one, and is otherwise clean.
    assert (checkout / "other" / "file.txt").read_text() == "theirs\n"
    status = run_git("status", "--porcelain", cwd=checkout, env=env).stdout.decode()
    assert status == "?? scratch.log\n"


# -- the classifier ------------------------------------------------------------------------------------

OLD, NEW = "1bdf96c8c868981a0e24c43c98aef09a8970a1b8", "7dc98ee9c0b75be429e300bb59b3cf6d091ca9ed"


@dataclass(frozen=True)
class PushText:
    name: str
    stdout: str  # `git push --porcelain` writes the per-ref status here
    stderr: str  # remote: lines, error: and hint: lines
    says: str = ""  # what the one-line reason must contain (for refusals that are not a moved branch)


# Texts as git 2.39 prints them with --porcelain, for what each host answers. The hosts run git (GitHub's
# spokes, GitLab's Gitaly, Bitbucket's git processes), so the wording is git's own at different versions.
STALE = [
    PushText(
        "git: the branch moved before the push (fetch first)",
        "To https://git.example.com/acme/fleet.git\n!\trefs/heads/main:refs/heads/main\t[rejected] (fetch first)\nDone\n",
        "error: failed to push some refs to 'https://git.example.com/acme/fleet.git'\n"
        "hint: Updates were rejected because the remote contains work that you do\n"
        "hint: not have locally. This is usually caused by another repository pushing\n"
        "hint: to the same ref. You may want to first integrate the remote changes\n",
    ),
    PushText(
        "git: non-fast-forward (the remote tip is known locally)",
        "To https://git.example.com/acme/fleet.git\n!\trefs/heads/main:refs/heads/main\t[rejected] (non-fast-forward)\nDone\n",
        "error: failed to push some refs to 'https://git.example.com/acme/fleet.git'\n"
        "hint: Updates were rejected because the tip of your current branch is behind\n",
    ),
    PushText(
        "github: lost the ref-update race (cannot lock ref ... is at ... but expected ...)",
        "To https://github.com/acme/fleet.git\n!\trefs/heads/main:refs/heads/main\t[remote rejected] (cannot lock "
        f"ref 'refs/heads/main': is at {NEW} but expected {OLD})\nDone\n",
        "error: failed to push some refs to 'https://github.com/acme/fleet.git'\n",
    ),
    PushText(
        "git server: lost the race, reason on a remote: line (failed to update ref)",
        "To https://git.example.com/acme/fleet.git\n!\trefs/heads/main:refs/heads/main\t[remote rejected] "
        "(failed to update ref)\nDone\n",
        f"remote: error: cannot lock ref 'refs/heads/main': is at {NEW} but expected {OLD}        \n"
        "error: failed to push some refs to 'https://git.example.com/acme/fleet.git'\n",
    ),
    PushText(
        "gitlab: Gitaly's reference transaction (incorrect old value provided)",
        "To https://gitlab.com/acme/group/fleet.git\n!\trefs/heads/main:refs/heads/main\t[remote rejected] "
        "(incorrect old value provided)\nDone\n",
        "error: failed to push some refs to 'https://gitlab.com/acme/group/fleet.git'\n",
    ),
    PushText(
        "bitbucket cloud: the branch moved (fetch first), with Bitbucket's remote: banner",
        "To https://bitbucket.org/acme/fleet.git\n!\trefs/heads/main:refs/heads/main\t[rejected] (fetch first)\nDone\n",
        "error: failed to push some refs to 'https://bitbucket.org/acme/fleet.git'\n"
        "hint: Updates were rejected because the remote contains work that you do\n",
    ),
    PushText(
        "bitbucket server: lost the race on an older git (failed to lock)",
        "To https://bitbucket.example.com/scm/ops/fleet.git\n!\trefs/heads/master:refs/heads/master\t[remote rejected] "
        "(failed to lock)\nDone\n",
        "remote: error: failed to lock refs/heads/master\n"
        "error: failed to push some refs to 'https://bitbucket.example.com/scm/ops/fleet.git'\n",
    ),
    PushText(
        "newer git: a concurrent run created the branch first (reference already exists)",
        "To https://git.example.com/acme/fleet.git\n!\trefs/heads/update-to-commit-1:refs/heads/update-to-commit-1\t"
        "[remote rejected] (reference already exists)\nDone\n",
        "error: failed to push some refs to 'https://git.example.com/acme/fleet.git'\n",
    ),
]

NOT_STALE = [
    PushText(
        "github: protected branch (a hook, not a race)",
        "To https://github.com/acme/fleet.git\n!\trefs/heads/main:refs/heads/main\t[remote rejected] "
        "(protected branch hook declined)\nDone\n",
        "remote: error: GH006: Protected branch update failed for refs/heads/main.\n"
        "remote: error: Changes must be made through a pull request.\n"
        "error: failed to push some refs to 'https://github.com/acme/fleet.git'\n",
        "the branch is protected",
    ),
    PushText(
        "gitlab: protected branch",
        "To https://gitlab.com/acme/fleet.git\n!\trefs/heads/main:refs/heads/main\t[remote rejected] "
        "(pre-receive hook declined)\nDone\n",
        "remote: GitLab: You are not allowed to push code to protected branches on this project.\n"
        "error: failed to push some refs to 'https://gitlab.com/acme/fleet.git'\n",
        "You are not allowed to push code to protected branches",
    ),
    PushText(
        "bitbucket server: branch permissions",
        "To https://bitbucket.example.com/scm/ops/fleet.git\n!\trefs/heads/master:refs/heads/master\t"
        "[remote rejected] (pre-receive hook declined)\nDone\n",
        "remote: Branch refs/heads/master can only be modified through pull requests.\n"
        "error: failed to push some refs to 'https://bitbucket.example.com/scm/ops/fleet.git'\n",
        "can only be modified through pull requests",
    ),
    PushText(
        "a shallow push the server refuses",
        "To https://gitlab.com/acme/fleet.git\n!\trefs/heads/main:refs/heads/main\t[remote rejected] "
        "(shallow update not allowed)\nDone\n",
        "error: failed to push some refs to 'https://gitlab.com/acme/fleet.git'\n",
        "[remote rejected] (shallow update not allowed)",
    ),
    PushText(
        "bad credentials",
        "",
        "remote: Invalid username or password.\nfatal: Authentication failed for 'https://github.com/acme/fleet.git/'\n",
        "origin refused the credentials",
    ),
    PushText(
        "the connection broke mid-push",
        "",
        "error: RPC failed; HTTP 502 curl 22 The requested URL returned error: 502\n"
        "send-pack: unexpected disconnect while reading sideband packet\nfatal: the remote end hung up unexpectedly\n",
        "fatal: the remote end hung up unexpectedly",
    ),
]


def classify(text: PushText, status: int = 1) -> tuple[bool, bool, str]:
    result = push_outcome(status, text.stdout, text.stderr, "main")
    return result.ok, result.rejected_stale, result.message


@pytest.mark.parametrize("text", STALE, ids=lambda t: t.name)
def test_the_branch_moved_is_recognised_in_every_hosts_wording(
    text: PushText,
) -> None:
    ok, stale, message = classify(text)
    assert not ok and stale
    assert message and "\n" not in message


@pytest.mark.parametrize("text", NOT_STALE, ids=lambda t: t.name)
def test_other_refusals_are_not_mistaken_for_a_moved_branch(
    text: PushText,
) -> None:
    ok, stale, message = classify(text)
    assert not ok and not stale
    assert text.says in message and "\n" not in message, message


def test_a_push_that_succeeded_is_not_classified_at_all() -> None:
    text = PushText(
        "ok",
        f"To https://git.example.com/a/b.git\n \t{NEW}:refs/heads/main\t{OLD[:7]}..{NEW[:7]}\nDone\n",
        "",
    )
    assert classify(text, status=0) == (True, False, "")
