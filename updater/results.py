"""What a run reports: text or JSON on stdout, Tekton result files, GitHub Actions outputs."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from updater.redact import redact


@dataclass
class FileResult:
    template: str
    output: str
    changed: bool


@dataclass
class PullRequestResult:
    url: str
    number: int
    operation: str  # created | reused | updated
    base: str
    merged: bool = False


@dataclass
class Result:
    operation: str = "unchanged"  # rendered | dry-run | unchanged | pushed | created | reused | updated
    changed: bool = False
    files: list[FileResult] = field(default_factory=list)
    branch: str = ""
    commit: str = ""
    pushed: bool = False
    pull_request: PullRequestResult | None = None
    diff: str | None = None
    error: str | None = None
    exit_code: int = 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.diff is None:
            data.pop("diff")
        if self.error is None:
            data.pop("error")
        return data

    def outputs(self) -> dict[str, str]:
        """The five results CI steps consume (Tekton results, GitHub Actions outputs, dotenv)."""
        pr = self.pull_request
        return {
            "pr-url": pr.url if pr else "",
            "pr-number": str(pr.number) if pr else "",
            "commit": self.commit,
            "branch": self.branch,
            "operation": self.operation,
        }


def emit(result: Result, output_format: str, results_dir: str) -> None:
    if output_format == "json":
        import json  # only -output=json needs it

        print(redact(json.dumps(result.as_dict(), indent=None, sort_keys=False)), flush=True)
    else:
        if result.diff:
            sys.stdout.write(redact(result.diff))
        if result.pull_request:
            print(result.pull_request.url, flush=True)
    if results_dir:
        write_results_dir(results_dir, result.outputs())
    github_output = os.environ.get("GITHUB_OUTPUT")
    if github_output:
        with open(github_output, "a", encoding="utf-8") as fh:
            for key, value in result.outputs().items():
                fh.write(f"{key}={value}\n")


def write_results_dir(directory: str, values: dict[str, str]) -> None:
    os.makedirs(directory, exist_ok=True)
    for key, value in values.items():
        # Tekton results are files named after the result, without a trailing newline.
        with open(os.path.join(directory, key), "w", encoding="utf-8") as fh:
            fh.write(value)
