"""Small data files and configs for training tests (tiny BERT saved as a local encoder folder)."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from conftest import make_tiny_encoder

TOPICS = {
    "sports": ["the team won the match", "a great goal in the final", "the striker scored twice", "tennis champion wins"],
    "tech": ["new phone has a fast chip", "the laptop battery lasts long", "software update fixes bugs", "the app crashed again"],
}
NER = [
    (["Anna", "lives", "in", "Paris", "."], ["B-PER", "O", "O", "B-LOC", "O"]),
    (["Bob", "Smith", "visited", "Rome"], ["B-PER", "I-PER", "O", "B-LOC"]),
    (["nothing", "here"], ["O", "O"]),
    (["Carla", "went", "to", "New", "York"], ["B-PER", "O", "O", "B-LOC", "I-LOC"]),
]


def tiny_encoder_dir(root: Path) -> Path:
    """Save the tiny random BERT + real tokenizer as an encoder folder a config can name."""
    folder = root / "tiny-encoder"
    if not (folder / "config.json").exists():
        make_tiny_encoder(max_length=32).save_backbone(folder)  # the configs below ask for 32 too
    return folder


def write_data(root: Path) -> dict[str, Path]:
    """Classification jsonl, a CoNLL file, and a pair file, each with train and dev."""
    root.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, reps in (("train", 4), ("dev", 1)):
        rows = [{"text": t, "label": lab} for _ in range(reps) for lab, ts in TOPICS.items() for t in ts]
        p = root / f"topic_{split}.jsonl"
        p.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
        paths[f"topic_{split}"] = p
        lines = []
        for _ in range(reps):
            for words, tags in NER:
                lines += [f"{w} {t}" for w, t in zip(words, tags)] + [""]
        p = root / f"ner_{split}.conll"
        p.write_text("\n".join(lines), encoding="utf-8")
        paths[f"ner_{split}"] = p
        pairs = [{"sentence1": a, "sentence2": b, "score": s} for a, b, s in [
            ("a cat sits", "a cat is sitting", 4.8), ("a dog runs", "stocks fell", 0.2),
            ("the sun is hot", "it is sunny", 3.5), ("he plays piano", "a man eats", 0.5)] * reps]
        p = root / f"sts_{split}.jsonl"
        p.write_text("\n".join(json.dumps(r) for r in pairs) + "\n", encoding="utf-8")
        paths[f"sts_{split}"] = p
    return paths


# The unit tests' runs leave out the embedding anchor and the refit stage, which the defaults turn
# on: each costs an extra pass over the data, and most tests are about something else. The tests of
# those defaults ask for them (anchor_weight=None: the default; refit_heads=True).
TEST_TRAINING = {"anchor_weight": 0.0, "refit_heads": False}


def write_config(root: Path, **training) -> Path:
    """A three-task config (classification, token, similarity) on the tiny encoder."""
    paths = write_data(root / "data")
    cfg = {
        "encoder": {"model": str(tiny_encoder_dir(root)), "max_length": 32},
        "tasks": [
            {"name": "topic", "kind": "classification", "train": str(paths["topic_train"]), "dev": str(paths["topic_dev"])},
            {"name": "ner", "kind": "token", "train": str(paths["ner_train"]), "dev": str(paths["ner_dev"])},
            {"name": "sts", "kind": "similarity", "train": str(paths["sts_train"]), "dev": str(paths["sts_dev"]), "score_range": [0, 5]},
        ],
        "training": {"epochs": 2, "batch_size": 4, "lr": 1e-3, "seed": 7, "log_every": 1, **TEST_TRAINING, **training},
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path
