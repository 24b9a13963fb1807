"""In-process LRU caches for published models: their rows and their deserialized engine models.

A published model never changes (its row and weights are written once, in the transaction that ends
its job, and there is no update or delete), so entries never go stale. Caching the row lets a
prediction skip the database entirely; caching the engine Model skips deserializing the weights.
An engine Model is safe to share between threads: it locks around each pass through its network.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from engine.model import Model as EngineModel
from service.models import Model

__all__ = ["ENGINE_CAPACITY", "ROW_CAPACITY", "LruCache", "ModelCache"]

# A 10⁷-parameter float32 model is 40 MB; eight of them bound the cache at a few hundred MB.
ENGINE_CAPACITY = 8
ROW_CAPACITY = 1024  # rows are a few kB of JSON

Key = TypeVar("Key")
Value = TypeVar("Value")


class LruCache(Generic[Key, Value]):
    """A thread-safe least-recently-used map of bounded size."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[Key, Value] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Key) -> Value | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: Key, value: Value) -> Value:
        """Store `value` unless another thread stored one first; return the stored value."""
        with self._lock:
            stored = self._entries.setdefault(key, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
            return stored

    def __len__(self) -> int:
        return len(self._entries)


class ModelCache:
    def __init__(self, engine_capacity: int = ENGINE_CAPACITY, row_capacity: int = ROW_CAPACITY):
        self.rows: LruCache[str, Model] = LruCache(row_capacity)
        self.engines: LruCache[str, EngineModel] = LruCache(engine_capacity)

    def engine(self, model_id: str, load_bytes: Callable[[], bytes]) -> EngineModel:
        """The deserialized model, loaded from `load_bytes()` on a miss (outside any lock)."""
        cached = self.engines.get(model_id)
        if cached is not None:
            return cached
        return self.engines.put(model_id, EngineModel.from_bytes(load_bytes()))
