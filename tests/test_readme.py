"""The README is a specification too: its two commands, its CI hook and its Python example hold."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def fenced_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_quickstart_holds_exactly_the_serve_and_test_commands() -> None:
    quickstart = README.split("## Quickstart", 1)[1]
    first_block = re.search(r"```sh\n(.*?)```", quickstart, flags=re.S)
    assert first_block is not None
    lines = [line for line in first_block.group(1).splitlines() if line.strip()]
    assert lines == ["make serve", "make test"]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    lines = [line.strip() for line in ci.splitlines()]
    commands = [line for line in lines if line and not line.startswith(("#", "set "))]
    assert commands == ["make test"]


def test_python_example_runs_and_shows_the_whole_api() -> None:
    (example,) = fenced_blocks("python")
    for call in ("engine.build(", "engine.train(", ".predict(", "engine.compute_gradients(",
                 "engine.save(", "engine.load("):  # what the engine issue asks README to show
        assert call in example
    result = subprocess.run([sys.executable, "-c", example], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]  # its own assert: the save/load round trip
    printed = result.stdout.splitlines()
    assert printed[0] == "4810"  # P for 64-64-10
    assert sum("'epoch'" in line for line in printed) == 20  # every epoch through the callback
