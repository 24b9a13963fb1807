"""Response values are strict JSON: non-finite floats leave the API as null."""

from __future__ import annotations

import numpy as np

from service.views import finite_json, finite_list


def test_finite_list_is_tolist_with_nan_and_inf_as_none() -> None:
    finite = np.array([[0.25, 1.0], [-3.5, 0.0]])
    assert finite_list(finite) == finite.tolist()
    assert finite_list(np.array([1.0, np.nan, np.inf, -np.inf])) == [1.0, None, None, None]
    assert finite_list(np.array([[np.nan, 2.0]], dtype=np.float32)) == [[None, 2.0]]
    assert finite_list(np.array([[1.0, np.inf]])) == finite_json([[1.0, float("inf")]])
