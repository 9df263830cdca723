"""Where a trained encoder keeps what NER needs: a linear probe on each layer's token states (issue 14).

For every model folder given, each layer's hidden states (0 = the embeddings, then every
transformer layer) at the first sub-token of each word are taken for a seeded sample of CoNLL
training sentences and all dev sentences; a multinomial logistic regression (L-BFGS, fixed L2)
is fit per layer on the training states and scored on dev as word-level entity F1 (the same
scorer as training). The encoder is frozen and the heads are not used: the probe shows how much
entity information each layer holds in linearly readable form, so two encoders trained
differently (one task alone, or jointly with sentence tasks) can be compared layer by layer.

    .venv/bin/python benchmarks/layer_probe.py \
        --model "untrained=runs/untrained-stsb" \
        --model "single-task CoNLL=runs/benchmark/full-teacher/single-conll2003" \
        --model "joint recipe=runs/benchmark/full-recipe/joint" \
        --out benchmarks/results/layer-probe.json

One thread by default (--threads); the sample size is --train-sentences (default 4,000 of 14,041).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from polyhead.bench.harness import machine_description
from polyhead.modeling.model import load
from polyhead.training.config import load_config
from polyhead.training.data import build_sources, collated_batches
from polyhead.training.frozen import fit_softmax_regression
from polyhead.training.metrics import entity_metrics

TASK = "conll2003"


def states(model, src, specs, split: str, batch_size: int = 64) -> tuple[list[torch.Tensor], torch.Tensor, list[list[int]]]:
    """Per layer [P, H] states at labelled positions, the labels [P], and per example its words' row numbers (-1 = cut off)."""
    enc = model.encoder
    per_layer: list[list[torch.Tensor]] = []
    labels: list[torch.Tensor] = []
    rows: dict[int, list[int]] = {}
    count = 0
    with torch.inference_mode():
        for idx, _chunk, batch in collated_batches(src, split, specs, enc.tokenizer, enc.max_length, batch_size):
            out = enc.backbone(**batch["inputs"], output_hidden_states=True)
            lab = batch["labels"][TASK]
            mask = lab != -100
            if not per_layer:
                per_layer = [[] for _ in out.hidden_states]
            for i, h in enumerate(out.hidden_states):
                per_layer[i].append(h[mask].float())
            labels.append(lab[mask])
            # row numbers of each word's first sub-token, in the order of mask (row-major)
            order = torch.full(lab.shape, -1, dtype=torch.long)
            order[mask] = torch.arange(count, count + int(mask.sum()))
            count += int(mask.sum())
            for j, example_index in enumerate(idx):
                rows[example_index] = [int(order[j, t]) if t >= 0 else -1 for t in batch["firsts"][j]]
    n = len(src.splits[split])
    return [torch.cat(p) for p in per_layer], torch.cat(labels), [rows[i] for i in range(n)]


def fit(x: torch.Tensor, y: torch.Tensor, classes: int, l2: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression on standardised x (mean/sd returned folded into the weights)."""
    mean, sd = x.mean(0), x.std(0) + 1e-6
    w, b = fit_softmax_regression((x - mean) / sd, y, l2, torch.zeros(classes, x.shape[1]), torch.zeros(classes), max_iter=300)
    return w / sd, b - (w / sd) @ mean


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, metavar="NAME=MODEL_DIR")
    ap.add_argument("--config", type=Path, default=Path("configs/single/conll2003.yaml"), help="where the CoNLL files are")
    ap.add_argument("--train-sentences", type=int, default=4000)
    ap.add_argument("--l2", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    cfg = load_config(args.config)
    sources, specs = build_sources(cfg, splits=("train", "dev"))
    src = next(s for s in sources if TASK in s.tasks)
    rng = np.random.default_rng(args.seed)
    keep = sorted(rng.choice(len(src.splits["train"]), size=min(args.train_sentences, len(src.splits["train"])), replace=False))
    src.splits["train"] = [src.splits["train"][i] for i in keep]
    label_names = specs[TASK].labels
    gold = [e.labels[TASK] for e in src.splits["dev"]]

    results = []
    t0 = time.time()
    for spec in args.model:
        name, _, folder = spec.partition("=")
        model = load(folder)
        model.eval()
        if model.tasks.get(TASK) is not None and list(model.tasks[TASK].labels) != list(label_names):
            sys.exit(f"{folder}: its {TASK} labels differ from the data's; the probe needs the same label order")
        xs, y, _ = states(model, src, specs, "train")
        xd, _, dev_rows = states(model, src, specs, "dev")
        row = {"name": name, "folder": folder, "layers": []}
        for layer, (xt, xv) in enumerate(zip(xs, xd)):
            w, b = fit(xt, y, len(label_names), args.l2)
            pred = (xv @ w.T + b).argmax(-1).tolist()
            tags = [[label_names[pred[r]] if r >= 0 else "O" for r in rows] for rows in dev_rows]
            f1 = entity_metrics(gold, tags)["entity_f1"]
            row["layers"].append({"layer": layer, "dev_entity_f1": round(float(f1), 4)})
            print(f"{name}: layer {layer}: dev entity F1 {f1:.4f}", file=sys.stderr, flush=True)
        results.append(row)

    doc = {"machine": machine_description(), "argv": sys.argv if argv is None else argv,
           "train_sentences": len(keep), "dev_sentences": len(gold), "l2": args.l2, "threads": args.threads,
           "seconds": round(time.time() - t0, 1), "models": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    layers = max(len(r["layers"]) for r in results)
    lines = ["Linear probe, dev entity F1 per layer (0 = embeddings); "
             f"{len(keep):,} training sentences, {len(gold):,} dev sentences, L2 {args.l2}", "",
             "| layer | " + " | ".join(r["name"] for r in results) + " |", "|---|" + "---|" * len(results)]
    for i in range(layers):
        lines.append(f"| {i} | " + " | ".join(f"{r['layers'][i]['dev_entity_f1']:.4f}" for r in results) + " |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
