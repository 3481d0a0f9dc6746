"""The four measured scenarios. bench/run.py reports them; tests/test_bench_budgets.py runs small ones.

Each function does its own (untimed) setup under `tmp` and returns plain data.
"""

from __future__ import annotations

import json
import shlex
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import measure, monorepo
from bench.measure import TOOL, Install, Samples
from tests.fakes.github import FakeGitHub
from tests.gitserver import DEFAULT_TOKEN, GitServer, clone, copy_fixture, make_home

BENCH = Path(__file__).resolve().parent
IMAGE = (
    "your-dockerhub-user/hello-world@sha256:e34351c0bbe7658da1441a80398d230481b6465fb375739941f1a144e340c567"
)
REV = "1b39bd0a4cf0b0dd1f1e2f32cbe0c7d1e2d3f4a5"
FORBIDDEN_FOR_HELP = (*measure.SDKS, measure.JINJA)
FORBIDDEN_FOR_COMPILE = measure.SDKS


# -- 1. startup ---------------------------------------------------------------------------------------


@dataclass
class Startup:
    samples: dict[str, dict[str, Samples]]  # install name → command → samples
    imports: dict[str, dict[str, int]]  # variant → top-level package → self µs (beyond a bare interpreter)
    console_script: str  # the import line(s) of pip's generated script

    def forbidden(self, variant: str) -> list[str]:
        banned = FORBIDDEN_FOR_HELP if variant == "-help" else FORBIDDEN_FOR_COMPILE
        return [name for name in banned if name in self.imports[variant]]


def compile_only_argv() -> list[str]:
    return ["-compile-only", "-git-ignore", f"-substitute=imageName={IMAGE}"]


def startup(tmp: Path, reps: int, installs: Sequence[Install] = (measure.EDITABLE,)) -> Startup:
    """Each install's bare interpreter, -help and -compile-only, all interleaved in the same rounds."""
    hello = copy_fixture("hello-world", tmp / "startup-hello")
    env = make_home(tmp / "startup")
    variants: dict[str, Callable[[int], float]] = {}
    for inst in installs:
        py, tool = inst.python, inst.tool
        variants[f"{inst.name}\0python -c pass"] = lambda _, py=py: measure.run_timed(
            [py, "-c", "pass"], env=env
        )
        variants[f"{inst.name}\0-help"] = lambda _, tool=tool: measure.run_timed([tool, "-help"], env=env)
        variants[f"{inst.name}\0-compile-only"] = lambda _, tool=tool: measure.run_timed(
            [tool, *compile_only_argv()], cwd=hello, env=env
        )
    flat = measure.interleave(variants, reps, warmup=2)
    samples: dict[str, dict[str, Samples]] = {}
    for key, smp in flat.items():
        name, command = key.split("\0")
        samples.setdefault(name, {})[command] = smp
    inst = installs[-1]
    bare = {m.module for m in measure.importtime(["-c", "pass"], env=env, python=inst.python)}
    imports = {
        "-help": measure.top_level(
            measure.importtime([inst.tool, "-help"], env=env, python=inst.python), exclude=bare
        ),
        "-compile-only": measure.top_level(
            measure.importtime([inst.tool, *compile_only_argv()], cwd=hello, env=env, python=inst.python),
            exclude=bare,
        ),
    }
    script = Path(TOOL).read_text()
    imports_line = "\n".join(ln for ln in script.splitlines() if ln.startswith(("import ", "from ")))
    return Startup(samples, imports, imports_line)


# -- 2. end to end without a pull request --------------------------------------------------------------


@dataclass
class EndToEnd:
    samples: dict[str, Samples]
    same_tree: bool  # the tool and the script pushed identical trees every round


def tool_argv(rev: str = REV, *extra: str) -> list[str]:
    return [f"-git-revision={rev}", f"-substitute=imageName={IMAGE}", *extra]


def end_to_end(tmp: Path, server: GitServer, reps: int, install: Install = measure.EDITABLE) -> EndToEnd:
    home = make_home(tmp / "e2e-home")
    env = {**home, "GITHUB_TOKEN": DEFAULT_TOKEN}
    args = tool_argv(REV, "-create-pull-request=false")
    script_env = {**env, "REV": REV, "IMAGE": IMAGE, "HEADER_ARGV": shlex.join([install.tool, *args])}
    trees: dict[tuple[str, int], str] = {}

    def variant(name: str, argv: list[str], run_env: dict[str, str]) -> Callable[[int], float]:
        def one(round_no: int) -> float:
            repo = f"bench/e2e-{name}-{round_no + 10}.git"
            url = server.create_repo(repo, copy_fixture("hello-world", tmp / f"seed-{name}-{round_no + 10}"))
            checkout = clone(
                url, tmp / f"e2e-{name}-{round_no + 10}", token=DEFAULT_TOKEN, detached=True, env=home
            )
            seconds = measure.run_timed(argv, cwd=checkout, env=run_env)
            trees[(name, round_no)] = server.git(repo, "rev-parse", f"update-to-commit-{REV}^{{tree}}")
            return seconds

        return one

    samples = measure.interleave(
        {
            "update-gitops-repo": variant("tool", [install.tool, *args], env),
            "shell script (sed + git)": variant("script", ["sh", str(BENCH / "baseline.sh")], script_env),
        },
        reps,
        warmup=1,
    )
    rounds = {r for _, r in trees}
    same = all(trees[("tool", r)] == trees[("script", r)] for r in rounds)
    return EndToEnd(samples, same)


# -- 3. API requests per run with a pull request -------------------------------------------------------


@dataclass
class ApiRun:
    case: str
    requests: list[str]  # "METHOD /path"
    seconds: float
    stdout: str


def api_requests(tmp: Path, server: GitServer) -> list[ApiRun]:
    repo = "acme/bench-gitops.git"
    url = server.create_repo(repo, copy_fixture("hello-world", tmp / "api-seed"))
    runs: list[ApiRun] = []
    with FakeGitHub() as gh:
        gh.add_token(DEFAULT_TOKEN)
        gh.add_repo("acme/bench-gitops", default_branch="main", git_dir=server.repo_dir(repo))
        env = {**make_home(tmp / "api-home"), "GITHUB_TOKEN": DEFAULT_TOKEN}
        api = [f"-api-endpoint={gh.api_url}", "-scm-provider=github"]

        def run(case: str, checkout: Path, args: list[str]) -> None:
            before = len(gh.requests)
            start = time.perf_counter()
            done = subprocess.run(
                [TOOL, *args], cwd=checkout, env=env, capture_output=True, text=True, check=False
            )
            seconds = time.perf_counter() - start
            if done.returncode != 0:
                raise RuntimeError(f"{case}: exit {done.returncode}: {done.stderr}")
            made = [f"{e.method} {e.path}" + (f"?{e.query}" if e.query else "") for e in gh.requests[before:]]
            runs.append(ApiRun(case, made, seconds, done.stdout.strip()))

        def fresh(name: str) -> Path:
            return clone(url, tmp / f"api-{name}", token=DEFAULT_TOKEN, detached=True)

        first = fresh("first")
        run("create, -base-branch given", first, [*tool_argv(REV), *api, "-base-branch=main"])
        run(
            "find and reuse (a rerun on a fresh checkout)",
            fresh("again"),
            [*tool_argv(REV), *api, "-base-branch=main"],
        )
        run(
            "nothing changed (a rerun in the same checkout)",
            first,
            [*tool_argv(REV), *api, "-base-branch=main"],
        )
        run("create, base branch from git (ls-remote)", fresh("other"), [*tool_argv("2" * 40), *api])
    return runs


API_BUDGETS = {
    "create, -base-branch given": 2,
    "find and reuse (a rerun on a fresh checkout)": 1,
    "nothing changed (a rerun in the same checkout)": 0,
}


# -- 4. scale -----------------------------------------------------------------------------------------


@dataclass
class ScaleRun:
    wall: float  # the whole run, process start to exit
    phases: dict[str, float]  # find, render, write, commit, push: seconds each
    maxrss_mib: float  # the tool's own process
    child_maxrss_mib: float  # its largest git child

    @property
    def without_push(self) -> float:
        """Render + commit: the whole run minus the push."""
        return self.wall - self.phases.get("push", 0.0)


@dataclass
class Scale:
    templates: int
    files: int
    setup_seconds: float
    runs: list[ScaleRun] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs)

    def phase(self, name: str) -> float:
        return statistics.median(r.phases.get(name, 0.0) for r in self.runs)


def scale(
    tmp: Path, templates: int, reps: int, profile: Path | None = None, install: Install = measure.EDITABLE
) -> Scale:
    """Generate the repo (setup), then `reps` runs, each with a new digest: every output changes."""
    env = make_home(tmp / f"scale-home-{templates}")
    start = time.perf_counter()
    repo = monorepo.generate(tmp / f"scale-{templates}", templates, env)
    result = Scale(templates, repo.files, time.perf_counter() - start)
    # The profiled run (if any) comes last and is not counted: cProfile slows what it watches.
    for i in range(reps + (profile is not None)):
        marks_file = tmp / f"marks-{templates}-{i}.json"
        args = [
            f"-git-revision={i:040x}",
            f"-substitute=imageDigest=sha256:{i + 1:064x}",
            f"-substitute=revision={i:040x}",
            "-create-pull-request=false",
        ]
        extra = ["-profile", str(profile)] if profile is not None and i == reps else []
        seconds = measure.run_timed(
            [install.python, str(BENCH / "timed_run.py"), str(marks_file), *extra, "--", *args],
            cwd=repo.checkout,
            env=env,
        )
        data = json.loads(marks_file.read_text())
        if data["status"] != 0:
            raise RuntimeError(f"scale run {templates}/{i} exited {data['status']}")
        marks = data["marks"]
        phases = {
            name: marks[f"{name}.end"] - marks[f"{name}.start"]
            for name in ("find", "render", "write", "commit", "push")
            if f"{name}.start" in marks
        }
        if i == reps:
            break
        result.runs.append(
            ScaleRun(seconds, phases, data["maxrss_kib"] / 1024, data["child_maxrss_kib"] / 1024)
        )
    return result
