"""Ray Data batch inference: embed and label a corpus on every core and machine of a Ray cluster.

`PolyheadPredictor` is the callable class for `ds.map_batches(PolyheadPredictor,
fn_constructor_kwargs={"model_dir": ..., "tasks": [...], "backend": "torch"|"onnx"|"openvino",
"text_column": "text"}, concurrency=N, num_cpus=k)`: each actor loads the model once and runs the
backend's own `predict()` (the `InferenceModel` contract), so decoding is exactly that of
`polyhead predict` and the server; torch / ONNX Runtime threads follow the actor's CPUs.
Output: the input columns plus `embedding` (fixed-size float32 list), `<task>_label`,
`<task>_score`, `<task>_scores` (classification) and `<task>_entities` (token heads).
`encode_files` is the file-to-folder job behind `polyhead encode --engine ray`. Usage, columns
and cluster set-up: docs/scale.md. Ray is optional (`pip install 'polyhead[ray]'`), imported
only where needed; expected failures are one-line PolyheadErrors, from inside actors too
(`polyhead_errors` / `unwrap_error` recover them from Ray's wrapped exceptions).
"""
from __future__ import annotations

import contextlib
import glob
import os
import re
import socket
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..errors import PolyheadError
from ..io import check_replaceable_dir, write_atomic_dir

INSTALL_HINT = "pip install 'polyhead[ray]'"
# File formats `encode_files` reads (by extension) and writes.
INPUT_FORMATS = {".parquet": "parquet", ".jsonl": "jsonl", ".json": "jsonl", ".txt": "text"}
OUTPUT_FORMATS = ("parquet", "jsonl")
# Logical CPUs a local cluster started by `encode_files` gets on top of the machine's, for Ray
# Data's file listing / reading / writing tasks (see encode_files).
IO_CPUS = 1
# auto is left out: every actor would measure at once, on a busy machine; measure once with
# `polyhead encode --backend auto` on one node and name the winner here.
BACKENDS = ("torch", "onnx", "openvino")
# Rows handed to an actor per call. The backend then sorts them by length and runs forward
# passes of `batch_size` texts, so a large call pads less than many small ones.
DEFAULT_ROWS_PER_CALL = 512


def require_ray() -> Any:
    """The `ray` module, or a one-line PolyheadError saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (the [data] extra: pyarrow, pandas)
    except ImportError as exc:
        raise PolyheadError(f"Ray is not installed ({exc.name or exc}); run: {INSTALL_HINT}") from None
    return ray


def actor_cpus() -> float | None:
    """The CPUs Ray assigned to the current actor or task; None outside a Ray worker."""
    try:
        import ray

        if not ray.is_initialized():
            return None
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    except Exception:  # not a worker (the driver asserts), or Ray missing
        return None
    return float(cpus) if cpus else None


def threads_for(cpus: float | None) -> int | None:
    """Intra-op threads for an actor with `cpus` CPUs (at least 1; None: leave the default)."""
    return None if cpus is None else max(1, int(cpus))


def load_inference_model(
    model_dir: str | os.PathLike | None = None, backend: str = "torch", device: str | None = None,
    precision: str = "fp32", threads: int | None = None, onnx_variant: str | None = None,
    encoder_kwargs: dict[str, Any] | None = None,
) -> Any:
    """An `InferenceModel` for MODEL_DIR: a polyhead model, a plain encoder folder or hub name
    (wrapped as a model with no heads; `encoder_kwargs` are its pooling/normalize/max_length),
    the bundled encoder (None), or with backend="onnx"/"openvino" an export (MODEL_DIR, MODEL_DIR/onnx or
    MODEL_DIR/openvino); onnx_variant picks its fp32 or int8 file."""
    from ..onnx.backends import load_backend

    check_model_dir(model_dir, backend, where=f" (on {socket.gethostname()})")
    return load_backend(
        model_dir, backend, device=device, precision=precision, threads=threads, variant=onnx_variant,
        encoder_kwargs=encoder_kwargs, announce=False,
    )


def _looks_like_path(name: str) -> bool:
    # A hub name is "org/name"; anything else with a separator, or a leading . or ~, is a path.
    return name.startswith((".", "~", os.sep)) or name.count("/") > 1 or os.sep != "/" and os.sep in name


class PolyheadPredictor:
    """A Ray Data callable class: `ds.map_batches(PolyheadPredictor, fn_constructor_kwargs={...})`.

    model_dir: polyhead model, plain encoder folder or hub name, or ONNX export (backend="onnx");
    None: the bundled all-MiniLM-L6-v2. tasks: heads to run (default every per-text head; []:
    embeddings only). batch_size: texts per forward pass. threads: default the actor's CPUs.
    encoder_kwargs: pooling/normalize/max_length of a plain encoder. worker_column: if set, a
    "host:pid" column naming the actor that made each row. Works without Ray too (one process).
    """

    def __init__(
        self, model_dir: str | os.PathLike | None = None, tasks: Sequence[str] | None = None, backend: str = "torch",
        text_column: str = "text", batch_size: int = 32, embeddings: bool = True, device: str | None = None,
        precision: str = "fp32", onnx_variant: str | None = None, threads: int | None = None,
        encoder_kwargs: dict[str, Any] | None = None, worker_column: str | None = None,
    ) -> None:
        from ..modeling.heads import per_text_tasks
        from ..modeling.model import select_tasks

        if batch_size < 1:
            raise PolyheadError(f"batch_size must be at least 1, got {batch_size}")
        self.text_column = text_column
        self.batch_size = int(batch_size)
        self.embeddings = bool(embeddings)
        self.worker_column = worker_column
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.threads = threads or threads_for(actor_cpus())
        self.model = load_inference_model(
            model_dir, backend, device=device, precision=precision, threads=self.threads,
            onnx_variant=onnx_variant, encoder_kwargs=encoder_kwargs,
        )
        chosen = select_tasks(self.model.tasks, None if tasks is None else list(tasks))
        self.tasks = per_text_tasks(self.model.tasks, chosen)
        if tasks is not None and len(self.tasks) < len(chosen):
            pairs = ", ".join(t for t in chosen if t not in self.tasks)
            raise PolyheadError(f"task(s) {pairs} score text pairs, not single texts; leave them out of tasks")
        self.columns = self.output_columns()

    def describe(self) -> dict[str, Any]:
        """What this actor runs: worker, threads (torch's own count on the torch backend), backend, tasks."""
        facts = {"worker": self.worker, "threads": self.threads, "backend": self.model.backend, "tasks": list(self.tasks)}
        if self.model.backend == "torch":
            import torch

            facts["torch_threads"] = torch.get_num_threads()
        return facts

    # -- schema ---------------------------------------------------------------------------
    def output_columns(self) -> dict[str, Any]:
        """The columns this predictor adds, name -> pyarrow type, in output order."""
        import pyarrow as pa

        cols: dict[str, Any] = {}
        if self.embeddings:
            cols["embedding"] = pa.list_(pa.float32(), int(self.model.describe()["dimensions"]))
        from ..kinds import kind_of

        for name in self.tasks:
            spec = self.model.tasks[name]
            for suffix, kind_type in kind_of(spec.kind).arrow_columns(spec).items():
                cols[f"{name}_{suffix}"] = kind_type
        if self.worker_column:
            cols[self.worker_column] = pa.string()
        return cols

    # -- the batch ------------------------------------------------------------------------
    def __call__(self, batch: Any) -> Any:
        """One Ray Data batch (pyarrow, pandas or numpy format) in, a pyarrow.Table out."""
        import pyarrow as pa

        table = to_arrow(batch)
        if self.text_column not in table.column_names:
            raise PolyheadError(
                f"no column {self.text_column!r} in the dataset (it has {', '.join(table.column_names) or 'none'}); "
                "name the text column with text_column"
            )
        taken = [c for c in self.columns if c in table.column_names]
        if taken:
            raise PolyheadError(f"the dataset already has column(s) {', '.join(taken)}; rename or drop them first")
        texts = table.column(self.text_column).to_pylist()
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            what = "null" if texts[bad] is None else f"a {type(texts[bad]).__name__}"
            raise PolyheadError(f"column {self.text_column!r} holds {what} (row {bad} of a batch), not a string")
        results = self.model.predict(texts, tasks=self.tasks, batch_size=self.batch_size, embeddings=self.embeddings)
        for name, values in self.column_values(results).items():
            table = table.append_column(name, pa.array(values, type=self.columns[name]) if not isinstance(values, pa.Array) else values)
        return table

    def column_values(self, results: list[dict[str, Any]]) -> dict[str, Any]:
        """The added columns' values for `predict()` results, in `self.columns` order."""
        import pyarrow as pa

        out: dict[str, Any] = {}
        n = len(results)
        if self.embeddings:
            dim = self.columns["embedding"].list_size
            flat = np.asarray([r["embedding"] for r in results], dtype=np.float32).reshape(n * dim)
            out["embedding"] = pa.FixedSizeListArray.from_arrays(pa.array(flat, type=pa.float32()), dim)
        from ..kinds import kind_of

        for name in self.tasks:
            spec = self.model.tasks[name]
            preds = [r["tasks"][name] for r in results]
            for suffix, values in kind_of(spec.kind).arrow_values(spec, preds).items():
                out[f"{name}_{suffix}"] = values
        if self.worker_column:
            out[self.worker_column] = [self.worker] * n
        return out


def to_arrow(batch: Any) -> Any:
    """A Ray Data batch (pyarrow.Table, pandas.DataFrame or dict of numpy arrays) as a pyarrow.Table."""
    import pyarrow as pa

    if isinstance(batch, pa.Table):
        return batch
    if isinstance(batch, dict):
        from ray.data.block import BlockAccessor  # keeps tensor columns as Ray's tensor type

        block = BlockAccessor.batch_to_block(batch)
        return block if isinstance(block, pa.Table) else pa.Table.from_pandas(block, preserve_index=False)
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - ray[data] brings pandas
        pd = None
    if pd is not None and isinstance(batch, pd.DataFrame):
        return pa.Table.from_pandas(batch, preserve_index=False)
    raise PolyheadError(f"cannot read a Ray Data batch of type {type(batch).__name__}")


def predict_dataset(
    ds: Any, model_dir: str | os.PathLike | None = None, tasks: Sequence[str] | None = None, backend: str = "torch",
    text_column: str = "text", concurrency: int = 1, num_cpus: float | None = 1, num_gpus: float | None = None,
    rows_per_call: int = DEFAULT_ROWS_PER_CALL, **predictor_kwargs: Any,
) -> Any:
    """`ds.map_batches(PolyheadPredictor, ...)` with polyhead's defaults: the lazy output Dataset."""
    if concurrency < 1:
        raise PolyheadError(f"concurrency must be at least 1, got {concurrency}")
    if rows_per_call < 1:
        raise PolyheadError(f"rows_per_call must be at least 1, got {rows_per_call}")
    kwargs = {"model_dir": None if model_dir is None else str(model_dir), "tasks": None if tasks is None else list(tasks),
              "backend": backend, "text_column": text_column, **predictor_kwargs}
    resources: dict[str, Any] = {}
    if num_cpus is not None:
        resources["num_cpus"] = num_cpus
    if num_gpus:
        resources["num_gpus"] = num_gpus
    from ray.data import ActorPoolStrategy

    return ds.map_batches(
        PolyheadPredictor, fn_constructor_kwargs=kwargs, batch_size=rows_per_call, batch_format="pyarrow",
        compute=ActorPoolStrategy(size=concurrency), **resources,
    )


def unwrap_error(exc: BaseException) -> PolyheadError | None:
    """The PolyheadError behind an exception Ray raised in the driver (from an actor), if any.

    Ray re-raises an actor's exception as a RayTaskError / UserCodeException whose cause chain
    carries the original, or (a constructor that raised) as an ActorDiedError that keeps only
    the remote traceback's text; either way the PolyheadError's one-line message is recovered.
    """
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    found: str | None = None
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, PolyheadError) and type(e).__module__.startswith("polyhead"):
            return e  # the original, not Ray's dynamic RayTaskError(PolyheadError) subclass
        lines = _ERROR_LINE.findall(str(e))
        if lines and found is None:
            found = lines[-1].strip()
        todo += [e.__cause__, e.__context__, getattr(e, "cause", None)]
    return PolyheadError(found) if found else None


_ERROR_LINE = re.compile(r"^(?:\S*\.)?PolyheadError: (.+)$", re.MULTILINE)


@contextlib.contextmanager
def polyhead_errors() -> Iterator[None]:
    """Run a Ray Data job (write_parquet, take_all, ...) so that a PolyheadError raised in an
    actor reaches the caller as that one-line PolyheadError, not as Ray's wrapped traceback."""
    try:
        yield
    except PolyheadError:
        raise
    except Exception as exc:
        err = unwrap_error(exc)
        if err is None:
            raise
        raise PolyheadError(str(err)) from None


# -- files in, files out: what `polyhead encode --engine ray` runs --------------------------------
def expand_inputs(pattern: str | Sequence[str]) -> tuple[list[str], str]:
    """(the files matching a glob or list of paths, their format); one format for all of them."""
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    files: list[str] = []
    for pat in patterns:
        if "://" in pat:  # s3://, gs://, ...: Ray's readers expand it
            files.append(pat)
            continue
        p = Path(pat).expanduser()
        if p.is_dir():
            matches = sorted(str(f) for f in p.iterdir() if f.suffix in INPUT_FORMATS and f.is_file())
        else:
            matches = sorted(glob.glob(str(p), recursive=True))
        if not matches:
            raise PolyheadError(f"no input files match {pat}")
        files += matches
    formats = {INPUT_FORMATS.get(Path(f.split("?")[0]).suffix.lower()) for f in files}
    if None in formats:
        odd = next(f for f in files if Path(f.split("?")[0]).suffix.lower() not in INPUT_FORMATS)
        raise PolyheadError(f"{odd}: cannot tell its format; inputs end in {', '.join(INPUT_FORMATS)}")
    if len(formats) > 1:
        raise PolyheadError(f"the inputs mix formats ({', '.join(sorted(formats))}); give one kind of file")
    return files, formats.pop()


def check_model_dir(model_dir: str | os.PathLike | None, backend: str, where: str = "") -> None:
    """Cheap checks (in the driver before any actor starts, and in each actor): the backend is
    known, the folder exists (a name like org/model is a hub name), an ONNX export is there."""
    if backend not in BACKENDS:
        extra = " (auto measures on one machine: run `polyhead encode --backend auto` there and name its choice)" if backend == "auto" else ""
        raise PolyheadError(f"unknown backend {backend!r} for Ray; choose one of {', '.join(BACKENDS)}{extra}")
    if model_dir is None:
        if backend != "torch":
            raise PolyheadError(f"backend {backend} needs a model folder (an exported model: polyhead export MODEL_DIR --format {backend})")
        return
    path = Path(model_dir).expanduser()
    if not path.exists() and "://" not in str(model_dir) and _looks_like_path(str(model_dir)):
        raise PolyheadError(f"model folder {model_dir} does not exist{where}")
    if backend == "onnx":
        from ..onnx.runtime import find_onnx_dir

        find_onnx_dir(path)
    elif backend == "openvino":
        from ..onnx.openvino import find_openvino_dir

        find_openvino_dir(path)


def read_dataset(files: list[str], fmt: str, text_column: str) -> Any:
    """The input files as a Ray Dataset (text files: one text per line in column "text")."""
    ray = require_ray()
    if fmt == "parquet":
        return ray.data.read_parquet(files)
    if fmt == "jsonl":
        return ray.data.read_json(files)
    if text_column != "text":
        raise PolyheadError(f"text files give their lines as column 'text', not {text_column!r}")
    return ray.data.read_text(files)


def encode_files(
    inputs: str | Sequence[str], output: str | os.PathLike, model_dir: str | os.PathLike | None = None,
    tasks: Sequence[str] | None = (), backend: str = "torch", text_column: str = "text",
    output_format: str | None = None, concurrency: int | None = None, num_cpus: float = 1,
    num_gpus: float | None = None, address: str | None = None, force: bool = False, show_progress: bool = False,
    preserve_order: bool = True, **predictor_kwargs: Any,
) -> dict[str, Any]:
    """Embed (and with `tasks`, label) every row of INPUTS on a Ray cluster into folder OUTPUT.

    INPUTS: a glob, folder or list of .parquet / .jsonl / .txt files. OUTPUT (a new or empty
    folder, or any folder with `force`) receives parquet or jsonl part files, written to a temp
    folder beside it and renamed into place, so a failed job leaves no half output. tasks=()
    (the default) embeds only; None runs every per-text head. concurrency: actors (default: as
    many as the cluster's CPUs or GPUs allow). A local cluster is started when none is running
    (address None and no RAY_ADDRESS), and shut down at the end. Returns a summary dict.
    """
    ray = require_ray()
    files, in_format = expand_inputs(inputs)
    out_format = output_format or ("parquet" if in_format == "parquet" else "jsonl")
    if out_format not in OUTPUT_FORMATS:
        raise PolyheadError(f"unknown output format {out_format!r}; choose {' or '.join(OUTPUT_FORMATS)}")
    remote_output = "://" in str(output)
    if not remote_output:
        check_replaceable_dir(output, [], "an encode output folder", force)
    check_model_dir(model_dir, backend)
    if num_cpus is not None and num_cpus <= 0:
        raise PolyheadError(f"CPUs per actor must be above 0, got {num_cpus}")
    started, local = False, False
    if not ray.is_initialized():
        local = not (address or os.environ.get("RAY_ADDRESS"))
        # On a local cluster, Ray Data's file listing, reading and writing tasks need a CPU of
        # their own besides the actors' (else N actors on N cores wait forever for them): one
        # extra logical CPU is kept for that light I/O work.
        extra = {"num_cpus": (os.cpu_count() or 1) + IO_CPUS} if local else {}
        ray.init(address=address, include_dashboard=False, logging_level="WARNING", **extra)
        started = True
    try:
        concurrency = actor_count(ray, concurrency, num_cpus, num_gpus, reserved_cpus=IO_CPUS if local else 0,
                                  check=local)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = bool(show_progress)
        if not show_progress:  # without bars, Ray Data logs its progress instead: keep that quiet too
            import logging

            # Ray 2.10 draws its per-operator bars whenever verbose_progress is on (its default
            # there), whatever enable_progress_bars says.
            ctx.execution_options.verbose_progress = False

            logging.getLogger("ray.data").setLevel(logging.WARNING)
        ctx.execution_options.preserve_order = bool(preserve_order)
        ds = read_dataset(files, in_format, text_column)
        out = predict_dataset(
            ds, model_dir, tasks=None if tasks is None else list(tasks), backend=backend, text_column=text_column,
            concurrency=concurrency, num_cpus=num_cpus, num_gpus=num_gpus, **predictor_kwargs,
        )
        start = time.perf_counter()

        def write(folder: Path | str) -> None:
            with polyhead_errors():
                if out_format == "parquet":
                    out.write_parquet(str(folder))
                else:
                    out.write_json(str(folder))

        if remote_output:
            write(str(output))
            rows, written = None, None
        else:
            write_atomic_dir(Path(output), write)
            written = sorted(p for p in Path(output).iterdir() if p.is_file())
            rows = count_rows(written, out_format)
        seconds = time.perf_counter() - start
    finally:
        if started:
            ray.shutdown()
    return {
        "inputs": len(files), "input_format": in_format, "output": str(output), "output_format": out_format,
        "files": None if written is None else len(written), "rows": rows, "actors": concurrency,
        "seconds": seconds, "rows_per_s": None if not rows or seconds <= 0 else rows / seconds,
    }


def actor_count(
    ray: Any, wanted: int | None, num_cpus: float | None, num_gpus: float | None, reserved_cpus: float = 0,
    check: bool = False,
) -> int:
    """The actors to run: `wanted`, or as many as the cluster's CPUs (GPUs) hold, less
    `reserved_cpus`; checked on a local cluster, where asking for more than it has would wait forever."""
    total = ray.cluster_resources()
    if num_gpus:
        room, need, what = float(total.get("GPU", 0)), float(num_gpus), "GPU"
    else:
        room, need, what = float(total.get("CPU", 0)) - reserved_cpus, float(num_cpus or 1), "CPU"
    fits = int(room // need) if need > 0 else 0
    if wanted is None:
        if fits < 1:
            raise PolyheadError(f"the Ray cluster has {room:g} {what}(s); one actor needs {need:g}")
        return fits
    if wanted < 1:
        raise PolyheadError(f"actors must be at least 1, got {wanted}")
    if check and wanted > fits:
        raise PolyheadError(
            f"{wanted} actor(s) x {need:g} {what} need {wanted * need:g} {what}(s); this machine's Ray cluster has "
            f"{room:g}: ask for fewer actors or fewer {what}s per actor"
        )
    return wanted


def count_rows(files: Sequence[Path], fmt: str) -> int:
    """Rows in written part files (parquet: from the footers; jsonl: lines)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(f).metadata.num_rows for f in files if f.suffix == ".parquet")
    n = 0
    for f in files:
        with open(f, "rb") as fh:
            n += sum(1 for line in fh if line.strip())
    return n
