"""Engine benchmark: `.venv/bin/python bench/engine.py` (add --help for the options).

Measures, side by side in one run, the figures of the engine issue: one epoch of MNIST-shaped
data (60,000 × 784 float32, 784-256-128-10 ReLU, softmax cross-entropy, plain SGD, diagnostics on)
against the GEMM floor, a careful hand-written NumPy MLP, PyTorch CPU and scikit-learn; the UCI
digits against PyTorch; peak memory against the dataset size. Prints a markdown report and
writes it to bench/results/<name>.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the repository, not this folder
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import _engine_report as report  # noqa: E402
from bench._harness import (  # noqa: E402
    ROOT,
    Rounds,
    Trial,
    exit_on_sigterm,
    run_interleaved,
    write_raw,
    write_results,
)

MNIST_LEARNING_RATE = 0.05
DIGITS_LEARNING_RATE = 0.05
MNIST_SAMPLES, MNIST_TEST = 60_000, 10_000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5, help="interleaved rounds (5–7)")
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads, headline figures")
    parser.add_argument("--regression-threads", type=int, default=1,
                        help="BLAS threads of the regression comparison (0 = skip it)")
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 32])
    parser.add_argument("--samples", type=int, default=MNIST_SAMPLES)
    parser.add_argument("--test-samples", type=int, default=MNIST_TEST)
    parser.add_argument("--digits-epochs", type=int, default=20)
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["torch", "sklearn", "digits", "memory"])
    parser.add_argument("--name", default="engine", help="results file name (without .md)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args(argv)


def available(module: str, args: argparse.Namespace, key: str) -> bool:
    """An oracle runs when it is installed and not skipped (both are optional dependencies)."""
    return key not in args.skip and importlib.util.find_spec(module) is not None


def mnist_trials(args: argparse.Namespace, threads: int, *, oracles: bool) -> list[Trial]:
    trials = []
    for batch in args.batches:
        common = {"n_samples": args.samples, "n_test": args.test_samples, "batch_size": batch,
                  "learning_rate": MNIST_LEARNING_RATE}
        trials.append(Trial(f"ours@{batch}", "ours_epoch", common, threads))
        trials.append(Trial(f"numpy@{batch}", "numpy_epoch", common, threads))
        if available("torch", args, "torch"):
            trials.append(Trial(f"torch@{batch}", "torch_epoch", {**common, "threads": threads},
                                threads))
        if oracles and available("sklearn", args, "sklearn"):
            for dtype in ("float32", "float64"):
                trials.append(Trial(f"sklearn-{dtype}@{batch}", "sklearn_epoch",
                                    {**common, "dtype": dtype}, threads))
    return trials


def digits_trials(args: argparse.Namespace) -> list[Trial]:
    common = {"epochs": args.digits_epochs, "batch_size": 32, "learning_rate": DIGITS_LEARNING_RATE}
    trials = [Trial("ours-digits", "ours_digits", common, args.threads)]
    if available("torch", args, "torch"):
        trials.append(Trial("torch-digits", "torch_digits", {**common, "threads": args.threads},
                            args.threads))
    return trials


def memory_trials(args: argparse.Namespace) -> list[Trial]:
    batch = args.batches[0]
    return [
        Trial(f"memory-e{epochs}-std{int(standardize)}", "ours_memory",
              {"n_samples": args.samples, "batch_size": batch, "epochs": epochs,
               "standardize": standardize}, args.threads)
        for standardize in (False, True) for epochs in (1, 3)
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    log = report.logger()
    log(f"engine benchmark: {args.repetitions} rounds, {args.threads} threads")
    headline = run_interleaved(mnist_trials(args, args.threads, oracles=True), args.repetitions,
                               log)
    regression = Rounds()
    if args.regression_threads:
        log(f"regression comparison at {args.regression_threads} thread(s)")
        trials = mnist_trials(args, args.regression_threads, oracles=False)
        regression = run_interleaved(trials, args.repetitions, log)
    digits = Rounds()
    if "digits" not in args.skip:
        log("UCI digits")
        digits = run_interleaved(digits_trials(args), args.repetitions, log)
    memory = Rounds() if "memory" in args.skip else run_interleaved(memory_trials(args), 1, log)
    raw = {"headline": headline.results, "regression": regression.results,
           "digits": digits.results, "memory": memory.results}
    write_raw(args.out_dir, args.name, raw)
    markdown = report.render(args, headline, regression, digits, memory)
    print(markdown)
    path = write_results(args.out_dir, args.name, markdown)
    log(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
