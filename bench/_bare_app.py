"""The baseline for prediction throughput: a bare FastAPI endpoint that returns a constant.

Same path shape as the real predict route; it neither reads nor validates the body, so it measures
what uvicorn + FastAPI cost per request and nothing else.
"""

from __future__ import annotations

from fastapi import FastAPI

CONSTANT = {"predictions": [0], "probabilities": [[1.0]], "classes": [0]}

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/models/{model_id}/predict")
async def predict(model_id: str) -> dict[str, list]:
    return CONSTANT
