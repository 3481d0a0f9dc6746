"""Run the CLI exactly as the console script does, recording when each phase starts and ends.

    python bench/timed_run.py MARKS.json [-profile PROFILE.out] -- ARGS...

Phases are timed by wrapping (not replacing) the functions cli.run calls, so behaviour is unchanged:
find (the directory walk), render (read + render in memory), write (outputs to disk), commit (stage,
write-tree, commit-tree, check out the branch), push. MARKS.json also gets this process's peak RSS
and the peak RSS of its largest child (a git process), both in KiB as getrusage reports them on Linux.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import functools  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

marks: dict[str, float] = {}


def _timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        marks.setdefault(f"{name}.start", time.perf_counter() - T0)
        try:
            return fn(*args, **kwargs)
        finally:
            marks[f"{name}.end"] = time.perf_counter() - T0

    return wrapper


def _instrument() -> None:
    from updater import publish, render, templates

    templates.find_in_directory = _timed("find", templates.find_in_directory)
    render.render_all = _timed("render", render.render_all)
    render.Workspace.write = _timed("write", render.Workspace.write)  # type: ignore[method-assign]
    publish.commit_worktree = _timed("commit", publish.commit_worktree)
    publish.push_converging = _timed("push", publish.push_converging)


def main() -> int:
    out = Path(sys.argv[1])
    rest = sys.argv[2:]
    profile = None
    if rest[:1] == ["-profile"]:
        profile, rest = rest[1], rest[2:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    tool = str(Path(sys.executable).parent / "update-gitops-repo")
    from updater.cli import main as cli_main

    marks["imported"] = time.perf_counter() - T0
    _instrument()
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        status = profiler.runcall(cli_main, [tool, *rest])
        profiler.dump_stats(profile)
    else:
        status = cli_main([tool, *rest])
    marks["end"] = time.perf_counter() - T0
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out.write_text(
        json.dumps({"status": status, "marks": marks, "maxrss_kib": own, "child_maxrss_kib": children})
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
