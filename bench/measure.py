"""Measuring on a noisy machine: interleaved repetitions, medians, ratios against a baseline run alongside.

Every figure the budgets look at is a ratio of two medians taken in the same run, with the variants
interleaved (A B C A B C …, in a shuffled order each round) so that a burst of load from a neighbour
hits all of them alike instead of skewing one.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PYTHON = sys.executable
TOOL = str(VENV_BIN / "update-gitops-repo")

# Packages that only some runs need; see budgets in docs/benchmarks.md.
SDKS = ("github", "gitlab", "atlassian")
JINJA = "jinja2"


@dataclass
class Samples:
    name: str
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def low(self) -> float:
        return min(self.seconds)

    @property
    def high(self) -> float:
        return max(self.seconds)

    def ms(self) -> str:
        """'median [min-max]' in milliseconds."""
        return f"{self.median * 1e3:.0f} [{self.low * 1e3:.0f}-{self.high * 1e3:.0f}]"


def run_timed(
    argv: Sequence[str], cwd: str | Path | None = None, env: Mapping[str, str] | None = None
) -> float:
    """Wall time of one process, start to exit; it must succeed."""
    start = time.perf_counter()
    done = subprocess.run(
        list(argv),
        cwd=cwd,
        env=None if env is None else dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} … exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    return elapsed


def interleave(
    variants: Mapping[str, Callable[[int], float]], reps: int, warmup: int = 1, seed: int = 7
) -> dict[str, Samples]:
    """Run every variant `reps` times, one of each per round, in a shuffled order each round.

    Each callable gets the round number and returns the seconds to record (so it can do untimed
    setup first). Warm-up rounds (page cache, .pyc files) are run the same way and dropped.
    """
    rng = random.Random(seed)
    samples = {name: Samples(name) for name in variants}
    names = list(variants)
    for round_no in range(-warmup, reps):
        rng.shuffle(names)
        for name in names:
            seconds = variants[name](round_no)
            if round_no >= 0:
                samples[name].seconds.append(seconds)
    return samples


def ratio(a: Samples, b: Samples) -> float:
    return a.median / b.median


def paired_ratio(a: Samples, b: Samples) -> float:
    """The median of a/b within each round (samples from `interleave`): a load that drifts over the
    run moves both of a round's samples, so this is steadier than the ratio of the medians."""
    return statistics.median(x / y for x, y in zip(a.seconds, b.seconds, strict=True))


@dataclass(frozen=True)
class Install:
    """An interpreter and the tool's console script in it."""

    name: str
    python: str
    tool: str


EDITABLE = Install("editable install (.venv)", PYTHON, TOOL)


def regular_install(dest: Path) -> Install:
    """A venv with the project installed the way a wheel install (and the image) has it: the packages
    copied into site-packages and byte-compiled, as pip does, and the dependencies found through a
    plain .pth path line. Not .venv's editable install: its finder is imported by every start of that
    python (~9 ms here), which would flatter a ratio against `python -c pass`, and the source tree
    has no bytecode when PYTHONDONTWRITEBYTECODE is set, which would charge every run for compiling."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(dest)], check=True)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = dest / "lib" / version / "site-packages"
    deps = Path(PYTHON).parent.parent / "lib" / version / "site-packages"
    for package in ("updater", "providers"):
        shutil.copytree(ROOT / package, site / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [base, "-m", "compileall", "-q", str(site / "updater"), str(site / "providers")], check=True
    )
    # A path line adds a directory; it does not run the .pth files inside it (the editable finder).
    (site / "update_gitops_repo.pth").write_text(f"{deps}\n")
    python = dest / "bin" / "python"
    tool = dest / "bin" / "update-gitops-repo"
    # What pip generates for the console script.
    tool.write_text(
        f"#!{python}\nimport sys\nfrom updater.cli import console\nif __name__ == '__main__':\n"
        "    sys.argv[0] = sys.argv[0].removesuffix('.exe')\n    sys.exit(console())\n"
    )
    tool.chmod(0o755)
    return Install("regular install", str(python), str(tool))


# -- python -X importtime ----------------------------------------------------------------------------

_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$")


@dataclass(frozen=True)
class Imported:
    module: str
    self_us: int
    cumulative_us: int
    depth: int  # 0 = imported directly by the program (or site), deeper = imported by another module


def parse_importtime(stderr: str) -> list[Imported]:
    found = []
    for line in stderr.splitlines():
        m = _IMPORT_LINE.match(line)
        if m:
            found.append(Imported(m[4], int(m[1]), int(m[2]), (len(m[3]) - 1) // 2))
    return found


def importtime(
    argv: Sequence[str],
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    python: str = PYTHON,
) -> list[Imported]:
    """Modules imported by `python -X importtime <argv>` (argv[0] a script or '-c')."""
    done = subprocess.run(
        [python, "-X", "importtime", *argv],
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"python -X importtime {' '.join(argv)} exited {done.returncode}: {done.stderr[-2000:]}"
        )
    return parse_importtime(done.stderr)


def top_level(modules: Sequence[Imported], exclude: Collection[str] = ()) -> dict[str, int]:
    """Top-level package → summed self time (µs) of its modules, for modules not in `exclude`."""
    totals: dict[str, int] = {}
    for item in modules:
        if item.module in exclude:
            continue
        top = item.module.split(".")[0]
        if top not in sys.modules and importlib.util.find_spec(top) is None:
            continue  # a probe that failed, e.g. copy's `from org.python.core import ...`
        totals[top] = totals.get(top, 0) + item.self_us
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def is_third_party(top: str) -> bool:
    return top not in sys.stdlib_module_names and not top.startswith("_")


# -- the machine ------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    git = subprocess.run(["git", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "nproc": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()),
        "CPU": cpu or platform.processor() or "unknown",
        "memory": mem or "unknown",
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "git": git.removeprefix("git version "),
        "load average (1/5/15 min) at start": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
