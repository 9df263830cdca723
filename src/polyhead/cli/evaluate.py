"""`polyhead evaluate`: a saved model's per-task metrics on a config's data, and how far its sentence
embedding moved from the encoder its training started from."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..console import say
from ..errors import PolyheadError
from .commands import output_file, write_output


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a saved model on the data of a config; print a table, optionally write JSON."""
    from ..modeling.model import load
    from ..training.config import load_config
    from ..training.data import build_sources
    from ..training.evaluation import evaluate

    out = output_file(args.output, args.force)
    cfg = load_config(args.config, args.set)
    model = load(args.model_dir, device=args.device, precision=getattr(args, "precision", "fp32"))
    missing = [t.name for t in cfg.tasks if t.name not in model.tasks]
    if missing:
        raise PolyheadError(f"the model has no task(s) {', '.join(missing)} (it has {', '.join(model.tasks)})")
    for t in cfg.tasks:  # evaluate against the model's own label sets, with the prompts it was trained with
        t.labels = model.tasks[t.name].labels or None
        t.prompt = model.tasks[t.name].prompt
    sources, _ = build_sources(cfg, splits=(args.split,))
    metrics = evaluate(model, sources, args.split, batch_size=args.batch_size)
    if not metrics:
        raise PolyheadError(f"the config names no {args.split} files")
    print(f"{'task':<16} {'metric':<14} value")
    for task, values in metrics.items():
        for name, value in values.items():
            print(f"{task:<16} {name:<14} {value:.4f}" if name != "n" else f"{task:<16} {name:<14} {int(value)}")
    moved = evaluate_retention(args, cfg, model, sources, metrics)
    if out is not None:
        doc = {"split": args.split, "metrics": metrics, **({"embedding_retention": moved} if moved else {})}
        write_output(out, [json.dumps(doc, indent=2)])
        say(f"wrote {out}")
    return 0


def evaluate_retention(args: argparse.Namespace, cfg: Any, model: Any, sources: list, metrics: dict) -> dict[str, Any] | None:
    """`polyhead evaluate`'s embedding retention: MODEL_DIR's embedding against the encoder its training
    started from (--against, else the config's training.init_from, else its encoder.model), printed
    in one line; None when skipped (--against none) or the base cannot be loaded (said in one line)."""
    from ..modeling.card import retention_line
    from ..modeling.encoder import Encoder
    from ..modeling.model import load
    from ..training.retention import against

    base_name = args.against or cfg.training.init_from or cfg.encoder.model
    if base_name == "none":
        return None
    enc = model.encoder
    try:
        if (Path(str(cfg.resolve(base_name))) / "polyhead.json").is_file():  # a polyhead model folder: its encoder
            base = load(cfg.resolve(base_name), device=enc.device).encoder
        else:
            base = Encoder(base_name, pooling=enc.pooling.mode, max_length=enc.max_length, device=enc.device)
    except PolyheadError as exc:
        say(f"embedding retention not measured: the base encoder {base_name!r} did not load ({exc}); --against names another")
        return None
    moved = against(model, base, sources, args.split, args.batch_size, metrics)
    if moved is None:
        return None
    moved["against"] = str(base_name)
    print(f"embedding retention against {base_name}: {retention_line(moved)}")
    return moved
