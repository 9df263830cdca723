"""`polyhead demo`: a short tour of the library on the bundled encoder."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import PolyheadError

SENTENCES = [
    "My order from last week still has not arrived.",
    "Where is my package? It was supposed to come on Monday.",
    "I love these headphones, the sound is amazing.",
    "The battery died after two days, very disappointed.",
    "Can I get a refund for the broken charger?",
]
PREDICT_TEXTS = [
    "Anna Schmidt ordered the Zephyr X2 headphones from Berlin and they arrived broken.",
    "Thanks, the replacement laptop works perfectly!",
    "How do I change the email address on my account?",
]
EXAMPLE_CONFIG = Path("configs/example.yaml")


def _print(msg: str = "") -> None:
    print(msg, flush=True)


def run_demo(args: argparse.Namespace) -> int:
    """Encode, compare, then build (and train, when the example config is present) a model."""
    from ..modeling.encoder import Encoder

    _print("== 1. Encode sentences with the bundled all-MiniLM-L6-v2 (mean pooling, L2-normalised)")
    enc = Encoder()
    vecs = enc.encode(SENTENCES)
    _print(f"   {vecs.shape[0]} sentences -> {vecs.shape[1]}-d embeddings")
    _print("\n== 2. Cosine similarity")
    sims = vecs @ vecs.T
    for i, s in enumerate(SENTENCES):
        _print(f"   [{i}] {s[:52]:<52} " + " ".join(f"{x:5.2f}" for x in sims[i]))
    out = Path(args.output)
    if args.no_train or not EXAMPLE_CONFIG.is_file():
        model = _untrained(enc)
        _print("\n== 3. A multi-task model with untrained heads (run without --no-train for a trained one)")
    else:
        model = _trained(out)
    _print("\n== 4. One forward pass, every head")
    for item in model.predict(PREDICT_TEXTS):
        _print(f"   {item['text']}")
        for name, res in item["tasks"].items():
            if "label" in res:
                _print(f"      {name:<10} {res['label']} ({res['score']:.2f})")
            else:
                ents = ", ".join(f"{e['text']} [{e['type']}]" for e in res["entities"]) or "(none)"
                _print(f"      {name:<10} {ents}")
    _print(f"\nNext: polyhead predict {out} \"your text\"  |  polyhead info {out}  |  polyhead serve {out}")
    return 0


def _untrained(enc):
    from ..modeling.model import MultiTaskModel
    from ..modeling.tasks import TaskSpec, bio_labels

    return MultiTaskModel(
        enc,
        [
            TaskSpec("intent", "classification", ["order_status", "refund", "shipping", "technical_issue", "account", "product_question"]),
            TaskSpec("sentiment", "classification", ["negative", "positive"]),
            TaskSpec("ner", "token", bio_labels(["PER", "ORG", "LOC", "PRODUCT"])),
        ],
    )


def _trained(out: Path):
    from ..training.config import load_config
    from ..modeling.model import load
    from ..training.loop import train

    _print(f"\n== 3. Train intent + sentiment + NER jointly from {EXAMPLE_CONFIG} (a few minutes on 2 CPU cores)")
    cfg = load_config(EXAMPLE_CONFIG)
    try:
        train(cfg, output_dir=out)
    except PolyheadError:
        raise
    except KeyboardInterrupt:
        print("demo: training interrupted", file=sys.stderr)
        raise
    return load(out)
