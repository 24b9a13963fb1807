"""Engine errors. Every message says what was wrong and what to try next.

    EngineError
    ├── SpecError          the spec cannot describe a trainable network for this data
    ├── DataError          the arrays are unusable (shape, dtype, non-finite values)
    ├── DivergenceError    the loss or the weights became NaN/Inf during training
    └── SerializationError bytes that are not a model this engine wrote
"""

from __future__ import annotations

__all__ = ["DataError", "DivergenceError", "EngineError", "SerializationError", "SpecError"]


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class SpecError(EngineError, ValueError):
    """The spec is valid on its own but does not fit the data or the task."""


class DataError(EngineError, ValueError):
    """Training or prediction data that cannot be used as given."""


class DivergenceError(EngineError, ArithmeticError):
    """Training produced NaN or Inf; `epoch` is where it happened (numbered from 1)."""

    def __init__(self, message: str, *, epoch: int) -> None:
        super().__init__(message)
        self.epoch = epoch


class SerializationError(EngineError, ValueError):
    """Bytes that do not hold a model written by this engine."""
