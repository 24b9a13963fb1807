"""The README walkthrough (examples/walkthrough.py) against a real server with a real worker."""

from __future__ import annotations

import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.live
def test_walkthrough_trains_digits_and_predicts(live_server: Callable[..., Any]) -> None:
    server = live_server(workers=1)
    walkthrough = runpy.run_path(str(ROOT / "examples" / "walkthrough.py"))
    outcome = walkthrough["main"](server.url)
    assert outcome["dataset"]["n_samples"] == 1797 and outcome["dataset"]["n_features"] == 64
    assert outcome["job"]["status"] == "succeeded"
    assert outcome["job"]["metrics"]["val_accuracy"] > 0.9
    labels = [int(line.rsplit(",", 1)[1]) for line in
              (ROOT / "examples" / "digits.csv").read_text().splitlines()[1:6]]
    assert sum(p == t for p, t in zip(outcome["predictions"], labels, strict=True)) >= 4
