"""The benchmark protocol: fresh subprocesses, fixed BLAS threads, interleaving, median [min–max].

Every measurement runs in a new `python -m bench._child` process with OPENBLAS/OMP/MKL thread
counts fixed in its environment (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are never touched: they
would change the GEMM kernel and so every figure). A child prints one `BENCH_RESULT {json}` line;
the parent interleaves the implementations within each repetition so that slow drifts of a shared
machine hit all of them alike.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULT_MARKER = "BENCH_RESULT "
_LOAD_AT_START = os.getloadavg()  # the parent imports this module when a run starts
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


class BenchError(RuntimeError):
    """A child measurement failed; carries the tail of its stderr."""


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so a running child is killed and servers are stopped too."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def child_environment(threads: int) -> dict[str, str]:
    """The parent's environment with every BLAS/OpenMP pool pinned to `threads`."""
    env = dict(os.environ)
    for name in THREAD_VARIABLES:
        env[name] = str(threads)
    env["PYTHONHASHSEED"] = "0"
    env["BENCH_THREADS"] = str(threads)  # read by torch tasks for torch.set_num_threads
    return env


def run_child(task: str, params: dict[str, Any], *, threads: int, timeout: float = 900.0) -> dict:
    """Run one registered task in a fresh interpreter and return its JSON result."""
    command = [sys.executable, "-m", "bench._child", task, json.dumps(params)]
    completed = subprocess.run(  # noqa: S603 - fixed interpreter and module, JSON argument
        command, cwd=ROOT, env=child_environment(threads), capture_output=True, text=True,
        timeout=timeout, check=False,
    )
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER):])
    tail = "\n".join(completed.stderr.splitlines()[-25:])
    raise BenchError(f"{task} {params} exited {completed.returncode}:\n{tail}")


@dataclass(frozen=True)
class Trial:
    """One implementation in an interleaved round: a label, a child task, its parameters."""

    label: str
    task: str
    params: dict[str, Any]
    threads: int


@dataclass
class Rounds:
    """Results per label, in repetition order (index r is repetition r for every label)."""

    results: dict[str, list[dict]] = field(default_factory=dict)

    def values(self, label: str, key: str) -> list[float]:
        """`key` of every repetition of `label`; empty when the label or the key is absent."""
        return [float(result[key]) for result in self.results.get(label, []) if key in result]

    def paired_ratios(self, numerator: str, denominator: str, key: str) -> list[float]:
        """Per-repetition ratio numerator/denominator of `key`: neighbours in time, paired."""
        pairs = zip(self.results[numerator], self.results[denominator], strict=False)
        return [float(a[key]) / float(b[key]) for a, b in pairs]


def run_interleaved(
    trials: Sequence[Trial], repetitions: int, log: Callable[[str], None] = print
) -> Rounds:
    """Each repetition runs every trial once; the starting trial rotates between repetitions."""
    rounds = Rounds()
    for repetition in range(repetitions):
        shift = repetition % max(len(trials), 1)
        for trial in [*trials[shift:], *trials[:shift]]:
            started = time.perf_counter()
            result = run_child(trial.task, trial.params, threads=trial.threads)
            rounds.results.setdefault(trial.label, []).append(result)
            took = time.perf_counter() - started
            log(f"  [{repetition + 1}/{repetitions}] {trial.label}: done in {took:.1f} s")
    return rounds


# --- statistics and formatting ----------------------------------------------------------------


def spread(values: Sequence[float], digits: int = 3) -> str:
    """'median [min–max]' with `digits` significant digits; '—' for no values."""
    if not values:
        return "—"
    median = statistics.median(values)
    return f"{_fmt(median, digits)} [{_fmt(min(values), digits)}–{_fmt(max(values), digits)}]"


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def _fmt(value: float, digits: int) -> str:
    if value != value:  # NaN
        return "nan"
    if abs(value) >= 10 ** digits:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(measured: float, target: float, *, at_least: bool) -> str:
    met = measured >= target if at_least else measured <= target
    return "met" if met else "**missed**"


# --- environment --------------------------------------------------------------------------------


def machine_description() -> list[str]:
    """Lines describing the machine, the interpreter and the load when the run started."""
    return [
        f"- CPU: {_cpu_model()} ({os.cpu_count()} logical cores); load average "
        f"{load_average(_LOAD_AT_START)} when the run started (other processes on a shared "
        "machine skew every figure)",
        f"- Python {platform.python_version()} on {platform.system()} {platform.release()}",
        f"- Code: {_code_version()}",
    ]


def _code_version() -> str:
    """The commit measured, and whether engine/ or service/ differed from it (a shared tree)."""
    def git(*arguments: str) -> str:
        completed = subprocess.run(  # noqa: S603 - fixed git arguments
            ["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=False  # noqa: S607
        )
        return completed.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "engine", "service")
    return f"commit {commit}" + (" plus uncommitted changes in engine/ or service/" if dirty else
                                 ", engine/ and service/ clean")


def load_average(values: tuple[float, float, float] | None = None) -> str:
    """The 1, 5 and 15-minute load averages, now or as given."""
    return ", ".join(f"{value:.2f}" for value in (values or os.getloadavg()))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def blas_description(threadpool: list[dict]) -> str:
    """One line per pool from threadpoolctl.threadpool_info(), as recorded inside a child."""
    lines = []
    for pool in threadpool:
        arch = pool.get("architecture") or ""
        lines.append(
            f"  - {pool.get('internal_api')} {pool.get('version') or ''} {arch} "
            f"threads={pool.get('num_threads')} ({Path(pool.get('filepath', '')).name})"
        )
    return "\n".join(lines)


def write_results(out_dir: Path, name: str, markdown: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.md"
    path.write_text(markdown if markdown.endswith("\n") else markdown + "\n", encoding="utf-8")
    return path


def write_raw(out_dir: Path, name: str, data: object) -> Path:
    """Every child's result as JSON next to the report, for a second look without re-running."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")
    return path


def command_line() -> str:
    """The command that reproduces this run, paths relative to the repository root."""
    return " ".join([_relative(Path(sys.executable)), _relative(Path(sys.argv[0])), *sys.argv[1:]])


def _relative(path: Path) -> str:
    try:
        return str(path.absolute().relative_to(ROOT))
    except ValueError:
        return str(path)
