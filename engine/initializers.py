"""Weight initialisers. Biases always start at 0.

Each initialiser draws an array of `shape` from the Generator it is given; `fan_in` is M_{l−1} (the
width feeding the layer) and `fan_out` is M_l. Values are drawn in float64 and then cast, so float32
and float64 networks built from one seed start from the same (rounded) weights.

    xavier_uniform  U(−r, r), r = √(6 / (fan_in + fan_out))     (Glorot & Bengio 2010)
    xavier_normal   N(0, 2 / (fan_in + fan_out))
    he_uniform      U(−r, r), r = √(6 / fan_in)                  (He et al. 2015, for ReLU)
    he_normal       N(0, 2 / fan_in)
    lecun_uniform   U(−r, r), r = √(3 / fan_in)
    lecun_normal    N(0, 1 / fan_in)
    uniform         U(−0.05, 0.05)   small fixed range, the classic "small random numbers"
    normal          N(0, 0.05²)      the same scale as `uniform`
    zeros           0                breaks nothing but symmetry: every hidden unit stays identical
"auto" picks he_normal for the ReLU family and maxout and xavier_uniform otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.errors import SpecError

__all__ = ["INITIALIZERS", "RELU_FAMILY", "initialize_weights", "resolve_initializer"]

Array = np.ndarray
Initializer = Callable[[np.random.Generator, tuple[int, ...], int, int], Array]

SMALL_SCALE = 0.05  # range/std of the plain `uniform` and `normal` initialisers
RELU_FAMILY = frozenset({"relu", "leaky_relu", "prelu", "elu"})


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], limit: float) -> Array:
    return rng.uniform(-limit, limit, size=shape)


def _normal(rng: np.random.Generator, shape: tuple[int, ...], std: float) -> Array:
    return rng.normal(0.0, std, size=shape)


INITIALIZERS: dict[str, Initializer] = {
    "xavier_uniform": lambda rng, s, fi, fo: _uniform(rng, s, math.sqrt(6.0 / (fi + fo))),
    "xavier_normal": lambda rng, s, fi, fo: _normal(rng, s, math.sqrt(2.0 / (fi + fo))),
    "he_uniform": lambda rng, s, fi, fo: _uniform(rng, s, math.sqrt(6.0 / fi)),
    "he_normal": lambda rng, s, fi, fo: _normal(rng, s, math.sqrt(2.0 / fi)),
    "lecun_uniform": lambda rng, s, fi, fo: _uniform(rng, s, math.sqrt(3.0 / fi)),
    "lecun_normal": lambda rng, s, fi, fo: _normal(rng, s, math.sqrt(1.0 / fi)),
    "uniform": lambda rng, s, fi, fo: _uniform(rng, s, SMALL_SCALE),
    "normal": lambda rng, s, fi, fo: _normal(rng, s, SMALL_SCALE),
    "zeros": lambda rng, s, fi, fo: np.zeros(s, dtype=np.float64),
}


def resolve_initializer(name: str, *, activation: str | None, maxout: bool = False) -> str:
    """The concrete initialiser for a layer: "auto" becomes he_normal or xavier_uniform."""
    if name == "auto":
        return "he_normal" if maxout or activation in RELU_FAMILY else "xavier_uniform"
    if name not in INITIALIZERS:
        raise SpecError(f"unknown init {name!r}; valid names: auto, {', '.join(INITIALIZERS)}")
    return name


def initialize_weights(
    name: str,
    shape: tuple[int, ...],
    *,
    fan_in: int,
    fan_out: int,
    dtype: np.dtype[Any] | str,
    rng: np.random.Generator,
) -> Array:
    """Draw a weight array of `shape` with the named (already resolved) initialiser."""
    values = INITIALIZERS[name](rng, shape, fan_in, fan_out)
    return np.ascontiguousarray(values, dtype=np.dtype(dtype))
