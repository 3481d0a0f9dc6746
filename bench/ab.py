"""Two revisions of the tool, end to end, interleaved in the same rounds: the only fair way to compare
code on a shared, noisy machine (separate bench/run.py runs swing more than most changes).

    .venv/bin/python bench/ab.py BEFORE AFTER [ROUNDS]     # e.g. bench/ab.py 760f21a HEAD 50

Each revision is checked out into a temporary git worktree and installed as a wheel would be
(measure.regular_install); every round pushes a fresh checkout of fixtures/hello-world with both and
with the shell-script baseline, in a shuffled order. Prints the medians, the ratios to the script, and
after/before (ratio of the medians, and the median of the rounds' ratios).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import measure, scenarios  # noqa: E402
from tests.gitserver import DEFAULT_TOKEN, GitServer, clone, copy_fixture, make_home  # noqa: E402


def main(before: str, after: str, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="update-gitops-repo-ab.", ignore_cleanup_errors=True) as name:
        tmp = Path(name)
        tools = {}
        try:
            for label, rev in (("before", before), ("after", after)):
                tree = tmp / f"src-{label}"
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(tree), rev], check=True
                )
                measure.ROOT = tree  # regular_install copies the packages from measure.ROOT
                tools[label] = measure.regular_install(tmp / f"install-{label}").tool
        finally:
            measure.ROOT = ROOT
            for label in ("before", "after"):
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tmp / f"src-{label}")],
                    check=False,
                    capture_output=True,
                )
        with GitServer(tmp / "server") as server:
            home = make_home(tmp / "home")
            env = {**home, "GITHUB_TOKEN": DEFAULT_TOKEN}
            args = scenarios.tool_argv(scenarios.REV, "-create-pull-request=false")
            script_env = {**env, "REV": scenarios.REV, "IMAGE": scenarios.IMAGE, "HEADER_ARGV": "x"}

            def variant(label: str, argv: list[str], run_env: dict[str, str]):  # type: ignore[no-untyped-def]
                def one(r: int) -> float:
                    repo = f"ab/{label}-{r}.git"
                    url = server.create_repo(repo, copy_fixture("hello-world", tmp / f"seed-{label}-{r}"))
                    checkout = clone(
                        url, tmp / f"co-{label}-{r}", token=DEFAULT_TOKEN, detached=True, env=home
                    )
                    seconds = measure.run_timed(argv, cwd=checkout, env=run_env)
                    server.git(repo, "rev-parse", f"update-to-commit-{scenarios.REV}")  # it did push
                    shutil.rmtree(checkout)
                    return seconds

                return one

            s = measure.interleave(
                {
                    "before": variant("before", [tools["before"], *args], env),
                    "after": variant("after", [tools["after"], *args], env),
                    "script": variant("script", ["sh", str(scenarios.BENCH / "baseline.sh")], script_env),
                },
                rounds,
                warmup=2,
            )
    print(
        f"ms, median [min-max]: before {s['before'].ms()}, after {s['after'].ms()}, script {s['script'].ms()}"
    )
    print(
        f"against the script (medians): before {measure.ratio(s['before'], s['script']):.2f}x, "
        f"after {measure.ratio(s['after'], s['script']):.2f}x"
    )
    print(
        f"after/before: medians {measure.ratio(s['after'], s['before']):.3f}, "
        f"rounds {measure.paired_ratio(s['after'], s['before']):.3f}"
    )


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) == 4 else 30)
