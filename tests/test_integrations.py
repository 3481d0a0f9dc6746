"""The CI integrations (Tekton Task, Dispatchfiles, GitHub Action, GitLab CI template, docker wrapper)
are well-formed, use only flags the CLI defines, and really work: each one's own script runs the CLI
against a real git remote (tests/gitserver.py) and a fake GitHub API (tests/fakes/github.py), and the
results reach the CI system the way it expects them (Tekton result files, $GITHUB_OUTPUT, dotenv).

The scripts are run as the CI system would run them, except that `/usr/bin/update-gitops-repo` (the
image's entrypoint) is replaced by a wrapper around this checkout's CLI.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.fakes.github import FakeGitHub
from tests.gitserver import DEFAULT_TOKEN, FIXTURES, GitServer, clean_env, clone, make_home, run_git
from updater.results import Result

REPO = Path(__file__).resolve().parent.parent
INTEGRATIONS = REPO / "integrations"
TASK = INTEGRATIONS / "tekton" / "task.yaml"
DISPATCH_CUE = INTEGRATIONS / "dispatch" / "Dispatchfile.cue"
DISPATCH_STAR = INTEGRATIONS / "dispatch" / "Dispatchfile.star"
ACTION = INTEGRATIONS / "github-actions" / "action.yml"
ACTION_DOCKERFILE = INTEGRATIONS / "github-actions" / "Dockerfile"
ACTION_ENTRYPOINT = INTEGRATIONS / "github-actions" / "entrypoint.py"
ACTION_EXAMPLE = INTEGRATIONS / "github-actions" / "example-workflow.yml"
GITLAB = INTEGRATIONS / "gitlab-ci" / "update-gitops-repo.gitlab-ci.yml"
DOCKER_WRAPPER = INTEGRATIONS / "docker" / "update-gitops-repo.sh"

ENTRYPOINT = "/usr/bin/update-gitops-repo"
PUBLISHED_IMAGE = "ghcr.io/update-gitops-repo/update-gitops-repo:0.1.0"
RESULT_NAMES = ("pr-url", "pr-number", "commit", "branch", "operation", "merge")
REPO_PATH = "acme/gitops"
REVISION = "1b39bd0c8f4e2a7d6b5c9e0f1a2b3c4d5e6f7a8b"
DIGEST = "sha256:" + "e3" * 32
IMAGE_NAME = f"registry.example.com/acme/hello-world@{DIGEST}"
FLAG_IN_TEXT = re.compile(r"""(?<![\w-])-([a-z][a-z0-9]*(?:-[a-z0-9]+)*)=""")


# -- helpers ------------------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def write_cli_wrapper(directory: Path) -> Path:
    """An executable that runs this checkout's CLI, standing in for the image's /usr/bin entrypoint."""
    directory.mkdir(parents=True, exist_ok=True)
    wrapper = directory / "update-gitops-repo"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from updater.cli import main\n"
        "sys.exit(main())\n"
    )
    wrapper.chmod(0o755)
    return wrapper


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_cli_wrapper(tmp_path_factory.mktemp("bin"))


@functools.cache
def cli_flags(cli: Path) -> frozenset[str]:
    """Flag names from the CLI's own -help output."""
    done = subprocess.run([str(cli), "-help"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    names = re.findall(r"^\s+-([a-z][a-z0-9-]*)\b", done.stdout, flags=re.MULTILINE)
    assert "git-revision" in names and "results-dir" in names, done.stdout
    return frozenset(names)


def header_argv(content: bytes) -> list[str]:
    """The command line recorded in a generated file's second header line."""
    line = content.decode().splitlines()[1]
    marker = " by the update-gitops-repo tool with arguments: "
    assert marker in line, line
    return shlex.split(line.split(marker, 1)[1])


def read_results(directory: Path) -> dict[str, str]:
    return {name: (directory / name).read_text() for name in RESULT_NAMES}


def tool_env(home: Path | None = None, **extra: str) -> dict[str, str]:
    """A clean environment for running the integration scripts (no CI outputs of the outer CI)."""
    env = clean_env(**extra) if home is None else make_home(home)
    env.pop("GITHUB_OUTPUT", None)
    env.update(extra)
    return env


@dataclass
class Remote:
    git: GitServer
    github: FakeGitHub
    url: str

    @property
    def bare(self) -> str:
        return f"{REPO_PATH}.git"

    def checkout(self, dest: Path) -> Path:
        """A Tekton-style checkout: detached HEAD at the default branch's tip, shallow."""
        return clone(self.url, dest, token=DEFAULT_TOKEN, detached=True)

    def file_on(self, branch: str, path: str = "application.yaml") -> bytes:
        return self.git.read(self.bare, path, f"refs/heads/{branch}")

    def pull_url(self, number: int) -> str:
        return f"{self.github.web_url}/{REPO_PATH}/pull/{number}"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GitServer, FakeGitHub]]:
    with GitServer(tmp_path_factory.mktemp("gitserver")) as git, FakeGitHub() as github:
        yield git, github


@pytest.fixture
def remote(servers: tuple[GitServer, FakeGitHub]) -> Remote:
    """acme/gitops seeded from the Dispatch tutorial's fixture, on the git server and the fake GitHub."""
    git, github = servers
    git.reset()
    url = git.create_repo(f"{REPO_PATH}.git", FIXTURES / "hello-world", default_branch="main")
    github.add_token(DEFAULT_TOKEN)
    github.add_repo(REPO_PATH, default_branch="main", git_dir=git.repo_dir(f"{REPO_PATH}.git"))
    return Remote(git, github, url)


# -- Tekton ---------------------------------------------------------------------------------------------

TEKTON_VAR = re.compile(r"\$\((params|results|workspaces)\.([\w-]+)(?:\.(path))?\)")


@dataclass
class TektonStep:
    script: Path
    args: list[str]
    env: dict[str, str]
    working_dir: Path


def tekton_step(
    task: dict[str, Any],
    params: Mapping[str, str | list[str]],
    *,
    workspace: Path,
    results_dir: Path,
    secrets: Mapping[tuple[str, str], str],
    cli: Path,
    scripts_dir: Path,
) -> TektonStep:
    """What Tekton makes of the Task's single step: variables substituted, array params expanded in
    args, secretKeyRef env resolved (optional ones left out when missing), the script as a file."""
    declared = {p["name"]: p for p in task["spec"]["params"]}
    unknown = set(params) - set(declared)
    assert not unknown, f"not params of the Task: {unknown}"
    values: dict[str, Any] = {name: p.get("default") for name, p in declared.items()}
    values.update(params)
    results = {r["name"] for r in task["spec"]["results"]}
    workspaces = {w["name"] for w in task["spec"]["workspaces"]}

    def substitute(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            kind, name, path = match.groups()
            if kind == "params":
                assert name in declared, f"$(params.{name}) is not declared"
                assert isinstance(values[name], str), f"array param {name} used as a string"
                return str(values[name])
            if kind == "results":
                assert name in results and path == "path", match.group(0)
                return str(results_dir / name)
            assert name in workspaces and path == "path", match.group(0)
            return str(workspace)

        return TEKTON_VAR.sub(one, text)

    (step,) = task["spec"]["steps"]
    args: list[str] = []
    for arg in step.get("args", []):
        array = re.fullmatch(r"\$\(params\.([\w-]+)\[\*\]\)", arg)
        if array:
            assert declared[array.group(1)].get("type") == "array", arg
            args.extend(values[array.group(1)])
        else:
            args.append(substitute(arg))
    env: dict[str, str] = {}
    for var in step.get("env", []):
        if "value" in var:
            env[var["name"]] = substitute(var["value"])
            continue
        ref = var["valueFrom"]["secretKeyRef"]
        key = (substitute(ref["name"]), substitute(ref["key"]))
        if key in secrets:
            env[var["name"]] = secrets[key]
        else:
            assert ref.get("optional") is True, f"secret {key} missing and not optional"
    script = substitute(step["script"]).replace(ENTRYPOINT, str(cli))
    path = scripts_dir / "script-0"
    path.write_text(script)
    path.chmod(0o755)
    return TektonStep(path, args, env, Path(substitute(step["workingDir"])))


def run_tekton(step: TektonStep, base_env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(step.script), *step.args],
        cwd=step.working_dir,
        env={**base_env, **step.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_tekton_task_declares_params_results_and_workspace() -> None:
    task = load_yaml(TASK)
    assert task["apiVersion"] == "tekton.dev/v1"
    assert task["kind"] == "Task"
    assert task["metadata"]["name"] == "update-gitops-repo"
    params = {p["name"]: p for p in task["spec"]["params"]}
    for name in (
        "git-revision", "substitutions", "filepath", "branch", "base-branch", "scm-provider", "api-endpoint",
        "create-pull-request", "merge-pull-request", "merge-method", "labels", "token-secret-name",
        "token-secret-key",
    ):  # fmt: skip
        assert name in params, name
        assert params[name].get("description"), f"param {name} has no description"
    assert params["substitutions"]["type"] == "array"
    assert params["substitutions"]["default"] == []
    assert [r["name"] for r in task["spec"]["results"]] == list(RESULT_NAMES)
    assert [w["name"] for w in task["spec"]["workspaces"]] == ["source"]
    (step,) = task["spec"]["steps"]
    assert step["image"] == "$(params.image)"
    assert params["image"]["default"] == PUBLISHED_IMAGE
    assert step["workingDir"].startswith("$(workspaces.source.path)")
    token = {e["name"]: e for e in step["env"]}["UPDATE_GITOPS_REPO_TOKEN"]
    assert token["valueFrom"]["secretKeyRef"] == {
        "name": "$(params.token-secret-name)",
        "key": "$(params.token-secret-key)",
        "optional": True,
    }
    # Every declared param is used somewhere in the step, and the script never splices one into
    # shell code (string params reach it through env; arrays through args).
    used = set(re.findall(r"\$\(params\.([\w-]+)", json.dumps(step)))
    assert used == set(params)
    assert "$(params." not in step["script"]
    assert '-results-dir=$(dirname "$(results.pr-url.path)")' in step["script"]


def test_tekton_task_uses_only_flags_the_cli_defines(cli: Path) -> None:
    step = load_yaml(TASK)["spec"]["steps"][0]
    used = set(FLAG_IN_TEXT.findall(step["script"]))
    assert {"git-revision", "substitute", "results-dir", "merge-method", "labels"} <= used
    assert used <= cli_flags(cli), used - cli_flags(cli)


def test_tekton_task_opens_a_pull_request_with_the_secret_token_and_fills_the_results(
    remote: Remote, cli: Path, tmp_path: Path
) -> None:
    workspace = remote.checkout(tmp_path / "workspace" / "source")
    results = tmp_path / "tekton" / "results"
    results.mkdir(parents=True)
    step = tekton_step(
        load_yaml(TASK),
        {
            "git-revision": REVISION,
            "substitutions": [f"imageName={IMAGE_NAME}"],
            "scm-provider": "github",
            "api-endpoint": remote.github.api_url,
            "labels": "deploy,gitops",
        },
        workspace=workspace,
        results_dir=results,
        secrets={("update-gitops-repo-token", "token"): DEFAULT_TOKEN},
        cli=cli,
        scripts_dir=tmp_path,
    )
    assert step.working_dir == workspace  # subdirectory "" keeps the checkout's root
    done = run_tekton(step, tool_env(home=tmp_path / "home"))

    assert done.returncode == 0, done.stderr
    assert done.stdout == remote.pull_url(1) + "\n"
    branch = f"update-to-commit-{REVISION}"
    assert read_results(results) == {
        "pr-url": remote.pull_url(1),
        "pr-number": "1",
        "commit": remote.git.rev(remote.bare, f"refs/heads/{branch}"),
        "branch": branch,
        "operation": "created",
        "merge": "not-requested",
    }
    (pull,) = remote.github.pulls(REPO_PATH)
    assert (pull.head, pull.base, pull.labels) == (branch, "main", ["deploy", "gitops"])
    content = remote.file_on(branch)
    assert f'image: "{IMAGE_NAME}"'.encode() in content
    # Only the flags that differ from the defaults reach the command line the header records.
    assert header_argv(content) == [
        str(cli),
        f"-git-revision={REVISION}",
        f"-substitute=imageName={IMAGE_NAME}",
        "-scm-provider=github",
        f"-api-endpoint={remote.github.api_url}",
        "-labels=deploy,gitops",
        f"-results-dir={results}",
    ]
    assert DEFAULT_TOKEN not in done.stdout + done.stderr


def test_tekton_task_pushes_with_tekton_git_credentials_when_there_is_no_secret(
    remote: Remote, cli: Path, tmp_path: Path
) -> None:
    # Tekton's creds-init writes ~/.git-credentials + credential.helper=store from the ServiceAccount's
    # basic-auth Secret; the token Secret of the Task is absent (optional).
    env = make_home(tmp_path, remote.url, "ci-bot", DEFAULT_TOKEN, style="tekton")
    env.pop("GITHUB_OUTPUT", None)
    workspace = remote.checkout(tmp_path / "workspace" / "source")
    (workspace / "staging").mkdir()
    run_git("mv", "application.yaml.tmpl", "staging/", cwd=workspace, env=env)
    results = tmp_path / "results"
    step = tekton_step(
        load_yaml(TASK),
        {
            "subdirectory": "staging",
            "git-revision": REVISION,
            "substitutions": [f"imageName={IMAGE_NAME}", "unused=a=b:c@d"],
            "branch": "deploy/staging",
            "create-pull-request": "false",
            "commit-message": "deploy hello-world to staging",
            "extra-args": ["-verbose", "-missing-key=error"],
        },
        workspace=workspace,
        results_dir=results,
        secrets={},
        cli=cli,
        scripts_dir=tmp_path,
    )
    assert "UPDATE_GITOPS_REPO_TOKEN" not in step.env
    assert step.working_dir == workspace / "staging"
    done = run_tekton(step, env)

    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert read_results(results)["operation"] == "pushed"
    assert read_results(results)["pr-url"] == ""
    assert remote.github.pulls(REPO_PATH) == []
    content = remote.file_on("deploy/staging", "staging/application.yaml")
    assert header_argv(content)[1:] == [
        f"-git-revision={REVISION}",
        f"-substitute=imageName={IMAGE_NAME}",
        "-substitute=unused=a=b:c@d",
        "-branch=deploy/staging",
        "-commit-message=deploy hello-world to staging",
        "-create-pull-request=false",
        f"-results-dir={results}",
        "-verbose",
        "-missing-key=error",
    ]
    message = remote.git.git(remote.bare, "log", "-1", "--format=%s", "refs/heads/deploy/staging")
    assert message == "deploy hello-world to staging"
    assert DEFAULT_TOKEN not in done.stdout + done.stderr


# -- Dispatch -------------------------------------------------------------------------------------------

DISPATCH_BUILTINS = {"task", "action", "resource", "k8s", "p", "load"}


def starlark_calls(tree: ast.Module, name: str) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
    ]


def keyword(call: ast.Call, name: str) -> Any:
    for kw in call.keywords:
        if kw.arg == name:
            return ast.literal_eval(kw.value)
    raise KeyError(name)


def deploy_container(tree: ast.Module) -> ast.Call:
    (deploy,) = [c for c in starlark_calls(tree, "task") if ast.literal_eval(c.args[0]) == "deploy"]
    (steps,) = [kw.value for kw in deploy.keywords if kw.arg == "steps"]
    assert isinstance(steps, ast.List)
    (container,) = steps.elts
    assert isinstance(container, ast.Call)
    assert ast.unparse(container.func) == "k8s.corev1.Container"
    return container


def cue_deploy_step(text: str) -> dict[str, Any]:
    """The deploy task's step from the CUE Dispatchfile (fields are simple JSON-like literals)."""
    start = text.index('task "deploy": {')
    block = text[start : text.index("\nactions:", start)]
    step: dict[str, Any] = {}
    for field in ("name", "image", "workingDir"):
        match = re.search(rf'^\s*{field}: ("[^"]*")$', block, flags=re.MULTILINE)
        assert match, field
        step[field] = json.loads(match.group(1))
    args = re.search(r"args: (\[[^\]]*\])", block, flags=re.DOTALL)
    assert args
    step["args"] = json.loads(args.group(1))
    inputs = re.search(r"inputs: (\[[^\]]*\])", block)
    assert inputs
    step["inputs"] = json.loads(inputs.group(1))
    return step


def test_dispatch_starlark_uses_catalog_helpers_and_runs_the_tool() -> None:
    tree = ast.parse(DISPATCH_STAR.read_text())  # Starlark's syntax is a subset of Python's
    (load,) = starlark_calls(tree, "load")
    module = ast.literal_eval(load.args[0])
    assert module.startswith("github.com/mesosphere/dispatch-catalog/starlark/stable/pipeline@")
    loaded = {ast.literal_eval(a) for a in load.args[1:]}
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert called - DISPATCH_BUILTINS == loaded, "every helper called is loaded, and every one loaded is used"
    git = {ast.literal_eval(c.args[0]) for c in starlark_calls(tree, "gitResource")}
    images = {ast.literal_eval(c.args[0]) for c in starlark_calls(tree, "imageResource")}
    assert {"src-git", "gitops-git"} <= git
    assert images == {"docker-image"}

    container = deploy_container(tree)
    assert keyword(container, "image") == PUBLISHED_IMAGE
    assert keyword(container, "workingDir") == "/workspace/gitops-git"
    args = keyword(container, "args")
    assert args[0] == "-git-revision=$(context.git.commit)"
    assert (
        args[1]
        == "-substitute=imageName=your-dockerhub-user/hello-world@$(inputs.resources.docker-image.digest)"
    )


def test_dispatch_cue_matches_the_tutorial_step() -> None:
    text = DISPATCH_CUE.read_text()
    assert text.count("{") == text.count("}") and text.count("[") == text.count("]")
    for resource in ("src-git", "docker-image", "gitops-git"):
        assert f'resource "{resource}": {{' in text
    step = cue_deploy_step(text)
    assert step["inputs"] == ["docker-image", "gitops-git"]
    assert step["name"] == "update-gitops-repo"
    assert step["image"] == PUBLISHED_IMAGE
    assert step["workingDir"] == "/workspace/gitops-git"
    assert step["args"][:2] == [
        "-git-revision=$(context.git.commit)",
        "-substitute=imageName=your-dockerhub-user/hello-world@$(inputs.resources.docker-image.digest)",
    ]


def test_dispatchfiles_agree_and_use_only_flags_the_cli_defines(cli: Path) -> None:
    star_args = keyword(deploy_container(ast.parse(DISPATCH_STAR.read_text())), "args")
    cue_args = cue_deploy_step(DISPATCH_CUE.read_text())["args"]
    assert star_args == cue_args
    used = {arg.split("=", 1)[0].lstrip("-") for arg in cue_args}
    assert used <= cli_flags(cli), used - cli_flags(cli)


# -- GitHub Actions -------------------------------------------------------------------------------------


@functools.cache
def action_entrypoint() -> ModuleType:
    spec = importlib.util.spec_from_file_location("github_action_entrypoint", ACTION_ENTRYPOINT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def github_inputs(overrides: Mapping[str, str], *, sha: str = REVISION, token: str = "") -> dict[str, str]:
    """INPUT_* variables as the runner sets them: every input, its default unless given."""
    contexts = {"github.sha": sha, "github.token": token}
    env = {}
    for name, spec in load_yaml(ACTION)["inputs"].items():
        value = overrides.get(name, spec.get("default", ""))
        value = re.sub(r"\$\{\{\s*([\w.]+)\s*\}\}", lambda m: contexts[m.group(1)], str(value))
        env[f"INPUT_{name.upper()}"] = value
    return env


def test_github_action_inputs_map_to_cli_flags_and_outputs_to_results(cli: Path) -> None:
    action = load_yaml(ACTION)
    assert action["runs"]["using"] == "docker"
    assert (ACTION.parent / action["runs"]["image"]).resolve() == ACTION_DOCKERFILE
    entry = action_entrypoint()
    inputs = action["inputs"]
    assert set(inputs) == set(entry.FLAGS) | set(entry.OTHER_INPUTS)
    for name, (flag, default) in entry.FLAGS.items():
        assert flag.lstrip("-") in cli_flags(cli), flag
        if name != "git-revision":  # defaults to the workflow's commit
            assert str(inputs[name]["default"]) == default, name
    assert inputs["token"]["default"] == "${{ github.token }}"
    assert set(action["outputs"]) == set(RESULT_NAMES) == set(Result().outputs())
    assert all(spec.get("description") for spec in [*inputs.values(), *action["outputs"].values()])
    dockerfile = ACTION_DOCKERFILE.read_text()
    assert f"ARG IMAGE={PUBLISHED_IMAGE}\n" in dockerfile
    assert "entrypoint.py" in dockerfile


def test_github_action_keeps_the_token_out_of_argv() -> None:
    entry = action_entrypoint()
    env = {
        "GITHUB_WORKSPACE": "/github/workspace",
        **github_inputs(
            {
                "path": "gitops",
                "substitutions": f"imageName={IMAGE_NAME}\n\n  tag=1.2.3  \n",
                "labels": "deploy",
                "merge-pull-request": "true",
                "merge-method": "squash",
                "extra-args": "-verbose\n-filepath=staging/**.yaml.tmpl\n",
            },
            token="ghs_secret-token-value",
        ),
    }
    run = entry.invocation(env)
    assert run.argv == [
        ENTRYPOINT,
        f"-git-revision={REVISION}",
        f"-substitute=imageName={IMAGE_NAME}",
        "-substitute=tag=1.2.3",
        "-merge-pull-request=true",
        "-merge-method=squash",
        "-labels=deploy",
        "-verbose",
        "-filepath=staging/**.yaml.tmpl",
    ]
    assert run.cwd == Path("/github/workspace/gitops")
    assert run.env["UPDATE_GITOPS_REPO_TOKEN"] == "ghs_secret-token-value"
    assert "INPUT_TOKEN" not in run.env
    assert not any("ghs_secret" in arg for arg in run.argv)


def test_github_action_run_writes_its_outputs_to_github_output(
    remote: Remote, cli: Path, tmp_path: Path
) -> None:
    workspace = tmp_path / "github" / "workspace"
    remote.checkout(workspace / "gitops")
    output = tmp_path / "github_output"
    output.write_text("earlier=kept\n")
    env = {
        **tool_env(home=tmp_path / "home"),
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_OUTPUT": str(output),
        **github_inputs(
            {
                "path": "gitops",
                "substitutions": f"imageName={IMAGE_NAME}",
                "scm-provider": "github",
                "api-endpoint": remote.github.api_url,
            },
            token=DEFAULT_TOKEN,
        ),
    }
    run = action_entrypoint().invocation(env)
    done = subprocess.run(
        [str(cli), *run.argv[1:]], cwd=run.cwd, env=run.env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == remote.pull_url(1) + "\n"
    lines = output.read_text().splitlines()
    assert lines[0] == "earlier=kept"
    outputs = dict(line.split("=", 1) for line in lines[1:])
    branch = f"update-to-commit-{REVISION}"
    assert outputs == {
        "pr-url": remote.pull_url(1),
        "pr-number": "1",
        "commit": remote.git.rev(remote.bare, f"refs/heads/{branch}"),
        "branch": branch,
        "operation": "created",
        "merge": "not-requested",
    }


def test_github_action_example_workflow_uses_the_action_with_its_inputs() -> None:
    workflow = load_yaml(ACTION_EXAMPLE)
    inputs = set(load_yaml(ACTION)["inputs"])
    outputs = set(load_yaml(ACTION)["outputs"])
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    (use,) = [s for s in steps if s.get("uses", "").endswith("/integrations/github-actions@v0.1.0")]
    assert set(use["with"]) <= inputs
    assert "${{ secrets." in use["with"]["token"]
    referenced = set(re.findall(r"steps\.gitops\.outputs\.([\w-]+)", ACTION_EXAMPLE.read_text()))
    assert referenced and referenced <= outputs
    (checkout,) = [
        s
        for s in steps
        if s.get("uses", "").startswith("actions/checkout@")
        and s.get("with", {}).get("path") == use["with"]["path"]
    ]
    assert checkout["with"]["persist-credentials"] is False


# -- GitLab CI -------------------------------------------------------------------------------------------


def gitlab_job() -> dict[str, Any]:
    return dict(load_yaml(GITLAB)[".update-gitops-repo"])


def test_gitlab_template_reports_results_as_dotenv_and_keeps_the_token_out_of_the_file(cli: Path) -> None:
    job = gitlab_job()
    assert job["image"] == {"name": PUBLISHED_IMAGE, "entrypoint": [""]}
    assert job["artifacts"]["reports"]["dotenv"] == "update-gitops-repo.env"
    variables = job["variables"]
    assert {"GITOPS_REPO_URL", "GITOPS_REVISION", "GITOPS_SUBSTITUTIONS", "GITOPS_FLAGS"} <= set(variables)
    assert "GITOPS_TOKEN" not in variables, "the token belongs in a masked CI/CD variable, not in the file"
    script = "\n".join(job["script"])
    assert 'UPDATE_GITOPS_REPO_TOKEN="$GITOPS_TOKEN"' in script
    used = set(FLAG_IN_TEXT.findall(script))
    assert {"git-revision", "substitute", "results-dir"} <= used <= cli_flags(cli)


def run_gitlab_job(
    job: dict[str, Any], cli: Path, project_dir: Path, ci: Mapping[str, str], overrides: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    """Like the runner: variables expanded against the CI variables, the script in one sh session."""
    env = {**tool_env(home=project_dir.parent / "home"), **ci, "CI_PROJECT_DIR": str(project_dir)}
    for name, value in job["variables"].items():
        env[name] = re.sub(r"\$(\w+)", lambda m: env.get(m.group(1), ""), str(value))
    env.update(overrides)
    script = project_dir.parent / "gitlab-job.sh"
    script.write_text("\n".join(job["script"]).replace(ENTRYPOINT, str(cli)))
    project_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        ["sh", str(script)], cwd=project_dir, env=env, capture_output=True, text=True, timeout=120
    )


def test_gitlab_job_clones_runs_the_tool_and_writes_the_dotenv_report(
    remote: Remote, cli: Path, tmp_path: Path
) -> None:
    project = tmp_path / "builds" / "app"
    done = run_gitlab_job(
        gitlab_job(),
        cli,
        project,
        ci={
            "CI_COMMIT_SHA": REVISION,
            "CI_API_V4_URL": "http://gitlab.invalid/api/v4",
            "CI_JOB_TOKEN": "job",
        },
        overrides={
            "GITOPS_REPO_URL": remote.url,
            "GITOPS_TOKEN": DEFAULT_TOKEN,
            "GITOPS_SUBSTITUTIONS": f"imageName={IMAGE_NAME}\n",
            # The GitOps repository of this test lives on the fake GitHub, not on GitLab.
            "GITOPS_SCM_PROVIDER": "github",
            "GITOPS_API_ENDPOINT": remote.github.api_url,
            "GITOPS_FLAGS": "-filepath=**.tmpl\n-labels=deploy",
        },
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == remote.pull_url(1) + "\n"
    branch = f"update-to-commit-{REVISION}"
    dotenv = (project / "update-gitops-repo.env").read_text().splitlines()
    assert dotenv == [
        f"UPDATE_GITOPS_REPO_PR_URL={remote.pull_url(1)}",
        "UPDATE_GITOPS_REPO_PR_NUMBER=1",
        f"UPDATE_GITOPS_REPO_COMMIT={remote.git.rev(remote.bare, f'refs/heads/{branch}')}",
        f"UPDATE_GITOPS_REPO_BRANCH={branch}",
        "UPDATE_GITOPS_REPO_OPERATION=created",
        "UPDATE_GITOPS_REPO_MERGE=not-requested",
    ]
    checkout = project / ".update-gitops-repo" / "checkout"
    assert header_argv(remote.file_on(branch))[1:5] == [
        f"-git-revision={REVISION}",
        f"-substitute=imageName={IMAGE_NAME}",
        "-scm-provider=github",
        f"-api-endpoint={remote.github.api_url}",
    ]
    assert "-filepath=**.tmpl" in header_argv(remote.file_on(branch))  # not globbed by the shell
    # The clone's credentials were never written down.
    assert DEFAULT_TOKEN not in (checkout / ".git" / "config").read_text()
    assert DEFAULT_TOKEN not in done.stdout + done.stderr
    assert remote.github.pulls(REPO_PATH)[0].labels == ["deploy"]


def test_gitlab_job_without_a_repository_url_says_what_to_set(cli: Path, tmp_path: Path) -> None:
    done = run_gitlab_job(gitlab_job(), cli, tmp_path / "builds" / "app", ci={}, overrides={})
    assert done.returncode == 2
    assert "set GITOPS_REPO_URL" in done.stderr


# -- docker wrapper -------------------------------------------------------------------------------------

WRAPPED_IMAGE = "registry.example.com/update-gitops-repo:test"
IN_CONTAINER = "/run/update-gitops-repo"


@dataclass
class DockerRun:
    """What the wrapper asked `docker run` to do: options, image, the tool's arguments, environment."""

    options: list[str]
    args: list[str]
    env: dict[str, str]  # the environment docker itself got

    @property
    def argv(self) -> list[str]:
        return [*self.options, WRAPPED_IMAGE, *self.args]

    def values(self, option: str) -> list[str]:
        return [self.options[i + 1] for i, opt in enumerate(self.options) if opt == option]


@pytest.fixture
def fake_docker(tmp_path: Path) -> Path:
    """A `docker` that records its argv and environment as JSON (where FAKE_DOCKER_LOG says) and exits 0."""
    path = tmp_path / "fake-bin" / "docker"
    path.parent.mkdir()
    path.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "with open(os.environ['FAKE_DOCKER_LOG'], 'w') as fh:\n"
        "    json.dump({'argv': sys.argv[1:], 'env': dict(os.environ)}, fh)\n"
    )
    path.chmod(0o755)
    return path


def run_docker_wrapper(
    fake_docker: Path, cwd: Path, *args: str, env: Mapping[str, str] | None = None
) -> DockerRun:
    log = fake_docker.parent / "run.json"
    base = {
        "PATH": f"{fake_docker.parent}:/usr/bin:/bin",
        "HOME": str(cwd),
        "DOCKER": str(fake_docker),
        "FAKE_DOCKER_LOG": str(log),
        "UPDATE_GITOPS_REPO_IMAGE": WRAPPED_IMAGE,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    done = subprocess.run(
        [str(DOCKER_WRAPPER), *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    recorded = json.loads(log.read_text())
    argv = recorded["argv"]
    assert argv[0] == "run", argv
    image = argv.index(WRAPPED_IMAGE)
    return DockerRun(argv[1:image], argv[image + 1 :], recorded["env"])


@pytest.fixture
def gitops_checkout(tmp_path: Path) -> Path:
    """A GitOps repository with a sub-directory, and a secrets directory next to it (outside it)."""
    top = tmp_path / "gitops"
    (top / "apps" / "web").mkdir(parents=True)
    run_git("init", "--quiet", str(top))
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "token").write_text("glpat-secret-file-content\n")
    (secrets / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    return top.resolve()


def test_docker_wrapper_mounts_the_repository_top_and_starts_in_the_same_sub_directory(
    fake_docker: Path, gitops_checkout: Path
) -> None:
    run = run_docker_wrapper(fake_docker, gitops_checkout / "apps" / "web", "-git-revision=abc")
    assert run.values("-v") == [f"{gitops_checkout}:/workspace"]
    assert run.values("-w") == ["/workspace/apps/web"]
    assert run.args == ["-git-revision=abc"]
    assert {"--rm", "--read-only"} <= set(run.options)
    assert run.values("--tmpfs") == ["/tmp"]
    assert run.values("--user") == [f"{os.getuid()}:{os.getgid()}"]
    # At the top itself, and outside any repository: the current directory.
    run = run_docker_wrapper(fake_docker, gitops_checkout, "-git-revision=abc")
    assert (run.values("-v"), run.values("-w")) == ([f"{gitops_checkout}:/workspace"], ["/workspace"])
    elsewhere = gitops_checkout.parent / "secrets"
    run = run_docker_wrapper(fake_docker, elsewhere, "-compile-only")
    assert (run.values("-v"), run.values("-w")) == ([f"{elsewhere}:/workspace"], ["/workspace"])


def env_names_the_tool_reads() -> set[str]:
    """Every variable the credential lookup and the providers read by name, from their source."""
    names: set[str] = set()
    sources = (REPO / "updater" / "credentials.py", REPO / "updater" / "github_app.py")
    for path in (*sources, *sorted((REPO / "providers").glob("*.py"))):
        text = path.read_text()
        names |= set(re.findall(r"""environ(?:\.get)?[(\[]\s*"([A-Z][A-Z0-9_]*)\"""", text))
        names |= set(re.findall(r'"((?:[A-Z][A-Z0-9]*_)+(?:TOKEN|PASSWORD|USERNAME|EMAIL|USER))"', text))
        names |= set(re.findall(r'"(GITHUB_APP_[A-Z_]+)"', text))
    # A file's path: mounted and renamed, not forwarded as it is (see the CA-bundle test).
    return names - {"GITHUB_APP_PRIVATE_KEY_FILE"}


def test_docker_wrapper_passes_credential_proxy_and_identity_variables_by_name(
    fake_docker: Path, gitops_checkout: Path
) -> None:
    documented = {
        "UPDATE_GITOPS_REPO_TOKEN", "UPDATE_GITOPS_REPO_USERNAME", "GITHUB_TOKEN", "GH_TOKEN",
        "GH_ENTERPRISE_TOKEN", "GITLAB_TOKEN", "GL_TOKEN", "GITLAB_OAUTH_TOKEN", "CI_JOB_TOKEN", "BITBUCKET_USERNAME",
        "BITBUCKET_APP_PASSWORD", "BITBUCKET_ACCESS_TOKEN", "BITBUCKET_TOKEN", "BITBUCKET_SERVER_TOKEN",
        "GITHUB_SERVER_URL", "GITHUB_API_URL", "CI_SERVER_HOST", "CI_API_V4_URL", "CI_PROJECT_PATH",
        "CI_DEFAULT_BRANCH", "https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy",
        "ALL_PROXY", "no_proxy", "NO_PROXY", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE",
        "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_COMMITTER_DATE", "TZ",
    }  # fmt: skip
    forwarded = documented | env_names_the_tool_reads()
    env = {name: f"value-of-{name}-s3cr3t" for name in forwarded}
    env["UNRELATED_SECRET"] = "value-of-UNRELATED_SECRET-s3cr3t"
    env["UPDATE_GITOPS_REPO_SAFE_DIRECTORY_SET"] = "1"  # the tool's own marker, never inherited
    run = run_docker_wrapper(fake_docker, gitops_checkout, "-git-revision=abc", env=env)

    assert sorted(run.values("-e")) == sorted(forwarded)  # by name only: NAME, never NAME=value
    assert not any("s3cr3t" in arg for arg in run.argv), run.argv
    assert all(run.env[name] == env[name] for name in forwarded)  # docker reads the values itself
    assert WRAPPED_IMAGE not in run.values("-e")


@pytest.mark.parametrize(
    "variable",
    [
        "SSL_CERT_FILE",
        "GIT_SSL_CAINFO",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "GITHUB_APP_PRIVATE_KEY_FILE",
    ],
)
def test_docker_wrapper_mounts_the_ca_bundle_a_variable_names(
    fake_docker: Path, gitops_checkout: Path, variable: str
) -> None:
    ca = gitops_checkout.parent / "secrets" / "ca.pem"
    run = run_docker_wrapper(fake_docker, gitops_checkout / "apps", env={variable: str(ca)})
    target = f"{IN_CONTAINER}/env/{variable}"
    assert run.values("-v") == [f"{gitops_checkout}:/workspace", f"{ca}:{target}:ro"]
    assert run.values("-e") == [f"{variable}={target}"]
    # A directory (SSL_CERT_DIR) too; and a path that does not exist goes by name: the tool says so.
    run = run_docker_wrapper(
        fake_docker, gitops_checkout, env={"SSL_CERT_DIR": str(ca.parent), variable: "/no/such/ca.pem"}
    )
    assert run.values("-v")[1:] == [f"{ca.parent}:{IN_CONTAINER}/env/SSL_CERT_DIR:ro"]
    assert sorted(run.values("-e")) == sorted([variable, f"SSL_CERT_DIR={IN_CONTAINER}/env/SSL_CERT_DIR"])


@pytest.mark.parametrize("flag", ["token-file", "api-token-file", "ca-bundle"])
@pytest.mark.parametrize("form", ["-flag=PATH", "--flag=PATH", "-flag PATH", "--flag PATH"])
@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_docker_wrapper_mounts_token_file_and_ca_bundle_outside_the_repository(
    fake_docker: Path, gitops_checkout: Path, flag: str, form: str, relative: bool
) -> None:
    name = "ca.pem" if flag == "ca-bundle" else "token"
    cwd = gitops_checkout / "apps" / "web"
    path = f"../../../secrets/{name}" if relative else str(gitops_checkout.parent / "secrets" / name)
    dashes, _, rest = form.partition("flag")
    separate = rest == " PATH"
    args = [f"{dashes}{flag}", path] if separate else [f"{dashes}{flag}={path}"]
    run = run_docker_wrapper(fake_docker, cwd, "-git-revision=abc", *args, "-dry-run")

    target = f"{IN_CONTAINER}/1-{flag}"
    host = gitops_checkout.parent / "secrets" / name
    assert run.values("-v") == [f"{gitops_checkout}:/workspace", f"{host}:{target}:ro"]
    rewritten = [f"{dashes}{flag}", target] if separate else [f"{dashes}{flag}={target}"]
    assert run.args == ["-git-revision=abc", *rewritten, "-dry-run"]
    assert not any("secret-file-content" in arg for arg in run.argv)


def test_docker_wrapper_leaves_paths_in_the_repository_and_other_values_alone(
    fake_docker: Path, gitops_checkout: Path
) -> None:
    (gitops_checkout / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    outside = str(gitops_checkout.parent / "secrets" / "token")
    args = [
        "-ca-bundle=../../ca.pem",  # relative, in the repository: the working directory matches
        f"-token-file={gitops_checkout}/ca.pem",  # absolute, in the repository: the mounted path
        "-commit-message",  # a value that looks like a flag is a value
        f"-token-file={outside}",
        "-create-pull-request",  # a boolean flag takes no value: the next argument is a flag
        f"--token-file={outside}",
        "-token-file=/no/such/file",  # missing: the tool says so, with the path as given
        "--",
        f"-token-file={outside}",
    ]
    run = run_docker_wrapper(fake_docker, gitops_checkout / "apps" / "web", *args)
    assert run.args == [
        "-ca-bundle=../../ca.pem",
        "-token-file=/workspace/ca.pem",
        "-commit-message",
        f"-token-file={outside}",
        "-create-pull-request",
        f"--token-file={IN_CONTAINER}/1-token-file",
        "-token-file=/no/such/file",
        "--",
        f"-token-file={outside}",
    ]
    assert run.values("-v") == [f"{gitops_checkout}:/workspace", f"{outside}:{IN_CONTAINER}/1-token-file:ro"]


def test_docker_wrapper_knows_which_flags_take_no_value() -> None:
    # Any other flag written without "=" takes the next argument as its value, which the wrapper must
    # not mistake for a flag: its list of boolean flags must be the CLI's.
    from updater.flags import FLAGS

    text = DOCKER_WRAPPER.read_text()
    parts = re.findall(r'^bool_flags="(?:\$bool_flags)?( [a-z -]+ )"$', text, flags=re.MULTILINE)
    assert parts, "bool_flags not found in the docker wrapper"
    wrapper = {name for part in parts for name in part.split()}
    assert wrapper == {name for name, flag in FLAGS.items() if flag.kind == "bool"} | {"help", "h"}


# -- all of them -----------------------------------------------------------------------------------------


def test_every_integration_points_at_the_same_published_image() -> None:
    texts = {
        path.relative_to(REPO).as_posix(): path.read_text()
        for path in (TASK, DISPATCH_CUE, DISPATCH_STAR, ACTION_DOCKERFILE, GITLAB, DOCKER_WRAPPER)
    }
    for name, text in texts.items():
        refs = set(re.findall(r"ghcr\.io/[\w./-]+:[\w.-]+", text))
        assert refs == {PUBLISHED_IMAGE}, f"{name}: {refs}"
