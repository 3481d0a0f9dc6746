"""Benchmarks with budgets, in one run; writes docs/benchmarks.md.

    .venv/bin/python bench/run.py                 # everything (~5-10 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick         # fewer repetitions, scale up to 10,000 templates
    .venv/bin/python bench/run.py --only startup,api --no-write

Exit status 1 when a budget is missed (the report is still written), 0 otherwise.
"""

from __future__ import annotations

import argparse
import datetime
import os
import pstats
import shlex
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `tests.gitserver` and `bench.*` when run as a script

from bench import measure, scenarios  # noqa: E402
from bench.measure import TOOL  # noqa: E402
from tests.gitserver import GitServer  # noqa: E402

SECTIONS = ("startup", "e2e", "api", "scale")


@dataclass
class Budget:
    what: str
    limit: str
    figure: str
    ok: bool


@dataclass
class Section:
    title: str
    lines: list[str] = field(default_factory=list)
    budgets: list[Budget] = field(default_factory=list)

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        self.lines += ["| " + " | ".join(row) + " |" for row in rows]
        self.lines.append("")


def pressure() -> str:
    """CPU pressure (share of time some task waited for a CPU, last 60 s) and load: how noisy it was."""
    text = f"load {os.getloadavg()[0]:.2f}"
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        text += f", CPU pressure {some.split()[2].split('=')[1]}%"
    except (OSError, IndexError):
        pass
    return text


def code_version() -> str:
    """The commit measured, and whether updater/ or providers/ had uncommitted changes then."""
    import subprocess

    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "updater", "providers"],
        capture_output=True,
        text=True,
    )
    changed = [line[3:] for line in dirty.stdout.splitlines()]
    return head.stdout.strip() + (f" with uncommitted changes in {', '.join(changed)}" if changed else "")


def rel(path: str) -> str:
    return os.path.relpath(path, ROOT)


# -- sections -----------------------------------------------------------------------------------------


def run_startup(tmp: Path, reps: int, regular: measure.Install) -> Section:
    s = Section("1. Startup")
    before = pressure()
    result = scenarios.startup(tmp, reps, (measure.EDITABLE, regular))
    s.lines += [
        f"Each command run {reps} times, interleaved in a shuffled order each round (after 2 warm-up rounds), "
        f"from a clean environment; wall time of the whole process. `-compile-only` renders "
        f"fixtures/hello-world: `update-gitops-repo {shlex.join(scenarios.compile_only_argv())}`. "
        "Two installs of the same code and interpreter: the developers' .venv (an editable install, whose "
        "finder every start of that python imports from a .pth file, so its bare start is slower) and a "
        "regular install as a wheel (and the image) has it, made by bench/measure.py's `regular_install`. "
        "Each ratio is against `python -c pass` of the same install. "
        f"Machine while measuring: {before} → {pressure()}.",
        "",
    ]
    rows = []
    for name, by_command in result.samples.items():
        base = by_command["python -c pass"]
        for command, samples in by_command.items():
            rows.append([name, f"`{command}`", samples.ms(), f"{measure.ratio(samples, base):.2f}x"])
        help_ratio = measure.ratio(by_command["-help"], base)
        s.budgets.append(
            Budget(
                f"`-help` against the bare interpreter, {name}", "≤ 3x", f"{help_ratio:.2f}x", help_ratio <= 3
            )
        )
    s.table(["install", "command", "ms, median [min-max]", "ratio to `python -c pass`"], rows)
    s.lines += [
        "Packages imported beyond a bare interpreter (`python -X importtime`, self time summed per top-level "
        "package, project and third-party packages first):",
        "",
    ]
    for variant, tops in result.imports.items():
        third = [f"{k} ({v / 1000:.1f} ms)" for k, v in tops.items() if measure.is_third_party(k)]
        std = [f"{k} ({v / 1000:.1f})" for k, v in tops.items() if not measure.is_third_party(k)]
        s.lines.append(
            f"- `{variant}`: {', '.join(third) or 'none'}; standard library: {', '.join(std) or 'none'}"
        )
    s.lines += [
        "",
        f"The console script pip generated ({rel(TOOL)}) imports only: `{result.console_script.replace(chr(10), '; ')}`"
        " (no importlib.metadata / pkg_resources entry-point lookup).",
        "",
    ]
    for variant, banned in (
        ("-help", scenarios.FORBIDDEN_FOR_HELP),
        ("-compile-only", scenarios.FORBIDDEN_FOR_COMPILE),
    ):
        found = result.forbidden(variant)
        s.budgets.append(
            Budget(
                f"`{variant}` imports none of {', '.join(banned)}",
                "none",
                ", ".join(found) or "none",
                not found,
            )
        )
    plain = "importlib.metadata" not in result.console_script and "pkg_resources" not in result.console_script
    s.budgets.append(
        Budget("console script is a plain import", "plain", "plain" if plain else "entry-point lookup", plain)
    )
    return s


def run_e2e(tmp: Path, server: GitServer, reps: int, install: measure.Install) -> Section:
    s = Section("2. End to end without a pull request")
    before = pressure()
    result = scenarios.end_to_end(tmp, server, reps, install)
    tool, script = result.samples["update-gitops-repo"], result.samples["shell script (sed + git)"]
    r = measure.ratio(tool, script)
    s.lines += [
        f"A Tekton-like checkout of fixtures/hello-world (detached, shallow), origin on the smart-HTTP test server "
        f"(tests/gitserver.py, token checked), the token in `GITHUB_TOKEN` and sent by git as an `http.extraHeader` "
        f"through the environment. Render, commit on `update-to-commit-<rev>`, push. The tool ({install.name}): "
        f"`update-gitops-repo {shlex.join(scenarios.tool_argv(scenarios.REV, '-create-pull-request=false'))}`; "
        f"the baseline: `sh bench/baseline.sh` (sed + git add/commit/push). Each round makes two fresh "
        f"repositories and checkouts (not timed), then times both, in a shuffled order; {reps} rounds after "
        f"1 warm-up. Both pushed the same tree in every round: **{'yes' if result.same_tree else 'NO'}**. "
        f"Machine while measuring: {before} → {pressure()}.",
        "",
    ]
    s.table(
        ["variant", "ms, median [min-max]", "ratio of the medians", "median of the rounds' ratios"],
        [
            [
                name,
                smp.ms(),
                f"{measure.ratio(smp, script):.2f}x",
                f"{measure.paired_ratio(smp, script):.2f}x",
            ]
            for name, smp in result.samples.items()
        ],
    )
    s.budgets.append(
        Budget(
            "render + commit + push against the shell script (ratio of the medians)",
            "≤ 1.5x",
            f"{r:.2f}x",
            r <= 1.5,
        )
    )
    s.budgets.append(
        Budget(
            "the script does the same job (same pushed tree)", "same", str(result.same_tree), result.same_tree
        )
    )
    return s


def run_api(tmp: Path, server: GitServer) -> Section:
    s = Section("3. End to end with a pull request: API requests per run")
    runs = scenarios.api_requests(tmp, server)
    s.lines += [
        "The same checkout and server, the pull request on the fake GitHub API (tests/fakes/github.py, "
        "PyGithub against it for real): `-api-endpoint=<fake>/api/v3 -scm-provider=github`, token in "
        "`GITHUB_TOKEN`. Requests counted on the fake's log.",
        "",
    ]
    s.table(
        ["run", "API requests", "which", "wall ms"],
        [
            [
                r.case,
                str(len(r.requests)),
                "<br>".join(f"`{q}`" for q in r.requests) or "-",
                f"{r.seconds * 1e3:.0f}",
            ]
            for r in runs
        ],
    )
    for r in runs:
        if r.case in scenarios.API_BUDGETS:
            limit = scenarios.API_BUDGETS[r.case]
            s.budgets.append(
                Budget(
                    f"API requests: {r.case}", f"≤ {limit}", str(len(r.requests)), len(r.requests) <= limit
                )
            )
    return s


def run_scale(
    tmp: Path, sizes: list[int], reps: dict[int, int], profile: bool, install: measure.Install
) -> tuple[Section, list[str]]:
    s = Section("4. Scale: a generated monorepo")
    s.lines += [
        "bench/monorepo.py writes N services under apps/team-XXX/svc-YY/, each with deployment.yaml.tmpl, its "
        "committed output from an earlier run, and eight other manifests: N templates among 10·N files, "
        "committed on main, origin a bare clone over file://, HEAD detached (setup, not timed). Each run passes "
        "a new digest, so every output changes (the worst case), and commits on a new branch: "
        "`-git-revision=<i> -substitute=imageDigest=<new> -substitute=revision=<i> -create-pull-request=false`. "
        "Runs go through bench/timed_run.py, which calls `updater.cli.main` as the console script's `console()` does and "
        "wraps (never replaces) the phase functions to time them; peak RSS from getrusage (the tool's process, "
        "and its largest git child). *Render + commit* = the whole run minus the push (which includes checking the new branch out: it runs while origin receives the push, two git processes and a rename).",
        "",
    ]
    results = []
    profile_lines: list[str] = []
    for size in sizes:
        before = pressure()
        prof = tmp / f"profile-{size}.out" if profile and size == 10000 else None
        result = scenarios.scale(tmp, size, reps[size], profile=prof, install=install)
        results.append((result, before, pressure()))
        if prof is not None:
            profile_lines = profile_summary(prof)
    rows = []
    for r, before, after in results:
        rows.append(
            [
                f"{r.templates:,}",
                f"{r.files:,}",
                str(len(r.runs)),
                *(f"{r.phase(p):.2f}" for p in ("find", "render", "write", "commit", "push")),
                f"**{r.median('without_push'):.2f}**",
                f"{r.median('wall'):.2f}",
                f"{r.median('without_push') / r.templates * 1e6:.0f}",
                f"{r.median('wall') / r.templates * 1e6:.0f}",
                f"{max(x.maxrss_mib for x in r.runs):.0f} / {max(x.child_maxrss_mib for x in r.runs):.0f}",
                f"{r.setup_seconds:.0f}",
                f"{before} → {after}",
            ]
        )
    s.table(
        [
            "templates",
            "files",
            "runs",
            "find s",
            "render s",
            "write s",
            "commit s",
            "push s",
            "render + commit s",
            "whole run s",
            "µs/template (render + commit)",
            "µs/template (whole)",
            "peak RSS MiB (tool / git)",
            "setup s",
            "machine",
        ],
        rows,
    )
    by_size = {r.templates: r for r, _, _ in results}
    if 10000 in by_size:
        r = by_size[10000]
        t = r.median("without_push")
        s.budgets.append(Budget("10,000 templates: render + commit", "≤ 5 s", f"{t:.2f} s", t <= 5))
        peak = max(max(x.maxrss_mib, x.child_maxrss_mib) for x in r.runs)
        s.budgets.append(
            Budget("10,000 templates: peak memory (tool and git)", "< 150 MiB", f"{peak:.0f} MiB", peak < 150)
        )
    if len(by_size) >= 2:
        small, large = by_size[min(by_size)], by_size[max(by_size)]
        per_small = small.median("without_push") / small.templates
        per_large = large.median("without_push") / large.templates
        growth = per_large / per_small
        s.budgets.append(
            Budget(
                f"linear: time per template at {large.templates:,} against {small.templates:,}",
                "≤ 1.5x",
                f"{growth:.2f}x",
                growth <= 1.5,
            )
        )
    return s, profile_lines


def profile_summary(path: Path, top: int = 20) -> list[str]:
    stats = pstats.Stats(str(path))
    total = stats.total_tt  # type: ignore[attr-defined]
    entries = []
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        entries.append(
            (
                ct,
                tt,
                nc,
                f"{rel(filename) if filename.startswith(str(ROOT)) else Path(filename).name}:{line}({func})",
            )
        )
    entries.sort(reverse=True)
    lines = [
        f"cProfile of one extra 10,000-template run (not counted above; {total:.2f} s under the profiler), "
        f"top {top} by cumulative time. Time in `poll` is waiting for git.",
        "",
        "| cumulative s | own s | calls | function |",
        "|---|---|---|---|",
    ]
    for ct, tt, nc, name in entries[:top]:
        lines.append(f"| {ct:.2f} | {tt:.2f} | {nc} | `{name}` |")
    return [*lines, ""]


# -- the report ---------------------------------------------------------------------------------------


def report(
    sections: list[Section], command: str, started: datetime.datetime, profile_lines: list[str]
) -> str:
    info = measure.machine()
    info["code measured"] = code_version()
    out = [
        "# Benchmarks",
        "",
        f"Generated by `{command}` on {started:%Y-%m-%d %H:%M} UTC; do not edit by hand, rerun it. "
        "Every timing figure is a median of interleaved repetitions, and the budgets compare ratios against a "
        "baseline measured in the same run, because these machines are shared and noisy: the *machine* notes "
        "give the load and CPU pressure (share of time some task waited for a CPU) around each measurement.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in info.items()),
        "",
        "## Budgets",
        "",
        "| section | budget | limit | measured | |",
        "|---|---|---|---|---|",
    ]
    for sec in sections:
        for b in sec.budgets:
            out.append(
                f"| {sec.title.split('.')[0]} | {b.what} | {b.limit} | {b.figure} | {'ok' if b.ok else '**MISSED**'} |"
            )
    out.append("")
    for sec in sections:
        out += [f"## {sec.title}", "", *sec.lines]
    if profile_lines:
        out += ["## Where the time goes", "", *profile_lines]
    history = Path(__file__).with_name("history.md")
    if history.exists():
        out += [history.read_text().rstrip("\n"), ""]
    out += [
        "## Commands",
        "",
        "```",
        ".venv/bin/python bench/run.py                     # all sections, writes docs/benchmarks.md",
        ".venv/bin/python bench/run.py --quick             # fewer repetitions, scale up to 10,000",
        ".venv/bin/python bench/run.py --only scale --sizes 10000 --no-write",
        ".venv/bin/pytest -q tests/test_bench_budgets.py   # the fast smoke version in the normal suite",
        "```",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer repetitions; scale sizes 1,000 and 10,000"
    )
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}"
    )
    parser.add_argument("--sizes", default="", help="scale sizes (templates), e.g. 1000,10000,50000")
    parser.add_argument(
        "--reps", type=int, default=0, help="repetitions for startup and e2e (default 30 / 30)"
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile run of the 10,000 scale")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--no-write", action="store_true", help="print the report instead of writing it")
    args = parser.parse_args(argv)
    only = [x for x in args.only.split(",") if x]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    sizes = [int(x) for x in args.sizes.split(",") if x] or (
        [1000, 10000] if args.quick else [1000, 10000, 50000]
    )
    scale_reps = {
        n: (3 if n <= 1000 else 1) if args.quick else (5 if n <= 1000 else 3 if n <= 10000 else 1)
        for n in sizes
    }
    started = datetime.datetime.now(datetime.UTC)
    command = "python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    sections: list[Section] = []
    profile_lines: list[str] = []
    with (
        # A push to origin can leave `git gc --auto` running detached in it (receive.autogc): its files
        # may still appear while the directory is removed, which must not lose the report.
        tempfile.TemporaryDirectory(
            prefix="update-gitops-repo-bench.", ignore_cleanup_errors=True
        ) as tmp_name,
        GitServer(Path(tmp_name) / "server") as server,
    ):
        tmp = Path(tmp_name)
        regular = measure.regular_install(tmp / "regular-install")
        if "startup" in only:
            print("== startup", file=sys.stderr, flush=True)
            sections.append(run_startup(tmp, args.reps or (10 if args.quick else 30), regular))
        if "e2e" in only:
            print("== end to end", file=sys.stderr, flush=True)
            sections.append(run_e2e(tmp, server, args.reps or (5 if args.quick else 30), regular))
        if "api" in only:
            print("== API requests", file=sys.stderr, flush=True)
            sections.append(run_api(tmp, server))
        if "scale" in only:
            print(f"== scale {sizes}", file=sys.stderr, flush=True)
            section, profile_lines = run_scale(tmp, sizes, scale_reps, not args.no_profile, regular)
            sections.append(section)
    text = report(sections, command.strip(), started, profile_lines)
    if args.no_write:
        print(text)
    else:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    missed = [
        f"{sec.title.split('.')[0]}: {b.what} ({b.figure}, budget {b.limit})"
        for sec in sections
        for b in sec.budgets
        if not b.ok
    ]
    for line in missed:
        print(f"MISSED {line}", file=sys.stderr)
    if not missed:
        print("all budgets met", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
