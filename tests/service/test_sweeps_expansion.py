"""service.sweeps: dotted-path overrides, grid products and explicit points, as pure functions."""

from __future__ import annotations

import pytest

from service.sweeps import SweepError, apply_overrides, expand_sweep

BASE = {
    "dataset_id": "d1",
    "network": {
        "layers": [{"units": 8, "activation": "tanh"}, {"units": 3, "activation": "softmax"}]
    },
    "optimizer": {"name": "sgd", "learning_rate": 0.1},
    "batch_size": 32,
}


def test_grid_is_the_cartesian_product_in_key_order() -> None:
    grid = {"optimizer.learning_rate": [0.1, 0.01], "batch_size": [16, 32, 64]}
    points = expand_sweep(BASE, grid=grid, max_points=100)
    assert [p.overrides for p in points] == [
        {"optimizer.learning_rate": lr, "batch_size": bs}
        for lr in (0.1, 0.01)
        for bs in (16, 32, 64)
    ]
    assert [(p.body["optimizer"]["learning_rate"], p.body["batch_size"]) for p in points] == [
        (lr, bs) for lr in (0.1, 0.01) for bs in (16, 32, 64)
    ]


def test_points_apply_in_order_and_leave_other_fields_alone() -> None:
    points = expand_sweep(BASE, points=[{"l2": 0.001}, {"seed": 7, "batch_size": 8}], max_points=10)
    assert points[0].body == {**BASE, "l2": 0.001}
    assert points[1].body == {**BASE, "seed": 7, "batch_size": 8}


def test_numeric_segment_indexes_a_list_of_layers() -> None:
    overrides = {"network.layers.0.units": 64, "network.layers.0.activation": "relu"}
    body = apply_overrides(BASE, overrides)
    assert body["network"]["layers"][0] == {"units": 64, "activation": "relu"}
    assert body["network"]["layers"][1] == BASE["network"]["layers"][1]


def test_overrides_never_mutate_the_base_or_share_values_between_points() -> None:
    layers = [{"units": 4}, {"units": 3, "activation": "softmax"}]
    points = expand_sweep(BASE, grid={"network.layers": [layers], "seed": [1, 2]}, max_points=10)
    points[0].body["network"]["layers"][0]["units"] = 999
    assert points[1].body["network"]["layers"][0]["units"] == 4
    assert BASE["network"]["layers"][0]["units"] == 8


def test_a_value_replaces_a_whole_subtree() -> None:
    body = apply_overrides(BASE, {"optimizer": {"name": "adam"}})
    assert body["optimizer"] == {"name": "adam"}


def test_missing_objects_on_the_path_are_created() -> None:
    body = apply_overrides(BASE, {"early_stopping.patience": 3})
    assert body["early_stopping"] == {"patience": 3}


def test_list_index_out_of_range_names_the_path() -> None:
    with pytest.raises(SweepError) as caught:
        expand_sweep(BASE, grid={"network.layers.5.units": [4]}, max_points=10)
    assert "network.layers.5.units" in caught.value.detail
    assert caught.value.errors[0]["loc"] == ["body", "grid", "network.layers.5.units"]


def test_path_through_a_scalar_is_refused() -> None:
    with pytest.raises(SweepError, match="batch_size"):
        apply_overrides(BASE, {"batch_size.value": 3})


@pytest.mark.parametrize("path", ["", "a..b", ".a", "a."])
def test_malformed_dotted_paths_are_refused(path: str) -> None:
    with pytest.raises(SweepError, match="dotted path"):
        expand_sweep(BASE, points=[{path: 1}], max_points=10)


def test_dataset_cannot_vary_within_a_sweep() -> None:
    with pytest.raises(SweepError, match="dataset_id") as caught:
        expand_sweep(BASE, grid={"dataset_id": ["d2", "d3"]}, max_points=10)
    assert caught.value.errors[0]["loc"] == ["body", "grid", "dataset_id"]


def test_exactly_one_of_grid_and_points() -> None:
    with pytest.raises(SweepError, match="exactly one"):
        expand_sweep(BASE, max_points=10)
    with pytest.raises(SweepError, match="exactly one"):
        expand_sweep(BASE, grid={"seed": [1]}, points=[{"seed": 1}], max_points=10)


@pytest.mark.parametrize("grid", [{}, {"seed": []}, {"seed": 3}])
def test_grid_needs_non_empty_value_lists(grid: dict[str, object]) -> None:
    with pytest.raises(SweepError):
        expand_sweep(BASE, grid=grid, max_points=10)


def test_points_must_be_objects() -> None:
    with pytest.raises(SweepError) as caught:
        expand_sweep(BASE, points=[{"seed": 1}, 5], max_points=10)  # type: ignore[list-item]
    assert caught.value.errors[0]["loc"] == ["body", "points", 1]


def test_huge_grid_is_refused_by_its_size_before_expansion() -> None:
    grid = {f"p{i}": list(range(10)) for i in range(12)}  # 10**12 combinations, never built
    with pytest.raises(SweepError, match="limit is 50"):
        expand_sweep(BASE, grid=grid, max_points=50)


def test_size_limit_is_inclusive() -> None:
    assert len(expand_sweep(BASE, grid={"seed": [1, 2, 3]}, max_points=3)) == 3
    with pytest.raises(SweepError):
        expand_sweep(BASE, points=[{"seed": s} for s in range(4)], max_points=3)
