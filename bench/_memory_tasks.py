"""Peak memory while training, against the dataset's own size (child process).

ru_maxrss is the process's peak resident set; its growth during train() is what training added on
top of the dataset. tracemalloc (which NumPy reports its buffers to) gives the peak of what train()
itself allocated. A per-epoch copy of the dataset would add its whole size to both.
"""

from __future__ import annotations

import gc
import resource
import tracemalloc
from typing import Any

from bench import _data
from bench._engine_tasks import MNIST_CLASSES, mnist_spec

MB = 1024 * 1024


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def ours_memory(n_samples: int, batch_size: int, epochs: int, standardize: bool,
                seed: int = 0) -> dict[str, Any]:
    from engine.training import train

    X, y = _data.mnist_like(n_samples, seed=seed)
    spec = mnist_spec(batch_size, epochs=epochs, learning_rate=0.05, seed=seed,
                      standardize=standardize)
    gc.collect()
    before = peak_rss_bytes()
    tracemalloc.start()
    train(spec, X, y, task="classification", n_classes=MNIST_CLASSES)
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    after = peak_rss_bytes()
    return {"dataset_mb": (X.nbytes + y.nbytes) / MB, "peak_rss_before_mb": before / MB,
            "peak_rss_mb": after / MB, "rss_growth_mb": (after - before) / MB,
            "traced_peak_mb": traced_peak / MB}
