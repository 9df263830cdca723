"""One `cmd_*` function per subcommand: argparse arguments in, plain library calls out.

Heavy imports (torch, transformers, the server) happen inside each command, so building the
parser and `polyhead --help` stay instant. This is the only place that reads argparse
namespaces: the library packages take plain arguments and never import the CLI.

The rule for outputs (never lose a user's work): a command replaces an existing file or folder
only when polyhead made it for the same purpose, or with --force (--overwrite for train).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

from ..console import announce_precision, say
from ..errors import PolyheadError
from .backend import encoder_kwargs, graph_model
from .inputs import read_pairs
from ..io import (check_new_file, check_replaceable_dir, read_text, write_bytes_atomic, write_error_reason, write_failure,
                  write_text_atomic)


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


def output_file(path: str | None, force: bool) -> Path | None:
    """The --output file to write (None = stdout), refused before any work if it exists without --force."""
    if not path or path == "-":
        return None
    check_new_file(path, force)
    return Path(path)


def write_output(path: Path | None, lines: list[str]) -> None:
    """Write result lines to stdout, or atomically to a file (a crash never leaves half a file)."""
    if path is None:
        for line in lines:
            sys.stdout.write(line)
        sys.stdout.flush()
        return
    write_output_file(path, lambda: write_text_atomic(path, "".join(lines)))


def write_output_file(path: Path, write: Callable[[], None]) -> None:
    """Run an atomic write of an --output file; a full disk, a read-only or unwritable folder is one
    line that says the target was left as it was (the temporary file is removed)."""
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write()
    except OSError as exc:
        if write_error_reason(exc) is None:
            raise
        kept = f"{path} is as it was" if existed else f"{path} was not created"
        raise write_failure(exc, str(path), kept, "free space (or choose another --output), then run again") from exc


def _is_folder_output(path: str | None) -> bool:
    return bool(path) and (path.endswith(("/", os.sep)) or Path(path).is_dir())


# -- commands -----------------------------------------------------------------------------
def cmd_encode(args: argparse.Namespace) -> int:
    """Embed texts; write JSON lines (default) or a .npy matrix, or stream a file into shards."""
    import numpy as np

    from ..modeling.encoder import Encoder

    if getattr(args, "engine", "local") == "ray":
        return encode_with_ray(args)
    ray_only = [flag for flag, value, default in RAY_ONLY_OPTIONS if getattr(args, value, default) != default]
    if ray_only:
        raise PolyheadError(f"{', '.join(ray_only)} go(es) with --engine ray (for heads here, use polyhead predict)")
    if _is_folder_output(args.output):
        return encode_to_folder(args)
    out = output_file(args.output, args.force)
    texts = gather_texts(args)
    if args.backend != "torch":
        enc = graph_model(args, args.model)
    else:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        enc = Encoder(
            args.model,
            **encoder_kwargs(args),
            device=args.device,
            precision=args.precision,
        )
        announce_precision(enc, args.precision)
    vectors = enc.encode(texts, batch_size=args.batch_size, normalize=False if args.no_normalize else None, show_progress=args.progress)
    if out is not None and out.suffix == ".npy":
        write_output_file(out, lambda: write_bytes_atomic(out, lambda fh: np.save(fh, vectors)))
        say(f"wrote {vectors.shape[0]} x {vectors.shape[1]} embeddings to {out}")
        return 0
    write_output(out, [json.dumps({"text": t, "embedding": to_jsonable(v)}) + "\n" for t, v in zip(texts, vectors)])
    return 0


# (flag, argparse dest, default) of the encode options only --engine ray reads.
RAY_ONLY_OPTIONS = (
    ("--text-column", "text_column", "text"), ("--tasks", "tasks", None),
    ("--output-format", "output_format", None), ("--actors", "actors", None), ("--cpus-per-actor", "cpus_per_actor", 1),
    ("--gpus-per-actor", "gpus_per_actor", None), ("--ray-address", "ray_address", None),
)


def encode_with_ray(args: argparse.Namespace) -> int:
    """`polyhead encode --engine ray --input GLOB --output DIR`: Ray Data actors embed (and label) every row."""
    from ..integrations.ray import encode_files, require_ray

    if getattr(args, "texts", None):
        raise PolyheadError("--engine ray encodes files: give them with --input GLOB, not as arguments")
    if not args.input or args.input == "-":
        raise PolyheadError("--engine ray needs --input GLOB (.parquet, .jsonl or .txt files) and --output DIR")
    if not args.output or args.output == "-":
        raise PolyheadError("--engine ray needs --output DIR (a new or empty folder; --force replaces one)")
    if args.no_resume or args.shard_size != 10000:
        raise PolyheadError("--shard-size and --no-resume go with the local engine's --output DIR/")
    require_ray()  # the install hint before anything else
    tasks: list[str] | None = []
    if args.tasks:
        tasks = None if args.tasks.strip() == "all" else [t.strip() for t in args.tasks.split(",") if t.strip()]
    summary = encode_files(
        args.input, args.output, model_dir=args.model, tasks=tasks, backend=args.backend,
        text_column=args.text_column, output_format=args.output_format, concurrency=args.actors,
        num_cpus=args.cpus_per_actor, num_gpus=args.gpus_per_actor, address=args.ray_address, force=args.force,
        show_progress=args.progress or os.isatty(2), batch_size=args.batch_size, device=args.device,
        precision=args.precision, encoder_kwargs=encoder_kwargs(args),
    )
    rate = f" ({summary['rows_per_s']:.0f} rows/s)" if summary["rows_per_s"] else ""
    say(
        f"encoded {summary['rows']} rows from {summary['inputs']} {summary['input_format']} file(s) with "
        f"{summary['actors']} Ray actor(s) in {summary['seconds']:.1f}s{rate} into {summary['files']} "
        f"{summary['output_format']} file(s) under {summary['output']}"
    )
    return 0


def encode_to_folder(args: argparse.Namespace) -> int:
    """`polyhead encode --input FILE --output DIR/`: stream FILE into shards (several processes under accelerate)."""
    from ..integrations.streaming import encode_to_shards, process_context, process_device
    from ..modeling.encoder import Encoder

    if getattr(args, "texts", None):
        raise PolyheadError("--output DIR/ encodes a file: give it with --input FILE, not as arguments")
    if not args.input or args.input == "-":
        raise PolyheadError("--output DIR/ needs --input FILE (a file, so it can be read in chunks and resumed)")
    if args.input.endswith(".jsonl"):
        raise PolyheadError("--output DIR/ reads plain text, one text per line; convert .jsonl first")
    index, count = process_context()
    device = args.device
    if device is None and count > 1:
        device = process_device()  # one GPU per process when there are GPUs
    if args.backend != "torch":
        enc = graph_model(args, args.model)
    else:
        enc = Encoder(
            args.model,
            **encoder_kwargs(args),
            device=device,
            precision=args.precision,
        )
        if index == 0:
            announce_precision(enc, args.precision)
    summary = encode_to_shards(
        enc,
        args.input,
        args.output,
        shard_size=args.shard_size,
        batch_size=args.batch_size,
        resume=not args.no_resume,
        show_progress=args.progress or os.isatty(2),
        process_index=index,
        num_processes=count,
        normalize=False if args.no_normalize else None,
        force=args.force,
    )
    rate = summary["lines"] / summary["seconds"] if summary["seconds"] > 0 else 0.0
    who = f"process {index + 1}/{count}: " if count > 1 else ""
    say(
        f"{who}encoded {summary['lines']} lines into {summary['shards_written']} shard(s) "
        f"({summary['shards_skipped']} already done) in {summary['seconds']:.1f}s ({rate:.0f} lines/s); "
        f"{summary['total_lines']} lines in {summary['shards']} shard(s) under {args.output}"
    )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Run every head (or --tasks) on each text; one JSON line per text."""
    from ..modeling.model import load

    out = output_file(args.output, args.force)
    pairs = read_pairs(args.pairs) if getattr(args, "pairs", None) else None
    if pairs is not None and (args.texts or args.input):
        raise PolyheadError("give texts or --pairs, not both")
    texts = gather_texts(args) if pairs is None else []  # cheap checks before the model loads
    if args.backend != "torch":
        model = graph_model(args, args.model_dir)
    else:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        model = load(args.model_dir, device=args.device, precision=args.precision)
        announce_precision(model.encoder, args.precision)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    if pairs is not None:
        results = model.predict_pairs(pairs, tasks=tasks, batch_size=args.batch_size)
    else:
        results = model.predict(
            texts, tasks=tasks, batch_size=args.batch_size, embeddings=args.embeddings, show_progress=args.progress
        )
    write_output(out, [json.dumps(to_jsonable(item), ensure_ascii=False) + "\n" for item in results])
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Describe a saved model: encoder choices, tasks, labels, sizes, its card (--card: the card's text)."""
    from ..modeling.card import card_path, read_folder, render_card, retention_line
    from ..modeling.model import load

    if getattr(args, "card", False):
        if not (Path(args.model_dir) / "polyhead.json").is_file():
            load(args.model_dir, device="cpu")  # the loader's one-line error for what is not a model
        card = card_path(args.model_dir)
        if card is None:
            say(f"{args.model_dir} has no model card yet (saved by an older polyhead?): rendered it from its files")
        sys.stdout.write(read_text(card) if card is not None else render_card(args.model_dir))
        return 0
    model = load(args.model_dir, device="cpu")
    info = model.info()
    card = card_path(args.model_dir)
    retention = (read_folder(args.model_dir)["metrics"] or {}).get("retention") or None  # after polyhead train
    if args.json:
        print(json.dumps({**info, "embedding_retention": retention, "model_card": None if card is None else str(card)}, indent=2))
        return 0
    e = info["encoder"]
    print(f"model folder : {args.model_dir}")
    print(f"encoder      : {e['name_or_path']}")
    print(f"embedding    : {e['dim']}-d, pooling={e['pooling']}, normalize={e['normalize']}, max_length={e['max_length']}")
    if isinstance(retention, dict):
        print(f"retention    : {retention_line(retention)} (the embedding against the base encoder's, after training)")
    print(f"parameters   : {info['parameters']:,} (encoder {e['parameters']:,})")
    print(f"tasks        : {len(info['tasks'])}")
    for t in info["tasks"]:
        labels = ", ".join(t["labels"]) if t["labels"] else "-"
        print(f"  {t['name']:<16} {t['kind']:<15} {t['parameters']:>9,} params  labels: {labels}")
    print(f"model card   : {card if card is not None else 'none'} (polyhead info {args.model_dir} --card prints it)")
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
    # Saving replaces the folder: a trained model there would be lost to fresh random heads.
    check_replaceable_dir(args.output, [], "", args.force)  # a new model goes into an empty folder only
    torch.manual_seed(args.seed)
    enc = Encoder(args.model, **encoder_kwargs(args), device="cpu")
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

    return run_demo(output=args.output, train=not args.no_train, config=args.config)


def cmd_train(args: argparse.Namespace) -> int:
    """Train from a YAML config (polyhead.train)."""
    from ..training.api import train

    train(args.config, args.output, overrides=args.set, resume=args.resume, overwrite=args.overwrite, device=args.device,
          progress=not args.no_progress)
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    """Search hyperparameters over training runs of a YAML config (polyhead.tune)."""
    from ..training.tune import tune

    tune(args.config, args.output, args.space, args.trials, overrides=args.set, storage=args.storage,
         study_name=args.study_name, seed=args.seed, device=args.device)
    return 0


def cmd_add_head(args: argparse.Namespace) -> int:
    """Fit CONFIG's tasks as new heads on MODEL_DIR's frozen encoder; write them in place or into --output."""
    from .add_head import run_add_head

    return run_add_head(
        args.model_dir, args.config, output=args.output, overrides=args.set, device=args.device, progress=not args.no_progress
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the HTTP server until interrupted."""
    from ..serving import run_server

    return run_server(args)


def cmd_export(args: argparse.Namespace) -> int:
    """Export a saved model (or a plain encoder folder) to ONNX or OpenVINO."""
    import time

    started = time.perf_counter()
    calibration = getattr(args, "calibration", None)
    if args.format == "openvino":
        from ..onnx.openvino import export_openvino_folder
        from ..onnx.openvino import read_manifest as read_openvino_manifest

        out = export_openvino_folder(args.model_dir, args.output, quantize=args.quantize, calibration=calibration, force=args.force)
        manifest = read_openvino_manifest(out)
        say(f"exported to {out} in {time.perf_counter() - started:.1f}s: " + ", ".join(manifest["files"].values()))
        quant = manifest["quantization"]
        if quant:
            cal = quant["calibration"]
            say(f"int8 (NNCF, static) calibrated on {cal['texts']} texts from {cal['source']}; "
                f"min cosine to fp32 on them {quant['probe_min_cosine_vs_fp32']:.4f}")
        return 0
    if args.format != "onnx":
        raise PolyheadError(f"unknown export format {args.format!r}; choose onnx or openvino")
    if calibration:
        raise PolyheadError("--calibration goes with --format openvino --quantize int8 (ONNX int8 is dynamic: no calibration)")
    from ..onnx import export_folder, read_manifest

    out = export_folder(args.model_dir, args.output, quantize=args.quantize, force=args.force)
    manifest = read_manifest(out)
    fusion = manifest["ort_fusion"]
    say(f"exported to {out} in {time.perf_counter() - started:.1f}s: " + ", ".join(manifest["files"].values()))
    say("ORT fusion: " + (", ".join(f"{k} x{v}" for k, v in fusion["ops"].items()) if fusion["applied"] else fusion["reason"]))
    if manifest["quantization"]:
        say(f"int8: min cosine to fp32 on a probe batch {manifest['quantization']['probe_min_cosine_vs_fp32']:.4f}")
    return 0


def cmd_datasets_fetch(args: argparse.Namespace) -> int:
    """Fetch benchmark datasets into the cache."""
    from ..bench.datasets import fetch

    paths = fetch(args.names or None, cache_dir=args.cache_dir, force=args.force, progress=True)
    for name, path in paths.items():
        print(f"{name}\t{path}")
    return 0


def cmd_datasets_list(args: argparse.Namespace) -> int:
    """List known datasets and their cache state."""
    from ..bench.datasets import DATASETS, dataset_dir, is_complete

    for name, spec in DATASETS.items():
        folder = dataset_dir(name, args.cache_dir)
        state = "cached" if is_complete(folder) else "not fetched"
        print(f"{name:<10} {state:<12} {folder}  ({spec.description})")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    """Run the benchmark suite or the freezing study, or merge earlier results."""
    from ..bench import benchmark as bm
    from ..bench.results import markdown_table, merge_results, results_folder, study_markdown

    command = " ".join(["polyhead", *sys.argv[1:]]) if sys.argv and sys.argv[0].endswith("polyhead") else None
    if args.merge:
        if args.study or args.quick or args.subset or args.resume:
            raise PolyheadError("--merge trains nothing and combines full-data results; drop --study/--quick/--subset/--resume")
        folder = results_folder(args.results_dir, args.output_dir or "runs/benchmark/full")  # default: MERGE_RESULTS_DIR
        print(markdown_table(merge_results(args.merge, folder)))
        return 0
    seeds = bm.parse_seeds(args.seeds) if args.seeds else None
    if args.study:
        from ..bench import study as st

        recipes = dict(st.parse_recipe(r) for r in args.recipe)
        scenarios = args.scenarios.split(",") if args.scenarios else list(st.DEFAULT_STUDY_SCENARIOS)
        scenarios += [r for r in recipes if r not in scenarios]
        subset = bm.QUICK if args.quick else bm.parse_subset(args.subset) if args.subset else bm.STUDY
        out = args.output_dir or ("runs/benchmark/study-quick" if args.quick else "runs/benchmark/study")
        doc = st.run_study(args.config, out, args.results_dir, subset, scenarios, args.set, command, force=args.force,
                           seeds=seeds, jobs=args.jobs, recipes=recipes, single_dir=args.single_dir, results_name=args.name,
                           resume=args.resume)
        print(study_markdown(doc))
        return 0
    if args.recipe or args.name:
        raise PolyheadError("--recipe and --name go with --study")
    out = args.output_dir or ("runs/benchmark/quick" if args.quick else "runs/benchmark/full")
    tasks = args.tasks.split(",") if args.tasks else list(bm.TASKS)
    doc = bm.run_benchmark(
        args.config, args.single_dir, out, args.results_dir, args.quick,
        tasks=tasks,
        runs=args.runs.split(",") if args.runs else bm.RUNS,
        overrides=args.set, command=command,
        subset=bm.parse_subset(args.subset) if args.subset else None,
        force=args.force, seeds=seeds, jobs=args.jobs,
        distill=() if args.distill is None else tasks if args.distill == "all" else args.distill.split(","),
        resume=args.resume,
    )
    print(markdown_table(doc))
    return 0
