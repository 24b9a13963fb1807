"""An in-process LRU cache of deserialized engine models, so predictions skip loading the weights.

Models never change after they are published, so an entry never goes stale. An engine Model is
safe to share between threads (it holds its own lock around each pass through its network).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from engine.model import Model as EngineModel

__all__ = ["DEFAULT_CAPACITY", "ModelCache"]

# A 10⁷-parameter float32 model is 40 MB; eight of them bound the cache at a few hundred MB.
DEFAULT_CAPACITY = 8


class ModelCache:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, EngineModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model_id: str, load_bytes: Callable[[], bytes]) -> EngineModel:
        """The cached model, loaded from `load_bytes()` on a miss (outside the cache lock)."""
        with self._lock:
            model = self._entries.get(model_id)
            if model is not None:
                self._entries.move_to_end(model_id)
                return model
        loaded = EngineModel.from_bytes(load_bytes())
        with self._lock:
            model = self._entries.setdefault(model_id, loaded)
            self._entries.move_to_end(model_id)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
            return model

    def __len__(self) -> int:
        return len(self._entries)
