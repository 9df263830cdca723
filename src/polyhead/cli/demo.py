"""`polyhead demo`: a short tour of the library on the bundled encoder."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..console import say
from ..errors import PolyheadError

SENTENCES = [
    "My order from last week still has not arrived.",
    "Where is my package? It was supposed to come on Monday.",
    "I love these headphones, the sound is amazing.",
    "The battery died after two days, very disappointed.",
    "Can I get a refund for the broken charger?",
]
PREDICT_TEXTS = [
    "Anna Schmidt ordered the Zephyr X2 headphones from Berlin and they arrived broken. I want a refund.",
    "Thanks, the replacement laptop works perfectly!",
    "How do I change the email address on my account?",
]
EXAMPLE_CONFIG = Path("configs/example.yaml")


def _print(msg: str = "") -> None:
    print(msg, flush=True)


def run_demo(output: str | Path = "runs/demo", train: bool = True, config: str | Path | None = None) -> int:
    """Encode, compare, then build (and train, when the example config is present) a model."""
    from ..modeling.encoder import Encoder

    config = Path(config) if config is not None else EXAMPLE_CONFIG
    if config != EXAMPLE_CONFIG and not config.is_file():
        raise PolyheadError(f"no training config {config}")

    _print("== 1. Encode sentences with the bundled all-MiniLM-L6-v2 (mean pooling, L2-normalised)")
    enc = Encoder()
    vecs = enc.encode(SENTENCES)
    _print(f"   {vecs.shape[0]} sentences -> {vecs.shape[1]}-d embeddings")
    _print("\n== 2. Cosine similarity")
    sims = vecs @ vecs.T
    for i, s in enumerate(SENTENCES):
        _print(f"   [{i}] {s[:52]:<52} " + " ".join(f"{x:5.2f}" for x in sims[i]))
    out = Path(output)
    trained = train and config.is_file()
    if not trained:
        model = _untrained(enc)
        _print("\n== 3. A multi-task model with untrained heads (run without --no-train for a trained one)")
    else:
        model = _trained(out, config)
        scores = dev_scores(out)
        if scores:
            _print(f"   dev scores of the kept model: {scores}")
        moved = retention(out)
        if moved:
            _print(f"   its sentence embedding against all-MiniLM-L6-v2's: {moved}")
        _print(f"   model folder: {out}")
    _print("\n== 4. One forward pass, every head")
    for item in model.predict(PREDICT_TEXTS):
        _print(f"   {item['text']}")
        for name, res in item["tasks"].items():
            if "label" in res:
                _print(f"      {name:<10} {res['label']} ({res['score']:.2f})")
            else:
                ents = ", ".join(f"{e['text']} [{e['type']}]" for e in res["entities"]) or "(none)"
                _print(f"      {name:<10} {ents}")
    if trained:
        _print(f"\nOpen the playground: polyhead serve {out}, then http://127.0.0.1:8000/ in a browser")
        _print(f"Next: polyhead predict {out} \"your text\"  |  polyhead info {out}")
    return 0


def dev_scores(out: Path) -> str:
    """`intent accuracy 0.97, ...`: each task's headline dev metric from OUT/training/metrics.json."""
    try:
        metrics = json.loads((out / "training" / "metrics.json").read_text(encoding="utf-8"))
        heads = metrics["headline_metrics"]
        return ", ".join(f"{task} {heads[task].replace('_', ' ')} {m[heads[task]]:.3f}" for task, m in metrics["dev"].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ""  # no dev split, or a folder from an older polyhead: the scores are optional


def retention(out: Path) -> str:
    """The kept model's embedding retention line from OUT/training/metrics.json ('' when absent)."""
    from ..modeling.card import retention_line

    try:
        moved = json.loads((out / "training" / "metrics.json").read_text(encoding="utf-8"))["retention"]
        line = retention_line(moved)
        anchor = moved.get("anchor_weight")
        return line + (f" (training.anchor_weight {anchor:g})" if isinstance(anchor, (int, float)) else "")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ""  # a folder from an older polyhead: the line is optional


def _untrained(enc):
    from ..modeling.model import MultiTaskModel
    from ..modeling.tasks import TaskSpec, bio_labels

    return MultiTaskModel(
        enc,
        [
            TaskSpec("intent", "classification", ["account", "feedback", "order_status", "product_question", "refund", "shipping", "technical_issue"]),
            TaskSpec("sentiment", "classification", ["negative", "neutral", "positive"]),
            TaskSpec("ner", "token", bio_labels(["PER", "ORG", "LOC", "PRODUCT"])),
        ],
    )


def _trained(out: Path, config: Path) -> Any:
    """Train the demo model into `out`, resuming an interrupted demo or reusing a finished one."""
    from ..modeling.model import CONFIG_FILE, load
    from ..training.checkpoint import CHECKPOINT_DIR, LATEST
    from ..training.config import load_config
    from ..training.loop import train

    unfinished = (out / CHECKPOINT_DIR / LATEST).is_file()  # what `train --resume` continues
    if not unfinished and (out / CONFIG_FILE).is_file():
        # A finished model from an earlier demo: reuse it rather than overwrite a trained model.
        _print(f"\n== 3. The model an earlier demo trained in {out} (delete that folder to train again)")
        return load(out)
    if not unfinished and out.is_dir() and any(out.iterdir()):
        raise PolyheadError(f"{out} is not empty and holds no demo model; choose another folder with --output")
    _print(f"\n== 3. Train every task of {config} jointly (the example: a few minutes on 2 CPU cores)")
    if unfinished:
        _print(f"   resuming the interrupted demo training in {out}")
    try:
        train(load_config(config), output_dir=out, resume=unfinished)
    except KeyboardInterrupt:
        say("demo: training interrupted; run `polyhead demo` again to continue where it stopped")
        raise
    return load(out)
