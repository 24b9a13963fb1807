"""The engine benchmark's markdown report: measurements, ratios against the targets, environment."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable

from bench._harness import (
    Rounds,
    blas_description,
    command_line,
    load_average,
    machine_description,
    markdown_table,
    median,
    spread,
    verdict,
)

FLOOR_TARGETS = {128: 1.2, 32: 1.4}
HAND_WRITTEN_TARGET = 1.0  # "the product, with its diagnostics and callbacks, must beat that"
TORCH_TARGETS = {128: 1.5, 32: 1.7}
SKLEARN_TARGETS = {"float32": 2.0, "float64": 3.0}
DIGITS_TARGET = 4.0


def logger() -> Callable[[str], None]:
    """Progress goes to stderr so stdout carries only the report."""
    return lambda message: print(message, file=sys.stderr, flush=True)


def render(args: argparse.Namespace, headline: Rounds, regression: Rounds, digits: Rounds,
           memory: Rounds) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"# Engine benchmark ({stamp})", "", f"Command: `{command_line()}`", "",
             *machine_description(), _blas_lines(headline), "",
             f"## Targets ({args.threads} BLAS threads, {args.repetitions} interleaved rounds)", "",
             _targets_table(args, headline, digits), "",
             f"## MNIST-shaped epoch, {args.threads} threads", "", _epoch_table(args, headline)]
    if regression.results:
        parts += ["", f"## Regression comparison, {args.regression_threads} thread(s)", "",
                  _epoch_table(args, regression), "", _regression_ratios(args, regression)]
    if digits.results:
        parts += ["", f"## UCI digits, 64-64-10 tanh, batch 32, {args.digits_epochs} epochs", "",
                  _digits_table(args, digits)]
    if memory.results:
        parts += ["", "## Peak memory while training (one run each)", "", _memory_table(memory)]
    parts += ["", f"Load average when the run ended: {load_average()}.", "", _NOTES]
    return "\n".join(parts) + "\n"


def _blas_lines(rounds: Rounds) -> str:
    for label, results in rounds.results.items():
        if label.startswith("ours@") and results:
            return "- BLAS pools seen in a child (threadpoolctl):\n" + blas_description(
                results[0]["threadpool"])
    return ""


def _targets_table(args: argparse.Namespace, headline: Rounds, digits: Rounds) -> str:
    rows = []
    for batch in args.batches:
        ours = f"ours@{batch}"
        if ours not in headline.results:
            continue
        floor = headline.values(ours, "floor_ratio")
        rows.append(_target_row(f"epoch ÷ GEMM floor, batch {batch}", floor,
                                FLOOR_TARGETS.get(batch), at_least=False))
        for other, name, target in _oracles(batch):
            if other in headline.results:
                ratios = headline.paired_ratios(ours, other, "samples_per_second")
                rows.append(_target_row(f"samples/s ÷ {name}, batch {batch}", ratios, target,
                                        at_least=True))
    if "torch-digits" in digits.results:
        ratios = digits.paired_ratios("ours-digits", "torch-digits", "samples_per_second")
        rows.append(_target_row("digits samples/s ÷ PyTorch", ratios, DIGITS_TARGET, at_least=True))
    return markdown_table(["figure", "measured: median [min–max]", "target", "verdict"], rows)


def _oracles(batch: int) -> list[tuple[str, str, float | None]]:
    return [
        (f"numpy@{batch}", "hand-written NumPy", HAND_WRITTEN_TARGET),
        (f"torch@{batch}", "PyTorch", TORCH_TARGETS.get(batch)),
        (f"sklearn-float32@{batch}", "sklearn float32", SKLEARN_TARGETS["float32"]),
        (f"sklearn-float64@{batch}", "sklearn float64", SKLEARN_TARGETS["float64"]),
    ]


def _target_row(figure: str, values: list[float], target: float | None, *, at_least: bool) -> list:
    if target is None:
        return [figure, spread(values), "—", "—"]
    sign = "≥" if at_least else "≤"
    return [figure, spread(values), f"{sign} {target}×",
            verdict(median(values), target, at_least=at_least)]


def _epoch_table(args: argparse.Namespace, rounds: Rounds) -> str:
    rows = []
    for label in rounds.results:
        floor = rounds.values(label, "floor_seconds")
        rows.append([label, spread(rounds.values(label, "seconds")),
                     spread(rounds.values(label, "samples_per_second")),
                     spread(rounds.values(label, "accuracy")),
                     spread(floor) if floor else "",
                     spread(rounds.values(label, "floor_ratio")) if floor else ""])
    headers = ["implementation@batch", "epoch s", "samples/s", "test accuracy", "GEMM floor s",
               "÷ floor"]
    return markdown_table(headers, rows)


def _regression_ratios(args: argparse.Namespace, rounds: Rounds) -> str:
    rows = []
    for batch in args.batches:
        for other, name in ((f"numpy@{batch}", "hand-written NumPy"),
                            (f"torch@{batch}", "PyTorch")):
            if other in rounds.results:
                ratios = rounds.paired_ratios(f"ours@{batch}", other, "samples_per_second")
                rows.append([f"samples/s ÷ {name}, batch {batch}", spread(ratios)])
    return markdown_table(["figure", "median [min–max]"], rows) if rows else ""


def _digits_table(args: argparse.Namespace, rounds: Rounds) -> str:
    rows = [[label, spread(rounds.values(label, "seconds")),
             spread(rounds.values(label, "samples_per_second")),
             spread(rounds.values(label, "microseconds_per_step")),
             spread(rounds.values(label, "accuracy"))] for label in rounds.results]
    return markdown_table(["implementation", f"{args.digits_epochs}-epoch run s", "samples/s",
                           "µs per step",
                           "test accuracy"], rows)


def _memory_table(rounds: Rounds) -> str:
    rows = []
    for label, results in rounds.results.items():
        result = results[0]
        rows.append([label, f"{result['dataset_mb']:.1f}", f"{result['peak_rss_before_mb']:.1f}",
                     f"{result['peak_rss_mb']:.1f}", f"{result['rss_growth_mb']:.1f}",
                     f"{result['traced_peak_mb']:.1f}"])
    headers = ["run (epochs, standardize)", "dataset MB", "peak RSS before train() MB",
               "peak RSS after MB", "growth MB", "tracemalloc peak in train() MB"]
    return markdown_table(headers, rows)


_NOTES = """## How to read this

- Each cell is the median [min–max] over the rounds; every measurement ran in a fresh subprocess
  with OPENBLAS/OMP/MKL_NUM_THREADS fixed (and torch.set_num_threads equal), implementations
  interleaved (the starting one rotates each round). Ratios are paired per round.
- Our epoch time is epoch 2 of a two-epoch train() with diagnostics every epoch (the time between
  the two epoch callbacks: shuffling, gathering, forward/backward, SGD updates, diagnostics,
  metrics, checkpoint). PyTorch and scikit-learn run one untimed epoch first. Test accuracy is on
  held-out rows of the same synthetic distribution after those two passes.
- The GEMM floor times only the epoch's matrix products (forward X·Wᵀ, backward δᵀ·X and δ·W per
  layer, without layer 1's input gradient) with NumPy in the same process, on the trained weights.
- The hand-written NumPy MLP (`bench/_numpy_mlp.py`) is the bar the issue names: the same
  arithmetic written carefully in NumPy (float32, preallocated buffers, in-place passes, a gather
  into a reused buffer, matmul then subtract for the update), with no diagnostics, metrics or
  checks; it skips the partial last batch, so its samples/s counts full batches. Its GEMM floor is
  timed on its own weights the same way.
- PyTorch runs an idiomatic nn.Sequential + optim.SGD loop (randperm + tensor indexing per batch);
  scikit-learn runs MLPClassifier(solver="sgd", alpha=0, momentum=0), one partial_fit per epoch.
- Digits: our time is the whole train() call (set-up, 20 epochs, diagnostics, checkpoints).
- Memory: growth of the peak RSS during train() beyond the dataset already in memory; a per-epoch
  copy of the dataset, or a standardised copy, would add the dataset's size.
- Figures from different machines or BLAS builds are not comparable (OpenBLAS's kernel choice
  alone changes float32 GEMM speed by 2×)."""
