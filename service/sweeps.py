"""Sweep expansion: a base job body plus a grid or a list of points → one job body per point.

Overrides are addressed by dotted paths into the job body: `"optimizer.learning_rate"`,
`"batch_size"`, `"network.layers.0.units"` (a number indexes a list). A grid is the cartesian
product of its value lists, in the order its keys are given; points are explicit override objects.
A value replaces whatever sits at its path, so `{"optimizer": {"name": "adam"}}` swaps the whole
optimizer. Expansion is pure: it checks paths and sizes, never the resulting spec — the job
route's own validation does that, point by point.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["FIXED_PATHS", "SweepError", "SweepPoint", "apply_overrides", "expand_sweep"]

# A sweep trains one dataset, so that its points stay comparable by one validation metric.
FIXED_PATHS = frozenset({"dataset_id"})

Loc = list[Any]


class SweepError(ValueError):
    """A sweep request that cannot be expanded; `errors` names each bad field like a 422 body."""

    def __init__(self, detail: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


def _error(detail: str, loc: Loc, msg: str) -> SweepError:
    return SweepError(detail, [{"loc": loc, "msg": msg}])


@dataclass(frozen=True)
class SweepPoint:
    overrides: dict[str, Any]  # dotted path → value, as the client wrote it
    body: dict[str, Any]  # the base body with the overrides applied (a deep copy)


def expand_sweep(
    base: Mapping[str, Any],
    *,
    grid: Mapping[str, Sequence[Any]] | None = None,
    points: Sequence[Mapping[str, Any]] | None = None,
    max_points: int,
) -> list[SweepPoint]:
    """One SweepPoint per grid combination or listed point, in order; raises SweepError."""
    if (grid is None) == (points is None):
        msg = "exactly one of grid or points is required"
        raise _error("give exactly one of grid or points", ["body"], msg)
    if grid is not None:
        located = _grid_overrides(grid, max_points)
    else:
        located = _point_overrides(points, max_points)
    return [
        SweepPoint(overrides=overrides, body=apply_overrides(base, overrides, loc=loc))
        for overrides, loc in located
    ]


def apply_overrides(
    base: Mapping[str, Any], overrides: Mapping[str, Any], *, loc: Sequence[Any] = ()
) -> dict[str, Any]:
    """A deep copy of `base` with each dotted path set to (a copy of) its value."""
    body = copy.deepcopy(dict(base))
    for path, value in overrides.items():
        _set_path(body, path, copy.deepcopy(value), loc=[*loc, path])
    return body


def _grid_overrides(
    grid: Mapping[str, Sequence[Any]], max_points: int
) -> list[tuple[dict[str, Any], Loc]]:
    if not isinstance(grid, Mapping) or not grid:
        raise _error("the grid is empty", ["body", "grid"], "name at least one dotted path")
    for path, values in grid.items():
        _check_path(path, loc=["body", "grid", path])
        if not isinstance(values, list) or not values:
            loc = ["body", "grid", path]
            raise _error(f"grid path {path!r} needs values", loc, "must be a non-empty list")
    # The size is known before any combination is built, so a huge grid costs nothing.
    _check_size(math.prod(len(values) for values in grid.values()), max_points, ["body", "grid"])
    paths = list(grid)
    return [
        (dict(zip(paths, combination, strict=True)), ["body", "grid"])
        for combination in itertools.product(*(grid[path] for path in paths))
    ]


def _point_overrides(
    points: Sequence[Mapping[str, Any]] | None, max_points: int
) -> list[tuple[dict[str, Any], Loc]]:
    if not isinstance(points, list) or not points:
        loc: Loc = ["body", "points"]
        raise _error("points must be a non-empty list", loc, "must be a non-empty list")
    _check_size(len(points), max_points, ["body", "points"])
    located: list[tuple[dict[str, Any], Loc]] = []
    for index, point in enumerate(points):
        loc = ["body", "points", index]
        if not isinstance(point, dict):
            raise _error(f"point {index} must be an object", loc, "must be an object")
        for path in point:
            _check_path(path, loc=[*loc, path])
        located.append((dict(point), loc))
    return located


def _check_size(size: int, max_points: int, loc: Loc) -> None:
    if size > max_points:
        detail = f"the sweep has {size} points; the limit is {max_points}"
        raise _error(detail, loc, f"{size} points exceed the limit of {max_points}")


def _check_path(path: Any, *, loc: Loc) -> None:
    if not isinstance(path, str) or not all(path.split(".")):
        msg = "use a dotted path such as optimizer.learning_rate"
        raise _error(f"{path!r} is not a dotted path", loc, msg)
    if path.split(".")[0] in FIXED_PATHS:
        msg = "a sweep trains one dataset; put dataset_id in base"
        raise _error(f"{path!r} cannot vary within a sweep", loc, msg)


def _set_path(body: dict[str, Any], path: str, value: Any, *, loc: Loc) -> None:
    """Walk dicts by key (creating missing ones) and lists by existing index; set the last part."""
    *parents, last = path.split(".")
    node: Any = body
    for part in parents:
        node = _child(node, part, path=path, loc=loc)
    if isinstance(node, dict):
        node[last] = value
    elif isinstance(node, list):
        node[_index(node, last, path=path, loc=loc)] = value
    else:
        raise _not_a_container(path, last, loc)


def _child(node: Any, part: str, *, path: str, loc: Loc) -> Any:
    if isinstance(node, dict):
        if node.get(part) is None:
            node[part] = {}
        return node[part]
    if isinstance(node, list):
        return node[_index(node, part, path=path, loc=loc)]
    raise _not_a_container(path, part, loc)


def _index(node: list[Any], part: str, *, path: str, loc: Loc) -> int:
    if not (part.isascii() and part.isdigit()) or int(part) >= len(node):
        msg = f"{part!r} is not an index of a list of {len(node)} items"
        raise _error(f"cannot set {path!r}: {msg}", loc, msg)
    return int(part)


def _not_a_container(path: str, part: str, loc: Loc) -> SweepError:
    msg = f"{part!r} is below a value that is neither an object nor a list"
    return _error(f"cannot set {path!r}: {msg}", loc, msg)
