"""The model behind the server: any backend meeting polyhead.modeling.backend.InferenceModel.

The server never asks which backend it holds: it calls encode/predict/describe and reads
`tokenizer`, which the PyTorch MultiTaskModel and the ONNX Runtime OnnxModel both offer.
"""
from __future__ import annotations

from typing import Any

from ..errors import PolyheadError

CONTRACT = ("encode", "predict", "describe", "tasks", "tokenizer")


def as_servable(obj: Any) -> Any:
    """The object the server calls: a model meeting the inference contract as is, a bare Encoder wrapped."""
    if all(hasattr(obj, name) for name in CONTRACT):
        return obj
    if hasattr(obj, "encode") and hasattr(obj, "tokenizer") and not hasattr(obj, "predict"):
        from ..modeling.model import MultiTaskModel

        return MultiTaskModel(obj, [])  # a model with no heads: embeddings, similarity, info
    missing = ", ".join(name for name in CONTRACT if not hasattr(obj, name))
    raise PolyheadError(
        f"cannot serve a {type(obj).__name__}: it lacks {missing} (serve a polyhead model, an Encoder, "
        "or an object meeting polyhead.modeling.backend.InferenceModel)"
    )


def describe_model(model: Any) -> dict[str, Any]:
    """Static facts for /info: dimensions, max length, pooling, precision, device, encoder, parameters, tasks."""
    facts = dict(as_servable(model).describe())
    # /info names the backend as the user chose it (--backend torch|onnx), from ServeSettings.
    facts.pop("backend", None)
    return facts
