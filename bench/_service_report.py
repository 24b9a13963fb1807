"""The service benchmark's markdown report."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from bench._engine_report import logger
from bench._harness import (
    command_line,
    load_average,
    machine_description,
    markdown_table,
    median,
    spread,
    verdict,
)
from bench._service_client import percentile

__all__ = ["logger", "render"]

TRAINING_TARGET = 1.10  # service job time ÷ engine alone, at most
GET_P99_TARGET_MS = 50.0
LARGE_PREDICT_TARGET_MS = 30.0
SMALL_THROUGHPUT_TARGET = 0.5  # our predict's requests/s ÷ the bare endpoint's, at least


def render(args: argparse.Namespace, results: dict[str, Any]) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    training, get = results["training"], results["get"]
    return "\n".join([
        f"# Service benchmark ({stamp})", "", f"Command: `{command_line()}`", "",
        *machine_description(),
        f"- uvicorn subprocess on 127.0.0.1, SQLite in a temporary directory, "
        f"FEEDFORWARD_WORKERS={args.workers} (BLAS threads per worker: {training['threads']}, "
        f"niceness {training['niceness']}; the engine-alone child gets the same), "
        f"{args.repetitions} interleaved rounds", "",
        "## Targets", "", _targets(results), "",
        f"## Training: {args.samples:,} × 784, 784-256-128-10 ReLU, batch {args.batch}, "
        f"{args.epochs} epochs, diagnostics every epoch", "", _training_table(training), "",
        "## GET /v1/jobs/{id} latency (sequential keep-alive client on loopback)", "",
        _get_table(get), "",
        "## Predictions: our POST /v1/models/{id}/predict vs a bare FastAPI endpoint", "",
        _predict_table(results["large"], results["large_npy"], results["small"]), "",
        f"Load average when the run ended: {load_average()}.", "", _NOTES,
    ]) + "\n"


def _ms(seconds: list[float]) -> list[float]:
    return [1e3 * value for value in seconds]


def _training_ratios(training: dict[str, Any], key: str) -> list[float]:
    pairs = zip(training["service"], training["engine"], strict=False)
    return [float(service[key]) / float(engine["seconds"]) for service, engine in pairs]


def _round_medians(rounds: list[dict[str, Any]], key: str = "latencies") -> list[float]:
    return [median(_ms(round_[key])) for round_ in rounds if round_[key]]


def _throughputs(rounds: list[dict[str, Any]]) -> list[float]:
    return [len(round_["latencies"]) / round_["wall"] for round_ in rounds]


def _targets(results: dict[str, Any]) -> str:
    training, get = results["training"], results["get"]
    end_to_end = _training_ratios(training, "seconds")
    p99 = percentile(_ms(get["busy"]), 99)
    large = _round_medians(results["large"]["ours"], "server")
    large_npy = _round_medians(results["large_npy"]["ours"], "server")
    rows_, features = results["large"]["shape"]
    small = [ours / bare for ours, bare in zip(_throughputs(results["small"]["ours"]),
                                                 _throughputs(results["small"]["bare"]),
                                                 strict=False)]
    rows = [
        ["service job (created_at → finished_at) ÷ engine alone", spread(end_to_end),
         f"≤ {TRAINING_TARGET}×", verdict(median(end_to_end), TRAINING_TARGET, at_least=False)],
        ["GET /v1/jobs/{id} p99 while every worker trains", f"{p99:.1f} ms",
         f"< {GET_P99_TARGET_MS:.0f} ms", verdict(p99, GET_P99_TARGET_MS, at_least=False)],
        [f"predict {rows_:,} × {features} as nested lists "
         f"({results['large']['body_bytes']:,} B), server time",
         f"{spread(large)} ms", f"< {LARGE_PREDICT_TARGET_MS:.0f} ms",
         verdict(median(large), LARGE_PREDICT_TARGET_MS, at_least=False)],
        [f"predict {rows_:,} × {features} as inputs_npy "
         f"({results['large_npy']['body_bytes']:,} B), server time",
         f"{spread(large_npy)} ms", f"< {LARGE_PREDICT_TARGET_MS:.0f} ms",
         verdict(median(large_npy), LARGE_PREDICT_TARGET_MS, at_least=False)],
        ["small predictions: requests/s ÷ bare endpoint's", spread(small),
         f"≥ {SMALL_THROUGHPUT_TARGET}×", verdict(median(small), SMALL_THROUGHPUT_TARGET,
                                                   at_least=True)],
    ]
    return markdown_table(["figure", "measured: median [min–max]", "target", "verdict"], rows)


def _training_table(training: dict[str, Any]) -> str:
    engine = [run["seconds"] for run in training["engine"]]
    service = [run["seconds"] for run in training["service"]]
    server = [run["server_seconds"] for run in training["service"]]
    client = [run["client_seconds"] for run in training["service"]]
    engine_epochs = [sum(run["epoch_seconds"]) for run in training["engine"]]
    service_epochs = [sum(run["epoch_seconds"]) for run in training["service"]]
    epoch_ratios = [ours / alone for ours, alone in zip(service_epochs, engine_epochs,
                                                         strict=False)]
    rows = [["engine alone: train() in a fresh process", spread(engine), "1 (reference)"],
            ["service, created_at → finished_at (queue + run, server clock)", spread(service),
             spread(_training_ratios(training, "seconds"))],
            ["service, started_at → finished_at (the worker's run)", spread(server),
             spread(_training_ratios(training, "server_seconds"))],
            ["service, submit → succeeded seen by a client polling every 0.5 s", spread(client),
             spread(_training_ratios(training, "client_seconds"))],
            ["engine alone, sum of the epochs' own `seconds`", spread(engine_epochs), "1"],
            ["service, sum of the epochs' `seconds` (GET /v1/jobs/{id}/metrics)",
             spread(service_epochs), spread(epoch_ratios)]]
    return markdown_table(["run", "seconds", "÷ engine alone (paired)"], rows)


def _get_table(get: dict[str, Any]) -> str:
    rows = []
    for label, key in (("workers idle", "idle"),
                       (f"{get['busy_workers']} workers training", "busy")):
        values = _ms(get[key])
        rows.append([label, len(values), f"{percentile(values, 50):.2f}",
                     f"{percentile(values, 90):.2f}", f"{percentile(values, 99):.2f}",
                     f"{max(values):.2f}"])
    table = markdown_table(["condition", "requests", "p50 ms", "p90 ms", "p99 ms", "max ms"], rows)
    held = "yes" if get["load_held"] else "**no: a load job ended before the GETs did**"
    return table + f"\n\nEvery load job still running when the last GET returned: {held}."


def _predict_table(*bodies: dict[str, Any]) -> str:
    rows = []
    for data in bodies:
        form = "inputs_npy" if data.get("npy") else "nested lists"
        body = f"{data['shape'][0]:,} × {data['shape'][1]}, {form} ({data['body_bytes']:,} B)"
        for side, key in (("ours", "ours"), ("bare constant", "bare")):
            everything = [value for round_ in data[key] for value in _ms(round_["latencies"])]
            server = _round_medians(data[key], "server")
            rows.append([body, side, spread(_round_medians(data[key])),
                         f"{percentile(everything, 99):.2f}", spread(server) if server else "—",
                         spread(_throughputs(data[key]))])
    return markdown_table(["body", "endpoint", "round trip ms (round medians)", "round trip p99 ms",
                           "server time ms (Server-Timing)", "requests/s (sequential)"], rows)


_NOTES = """## How to read this

- Training: both sides run the same job on the same data, alternating, after warm-up jobs that
  load the dataset into every worker. The service stores features as float64; a worker keeps each
  dataset cast to the job's dtype (float32) from its first job on it, and the engine-alone child
  gets the same float32 array, as an engine user would hold it. Ratios are paired per round. The
  service is timed on its own clock (job timestamps), so the client polls only every 0.5 s.
- Latencies are client-side round trips on loopback with a pre-encoded body (no client JSON work
  inside the timing). Server time is the service's own `Server-Timing: app;dur=…` header: from
  the request entering the app (before the body is read) to the response's first byte.
- The bare endpoint is FastAPI + uvicorn returning a constant without reading the body: the cost of
  the framework alone, run as a second uvicorn subprocess side by side with the service."""
