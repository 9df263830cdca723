"""Is a joint model's CoNLL gap in the entities it saw in training, or in new ones? (issue 14)

Dev and test CoNLL-2003 F1 of pairs of models (joint A, single-task B of the same seed), split by
mention: an entity is *seen* when its words (as one string, any type) are a gold entity somewhere
in the training file, *unseen* otherwise. Gold and predicted entities are split the same way (a
predicted entity is unseen when its words are), so each group's precision, recall and F1 are
the conlleval ones restricted to that group. The test split (December 1996 news) has more unseen
mentions than dev (August 1996, like train): if the joint model's gap sits in the unseen
mentions, a dev score level with the single-task model's can still come with a test gap.

Each row's interval is a paired bootstrap over sentences (10,000 resamples, the same ones for every
pair and group), as benchmarks/paired.py does for the whole split; the mean over pairs is resampled
the same way. Models are scored in fp32 on the CPU; the whole-split F1 is checked against
polyhead's own metric.

    .venv/bin/python benchmarks/conll_seen.py \
        --pair "seed 42=runs/benchmark/full-dmlp-s42/joint-s42,runs/benchmark/full-teacher-s42/single-conll2003-s42" \
        --out benchmarks/results/conll-seen.json
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from paired import ROOT, metric, parse_pairs, run_script, score, write_report  # noqa: E402  (also puts src/ on the path)

from polyhead.bench.harness import machine_description  # noqa: E402
from polyhead.modeling.model import load  # noqa: E402
from polyhead.training.config import load_config  # noqa: E402
from polyhead.training.data import build_sources  # noqa: E402

TASK = "conll2003"
GROUPS = ("all", "seen", "unseen")


def entities(tags: list[str]) -> list[tuple[str, int, int]]:
    from seqeval.metrics.sequence_labeling import get_entities

    return [tuple(e) for e in get_entities(list(tags))]


def train_mentions(examples: list) -> set[str]:
    """Every gold entity's words, joined by spaces, in the training examples."""
    out = set()
    for ex in examples:
        for _, start, end in entities(ex.labels[TASK]):
            out.add(" ".join(ex.words[start:end + 1]))
    return out


def group_rows(words: list[list[str]], gold: list, pred: list, seen: set[str]) -> dict[str, np.ndarray]:
    """Per sentence and group: [true positives, predicted, gold entities]."""
    out = {g: [] for g in GROUPS}
    for w, g, p in zip(words, gold, pred):
        ge, pe = set(entities(g)), set(entities(p))
        for group in GROUPS:
            def keep(e: tuple[str, int, int]) -> bool:
                if group == "all":
                    return True
                return (" ".join(w[e[1]:e[2] + 1]) in seen) == (group == "seen")
            gk, pk = {e for e in ge if keep(e)}, {e for e in pe if keep(e)}
            out[group].append([len(gk & pk), len(pk), len(gk)])
    return {g: np.array(v, dtype=float) for g, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pair", action="append", required=True, metavar="LABEL=JOINT_DIR,SINGLE_DIR")
    ap.add_argument("--names", default="joint,single", metavar="A,B")
    ap.add_argument("--config", default=str(ROOT / "configs" / "single" / f"{TASK}.yaml"))
    ap.add_argument("--resamples", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    first, _, second = args.names.partition(",")
    parsed = parse_pairs(args.pair)

    cfg = load_config(args.config)
    cfg.tasks = [t for t in cfg.tasks if t.name == TASK]
    sources, _ = build_sources(cfg, splits=("train", "dev", "test"))
    src = next(s for s in sources if TASK in s.tasks)
    seen = train_mentions(src.splits["train"])
    sources = [src]
    rng = np.random.default_rng(args.seed)
    doc: dict = {"machine": machine_description(), "argv": sys.argv, "difference": f"{first} - {second}",
                 "train_mentions": len(seen), "resamples": args.resamples, "splits": {}}
    models: dict[str, object] = {}

    def model(folder: str):
        if folder not in models:
            models[folder] = load(folder, device="cpu")
        return models[folder]

    for split in ("dev", "test"):
        words = [ex.words for ex in src.splits[split]]
        gold_all = [ex.labels[TASK] for ex in src.splits[split]]
        counts = {g: 0 for g in GROUPS}
        for w, g in zip(words, gold_all):
            for _, s, e in entities(g):
                counts["seen" if " ".join(w[s:e + 1]) in seen else "unseen"] += 1
        counts["all"] = counts["seen"] + counts["unseen"]
        n = len(words)
        resample = np.stack([rng.multinomial(n, np.full(n, 1 / n)) for _ in range(args.resamples)])
        pairs, boots = [], {g: [] for g in GROUPS}
        for label, a, b in parsed:
            entry: dict = {"label": label, first: a, second: b}
            rows = {}
            for name, folder in ((first, a), (second, b)):
                gold, pred, official = score(Path(folder), model(folder), sources, TASK, split)
                rows[name] = group_rows(words, gold, pred, seen)
                mine = float(metric(TASK, rows[name]["all"].sum(0), n))
                if abs(mine - official) > 1e-9:
                    sys.exit(f"{folder}: {split} F1 {mine} differs from polyhead's {official}")
                print(f"{split} {label} {name}: entity F1 {official:.4f}", file=sys.stderr)
            for g in GROUPS:
                fa = float(metric(TASK, rows[first][g].sum(0), n))
                fb = float(metric(TASK, rows[second][g].sum(0), n))
                boot = 100 * (metric(TASK, resample @ rows[first][g], n) - metric(TASK, resample @ rows[second][g], n))
                boots[g].append(boot)
                lo, hi = np.percentile(boot, [2.5, 97.5])
                entry[g] = {f"{first}_f1": round(fa, 4), f"{second}_f1": round(fb, 4), "difference_points": round(100 * (fa - fb), 2),
                            "ci95_points": [round(float(lo), 2), round(float(hi), 2)]}
            pairs.append(entry)
        mean = {}
        for g in GROUPS:
            b = np.stack(boots[g]).mean(0)
            lo, hi = np.percentile(b, [2.5, 97.5])
            mean[g] = {"difference_points": round(float(np.mean([p[g]["difference_points"] for p in pairs])), 2),
                       "ci95_points": [round(float(lo), 2), round(float(hi), 2)]}
        doc["splits"][split] = {"sentences": n, "gold_mentions": counts,
                                "unseen_share": round(counts["unseen"] / max(counts["all"], 1), 4), "pairs": pairs, "mean_over_pairs": mean}

    lines = [f"CoNLL-2003 entity F1 by mention ({first} − {second}, points; seen = the mention's words are a gold "
             f"entity in the training file; {doc['train_mentions']:,} distinct training mentions)", "",
             "| split | group | gold mentions | " + " | ".join(p["label"] for p in doc["splits"]["test"]["pairs"])
             + " | mean over pairs (95% CI) |",
             "|---|---|---|" + "---|" * (len(parsed) + 1)]
    for split, d in doc["splits"].items():
        for g in GROUPS:
            cells = [f"{p[g][second + '_f1']:.4f} → {p[g]['difference_points']:+.2f}" for p in d["pairs"]]
            m = d["mean_over_pairs"][g]
            lines.append(f"| {split} | {g} | {d['gold_mentions'][g]:,} | " + " | ".join(cells)
                         + f" | {m['difference_points']:+.2f} ({m['ci95_points'][0]:+.2f} to {m['ci95_points'][1]:+.2f}) |")
    lines += ["", f"(each pair's cell: {second} F1 → {first} − {second} in points)"]
    write_report(args.out, doc, lines)


if __name__ == "__main__":
    run_script(main, "conll_seen.py")
