"""`--backend` for the commands that run a model (encode, predict): load the backend asked for,
refuse encoder options an export cannot honour, and say on stderr what runs."""
from __future__ import annotations

import argparse
from typing import Any

from ..console import announce_precision, say
from ..errors import PolyheadError


def encoder_kwargs(args: argparse.Namespace) -> dict:
    """The encoder choices given on the command line; None leaves each to the model's own config."""
    return {"pooling": getattr(args, "pooling", None), "normalize": False if getattr(args, "no_normalize", False) else None,
            "max_length": getattr(args, "max_length", None)}


def graph_model(args: argparse.Namespace, model_dir: str | None) -> Any:
    """The model for --backend onnx/openvino/auto (auto may pick torch); says which backend runs.

    An export has its pooling and max length built in: asking for others is an error, not a
    silent no-op. --no-normalize works everywhere (the graph also returns the raw pooled vector).
    """
    from ..onnx.backends import load_backend, pick_backend

    backend = args.backend
    if backend == "auto":
        backend = pick_backend(model_dir, device=args.device, precision=args.precision, threads=args.threads, variant=args.variant)
    changed = [flag for flag, dest in (("--pooling", "pooling"), ("--max-length", "max_length")) if getattr(args, dest, None) is not None]
    if backend != "torch" and changed:
        raise PolyheadError(f"{', '.join(changed)} cannot change an exported model (they are part of the graph); "
                            "export again from a model saved with them, or use --backend torch")
    kwargs = {"pooling": getattr(args, "pooling", None), "max_length": getattr(args, "max_length", None)}
    model = load_backend(
        model_dir, backend, device=args.device, precision=args.precision, threads=args.threads, variant=args.variant,
        encoder_kwargs=kwargs if backend == "torch" else None, announce=False,
    )
    if backend == "torch":
        announce_precision(getattr(model, "encoder", model), args.precision)
    else:
        other = getattr(model, "inference_precision", None)
        say(f"backend {backend}: the {model.variant} model on {model.device.type}"
            + (f", other operations in {other}" if other and other != model.variant else ""))
    return model
