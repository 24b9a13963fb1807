"""Early stopping on validation loss, keeping the best weights seen so far.

An epoch improves when val_loss < best − min_delta. After `patience` epochs in a row without
improvement training stops; whatever stops training, the best weights are restored at the end.
Without an early-stopping spec the tracker still remembers the best epoch (patience None).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["EarlyStopping"]


@dataclass
class EarlyStopping:
    patience: int | None = None
    min_delta: float = 0.0
    best_loss: float = math.inf
    best_epoch: int | None = None
    wait: int = 0  # epochs since the last improvement
    best_weights: dict[str, np.ndarray] | None = None

    def update(
        self, epoch: int, val_loss: float, copy_weights: Callable[[], dict[str, np.ndarray]]
    ) -> bool:
        """Record an epoch's validation loss; keep a copy of the weights when it improves."""
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.wait = val_loss, epoch, 0
            self.best_weights = copy_weights()
            return True
        self.wait += 1
        return False

    @property
    def exhausted(self) -> bool:
        """True when `patience` epochs have passed without improvement."""
        return self.patience is not None and self.wait >= self.patience

    def state(self) -> dict[str, Any]:
        """JSON-able state (the best weights travel separately, as arrays)."""
        best = self.best_loss if math.isfinite(self.best_loss) else None
        return {"best_loss": best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load(self, state: dict[str, Any], best_weights: dict[str, np.ndarray] | None) -> None:
        best = state.get("best_loss")
        self.best_loss = math.inf if best is None else float(best)
        self.best_epoch = state.get("best_epoch")
        self.wait = int(state.get("wait", 0))
        self.best_weights = best_weights
