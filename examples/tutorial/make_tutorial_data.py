"""Make the small data that docs/tutorial.md trains on, from the shipped example inbox.

A support team's export: a CSV of messages with an intent and a sentiment per row (plus a ticket
id that training ignores), and, for the token task added later, a JSON lines file of the same
kind of messages with their words and entity tags (CSV has no way to hold a list per cell).

Standard library only; one fixed seed, so the output is the same every time:

    python examples/tutorial/make_tutorial_data.py
"""
from __future__ import annotations

import csv
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
INBOX = HERE.parent / "data" / "inbox"

TRAIN_PER_INTENT = 36    # 7 intents: 252 training rows
DEV_PER_INTENT = 10      # 70 dev rows
ENTITY_TRAIN = 240
ENTITY_DEV = 60


def read(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def per_intent(rows: list[dict], n: int, rng: random.Random) -> list[dict]:
    """n rows of every intent, in a shuffled order."""
    picked = []
    for intent in sorted({r["intent"] for r in rows}):
        same = [r for r in rows if r["intent"] == intent]
        picked += rng.sample(same, n)
    rng.shuffle(picked)
    return picked


def write_csv(path: Path, rows: list[dict], first_id: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["ticket_id", "message", "intent", "sentiment"])
        for i, r in enumerate(rows):
            writer.writerow([f"T-{first_id + i}", r["text"], r["intent"], r["sentiment"]])


def write_entities(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps({"tokens": r["tokens"], "tags": r["tags"]}, ensure_ascii=False) + "\n")


def main() -> None:
    rng = random.Random(7)
    train, dev = read(INBOX / "train.jsonl"), read(INBOX / "dev.jsonl")
    write_csv(HERE / "tickets-train.csv", per_intent(train, TRAIN_PER_INTENT, rng), 10001)
    write_csv(HERE / "tickets-dev.csv", per_intent(dev, DEV_PER_INTENT, rng), 20001)
    write_entities(HERE / "entities-train.jsonl", rng.sample(train, ENTITY_TRAIN))
    write_entities(HERE / "entities-dev.jsonl", rng.sample(dev, ENTITY_DEV))


if __name__ == "__main__":
    main()
