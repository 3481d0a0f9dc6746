"""The GitHub Action's entrypoint: the action's inputs (INPUT_* variables) → update-gitops-repo flags.

GitHub hands a container action its inputs as environment variables named INPUT_<NAME> (upper-cased,
hyphens kept), so a shell could not read most of them; Python can. Only inputs that differ from the
tool's defaults become flags, which keeps the command line that every generated file's header records
as short as one a person would type. The token never becomes a flag: it is handed over as
UPDATE_GITOPS_REPO_TOKEN and its INPUT_ variable is dropped.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

COMMAND = "/usr/bin/update-gitops-repo"

# input name → (flag, the tool's default: the flag is passed only when the input differs from it)
FLAGS: dict[str, tuple[str, str]] = {
    "git-revision": ("-git-revision", ""),
    "filepath": ("-filepath", ""),
    "branch": ("-branch", ""),
    "base-branch": ("-base-branch", ""),
    "commit-message": ("-commit-message", ""),
    "scm-provider": ("-scm-provider", ""),
    "api-endpoint": ("-api-endpoint", ""),
    "create-pull-request": ("-create-pull-request", "true"),
    "merge-pull-request": ("-merge-pull-request", "false"),
    "merge-method": ("-merge-method", "merge"),
    "labels": ("-labels", ""),
    "reviewers": ("-reviewers", ""),
    "draft": ("-draft", "false"),
    "force-push": ("-force-push", "false"),
    "missing-key": ("-missing-key", "error"),
    "dry-run": ("-dry-run", "false"),
}
# Inputs that are not flags, handled below.
OTHER_INPUTS = ("token", "path", "substitutions", "extra-args")


@dataclass(frozen=True)
class Invocation:
    argv: list[str]
    env: dict[str, str]
    cwd: Path


def input_value(environ: Mapping[str, str], name: str) -> str:
    return environ.get(f"INPUT_{name.replace(' ', '_').upper()}", "").strip()


def lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def invocation(environ: Mapping[str, str]) -> Invocation:
    argv = [COMMAND]
    revision_flag, _ = FLAGS["git-revision"]
    if revision := input_value(environ, "git-revision"):
        argv.append(f"{revision_flag}={revision}")
    argv += [f"-substitute={pair}" for pair in lines(input_value(environ, "substitutions"))]
    for name, (flag, default) in FLAGS.items():
        value = input_value(environ, name)
        if name != "git-revision" and value and value != default:
            argv.append(f"{flag}={value}")
    argv += lines(input_value(environ, "extra-args"))

    env = {key: value for key, value in environ.items() if key != "INPUT_TOKEN"}
    if token := input_value(environ, "token"):
        env["UPDATE_GITOPS_REPO_TOKEN"] = token
    workspace = Path(environ.get("GITHUB_WORKSPACE") or os.getcwd())
    return Invocation(argv, env, workspace / (input_value(environ, "path") or "."))


def main() -> None:
    run = invocation(os.environ)
    try:
        os.chdir(run.cwd)
    except OSError as exc:
        print(f"update-gitops-repo action: path {run.cwd}: {exc.strerror}", file=sys.stderr)
        sys.exit(2)
    os.execve(run.argv[0], run.argv, run.env)


if __name__ == "__main__":
    main()
