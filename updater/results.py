"""What a run reports: text or JSON on stdout, Tekton result files, GitHub Actions outputs."""

from __future__ import annotations

import os
import sys

from updater.redact import redact

# Plain classes, no dataclasses or typing at run time: every deploy pays for their import
# (docs/benchmarks.md). The JSON shape is spelled out in as_dict, where a reader looks for it.

# `merge` of the results (README, "Output"): not-requested, merged, auto-enabled (the forge merges it
# when its checks pass; the run did not wait); the run failed with: checks-pending (no wait, no
# auto-merge, checks not done; exit 4), timed-out (-wait ran out; exit 4), closed, checks-failed,
# auto-disabled (exit 3), failed (the merge or auto-merge was refused or the API failed; exit 1).
MERGE_STATUSES = (
    "not-requested",
    "merged",
    "auto-enabled",
    "checks-pending",
    "timed-out",
    "closed",
    "checks-failed",
    "auto-disabled",
    "failed",
)


class FileResult:
    __slots__ = ("changed", "output", "template")

    def __init__(self, template: str, output: str, changed: bool) -> None:
        self.template, self.output, self.changed = template, output, changed


class PullRequestResult:
    __slots__ = ("base", "merged", "number", "operation", "url")

    def __init__(self, url: str, number: int, operation: str, base: str, merged: bool = False) -> None:
        self.url = url
        self.number = number
        self.operation = operation  # created | reused | updated
        self.base = base
        self.merged = merged


class Result:
    def __init__(self) -> None:
        self.operation = "unchanged"  # rendered | dry-run | unchanged | pushed | created | reused | updated
        self.changed = False
        self.files: list[FileResult] = []
        self.branch = ""
        self.commit = ""
        self.pushed = False
        self.pull_request: PullRequestResult | None = None
        # What became of the merge (-merge-pull-request, -merge-when, -wait; docs/providers.md): one of
        # MERGE_STATUSES. Set by the pull-request step; a run that opens no pull request keeps this.
        self.merge = "not-requested"
        self.diff: str | None = None
        self.error: str | None = None
        self.exit_code = 0
        # -dry-run only: the provider and where the credential came from (never the credential).
        self.provider: str | None = None
        self.credential: str | None = None
        self.dry_run = False

    def as_dict(self) -> dict[str, object]:
        """The -output=json document; `diff` and `error` only when there is one."""
        pr = self.pull_request
        data: dict[str, object] = {
            "operation": self.operation,
            "changed": self.changed,
            "files": [{"template": f.template, "output": f.output, "changed": f.changed} for f in self.files],
            "branch": self.branch,
            "commit": self.commit,
            "pushed": self.pushed,
            "merge": self.merge,
            "pull_request": None
            if pr is None
            else {
                "url": pr.url,
                "number": pr.number,
                "operation": pr.operation,
                "base": pr.base,
                "merged": pr.merged,
            },
            "diff": self.diff,
            "error": self.error,
            "exit_code": self.exit_code,
        }
        if self.dry_run:
            data["provider"] = self.provider
            data["credential"] = {"found": self.credential is not None, "source": self.credential}
        if self.diff is None:
            del data["diff"]
        if self.error is None:
            del data["error"]
        return data

    def outputs(self) -> dict[str, str]:
        """The results CI steps consume (Tekton results, GitHub Actions outputs, dotenv)."""
        pr = self.pull_request
        return {
            "pr-url": pr.url if pr else "",
            "pr-number": str(pr.number) if pr else "",
            "commit": self.commit,
            "branch": self.branch,
            "operation": self.operation,
            "merge": self.merge,
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
