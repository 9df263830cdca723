"""Corpus-scale encoding: stream a text file into .npy shards with an index, resumable and multi-process.

Output folder layout:

    run.json             what is being encoded: input fingerprint, shard size, encoder choices
    shard-00000.npy      float32 (count, dim) embeddings of lines [first_line, first_line + count)
    shard-00000.json     the shard's record: file, first_line, count, dim (written after the .npy)
    ...
    index.jsonl          every finished shard's record, in order (rebuilt at the end of each run)

Line k (0-based) of the input belongs to shard k // shard_size, and shard s belongs to process
s % num_processes, so processes never share work and every line lands in exactly one shard.
A shard counts as finished only when its .json record exists; both files are written to a
temporary name and renamed, so an interrupted run never leaves a half-written shard behind.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..console import progress
from ..errors import PolyheadError
from ..io import check_replaceable_dir, write_bytes_atomic, write_error_reason, write_failure, write_json_atomic

RUN_FILE = "run.json"
INDEX_FILE = "index.jsonl"
FORMAT_NAME = "polyhead-shards"
FORMAT_VERSION = 1
DEFAULT_SHARD_SIZE = 10_000
_CHUNK = 1 << 20


def shard_name(shard: int) -> str:
    """File stem of shard number `shard`, e.g. shard-00042."""
    return f"shard-{shard:05d}"


def process_context() -> tuple[int, int]:
    """(process index, process count): from accelerate when launched by it (or torchrun), else (0, 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    state = _state()
    return int(state.process_index), int(state.num_processes)


def process_device() -> Any:
    """This process's device under accelerate (one GPU per process when there are GPUs)."""
    return _state().device


def _state() -> Any:
    import torch
    from accelerate import PartialState

    # Without GPUs, accelerate only sets up a (gloo) process group when told it runs on CPU.
    return PartialState(cpu=not torch.cuda.is_available())


def count_lines(path: str | os.PathLike) -> int:
    """Number of lines in a file (a last line without a newline counts), read in 1 MiB chunks."""
    n, last = 0, b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


def iter_lines(path: str | os.PathLike) -> Iterator[str]:
    """Yield the file's lines lazily, without line endings; '\\n' (and '\\r\\n') end a line.

    Splitting on '\\n' only (not on the other characters str.splitlines knows) keeps line
    numbers identical to `wc -l` / `sed -n`, so shard records map back to the file.
    """
    with open(path, "rb") as fh:
        for no, raw in enumerate(fh):
            if no == 0 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                raise PolyheadError(f"{path}:{no + 1}: not UTF-8 text; convert it first, e.g. iconv -t UTF-8") from None


def _fingerprint(path: Path) -> dict[str, Any]:
    """Size plus a hash of the first and last MiB: cheap, and catches a changed or grown file."""
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        h.update(fh.read(_CHUNK))
        if size > _CHUNK:
            fh.seek(max(_CHUNK, size - _CHUNK))
            h.update(fh.read(_CHUNK))
    return {"path": str(path.resolve()), "size": size, "sha256_head_tail": h.hexdigest()}


def _encoder_info(encoder: Any) -> dict[str, Any]:
    info = dict(encoder.config_dict()) if hasattr(encoder, "config_dict") else {}
    info["precision"] = str(getattr(encoder, "precision", "unknown"))
    return info


def _shard_done(out: Path, shard: int, first_line: int, dim: int) -> bool:
    rec_path = out / f"{shard_name(shard)}.json"
    npy = out / f"{shard_name(shard)}.npy"
    if not rec_path.is_file() or not npy.is_file():
        return False
    try:
        rec = json.loads(rec_path.read_text(encoding="utf-8"))
        arr = np.load(npy, mmap_mode="r")  # reads the header only
    except (OSError, ValueError):
        return False
    return rec.get("first_line") == first_line and arr.shape == (rec.get("count"), dim)


def _check_run(out: Path, run: dict[str, Any], resume: bool) -> None:
    """Compare with a previous run in the folder: resume it, or refuse to mix two different runs."""
    path = out / RUN_FILE
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = {}
    keys = ("input", "shard_size", "encoder", "normalize")
    same = all(old.get(k) == run.get(k) for k in keys)
    if resume and not same:
        changed = [k for k in keys if old.get(k) != run.get(k)]
        raise PolyheadError(
            f"{out} holds shards of a different run (changed: {', '.join(changed)}); "
            "use another output folder, or --no-resume to start over"
        )


def _clear(out: Path) -> None:
    for p in out.iterdir():
        if p.name.startswith("shard-") or p.name in (RUN_FILE, INDEX_FILE):
            p.unlink(missing_ok=True)


def encode_to_shards(
    encoder: Any,
    input_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    shard_size: int = DEFAULT_SHARD_SIZE,
    batch_size: int = 32,
    resume: bool = True,
    show_progress: bool = True,
    process_index: int | None = None,
    num_processes: int | None = None,
    normalize: bool | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Encode every line of input_path into .npy shards under output_dir; return a summary.

    `encoder` is anything with `encode(texts, batch_size=..., normalize=...)` and `dim`
    (an Encoder, a MultiTaskModel's encoder or an OnnxModel). process_index/num_processes
    default to accelerate's PartialState when launched with `accelerate launch`, else 0/1.
    output_dir must be missing, empty or an earlier shard run's folder (it holds run.json);
    force=True also writes into another folder (and with resume=False clears its shard files).
    """
    if shard_size < 1:
        raise PolyheadError(f"shard_size must be at least 1, got {shard_size}")
    if process_index is None or num_processes is None:
        auto_index, auto_count = process_context()
        process_index = auto_index if process_index is None else process_index
        num_processes = auto_count if num_processes is None else num_processes
    if not 0 <= process_index < num_processes:
        raise PolyheadError(f"process_index {process_index} is not in [0, {num_processes})")
    src = Path(input_path)
    if not src.is_file():
        raise PolyheadError(f"input file {src} does not exist")
    out = Path(output_dir)
    # Shards, index.jsonl and (with resume=False) the clearing of shard-* files must never land in
    # a folder of the user's own files: only in a folder an earlier run made, or an empty one.
    check_replaceable_dir(out, [RUN_FILE], "a folder of polyhead shards", force)
    out.mkdir(parents=True, exist_ok=True)
    dim = int(encoder.dim)
    run = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "input": _fingerprint(src),
        "shard_size": int(shard_size),
        "dim": dim,
        "dtype": "float32",
        "encoder": _encoder_info(encoder),
        "normalize": normalize,
    }
    _check_run(out, run, resume)
    if not resume and process_index == 0:
        _clear(out)
    if num_processes > 1:
        _barrier()  # nobody writes shards before process 0 has cleared or checked the folder
    if process_index == 0:
        write_json_atomic(out / RUN_FILE, {**run, "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    total_lines = count_lines(src)
    n_shards = -(-total_lines // shard_size)
    mine = [s for s in range(n_shards) if s % num_processes == process_index]
    todo = {s for s in mine if not (resume and _shard_done(out, s, s * shard_size, dim))}
    my_lines = sum(min(shard_size, total_lines - s * shard_size) for s in mine)
    skipped_lines = sum(min(shard_size, total_lines - s * shard_size) for s in mine if s not in todo)

    stats = {"lines": 0, "shards_written": 0, "shards_skipped": len(mine) - len(todo)}
    started = time.perf_counter()
    desc = "encoding" if num_processes == 1 else f"encoding [{process_index + 1}/{num_processes}]"
    # Lines of finished shards count from the start, so on resume the bar starts where the last
    # run stopped (its rate then covers only new work).
    with progress(my_lines, show_progress, desc, unit="line", initial=skipped_lines, position=process_index) as bar:
        for shard, first, texts in _my_shards(src, shard_size, todo):
            vectors = np.asarray(encoder.encode(texts, batch_size=batch_size, normalize=normalize), dtype=np.float32)
            if vectors.shape != (len(texts), dim):
                raise PolyheadError(f"encoder returned shape {vectors.shape} for {len(texts)} texts")
            stem = shard_name(shard)
            try:
                write_bytes_atomic(out / f"{stem}.npy", lambda fh, v=vectors: np.save(fh, v))
                # The record is written last: its presence is what marks the shard as finished.
                write_json_atomic(out / f"{stem}.json", {"shard": shard, "file": f"{stem}.npy", "first_line": first,
                                                         "count": len(texts), "dim": dim})
            except OSError as exc:
                if write_error_reason(exc) is None:
                    raise
                raise write_failure(exc, f"shard {out / stem}.npy", f"the {stats['shards_written'] + stats['shards_skipped']} "
                                    "finished shard(s) are kept", "free space, then run the same command again: "
                                    "finished shards are skipped") from exc
            stats["lines"] += len(texts)
            stats["shards_written"] += 1
            bar.update(len(texts))
            # Drop this shard before the next is read, so at most one shard is ever held.
            del vectors, texts
    if num_processes > 1:
        _barrier()
    if process_index == 0 or num_processes == 1:
        write_index(out)
    elapsed = time.perf_counter() - started
    return {
        "output_dir": str(out),
        "total_lines": total_lines,
        "shards": n_shards,
        "process_index": process_index,
        "num_processes": num_processes,
        "seconds": elapsed,
        **stats,
    }


def _my_shards(src: Path, shard_size: int, todo: set[int]) -> Iterator[tuple[int, int, list[str]]]:
    """Yield (shard, first line, texts) for the shards in `todo`, holding one shard in memory."""
    if not todo:
        return
    last = max(todo)
    texts: list[str] = []
    for no, line in enumerate(iter_lines(src)):
        shard = no // shard_size
        if shard > last:
            break
        if shard in todo:
            texts.append(line)
            if len(texts) == shard_size:
                yield shard, shard * shard_size, texts
                texts = []
    if texts:
        shard = (no // shard_size)
        yield shard, shard * shard_size, texts


def _barrier() -> None:
    """Wait for every process, when running under accelerate/torchrun; a no-op otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    _state().wait_for_everyone()


def read_index(output_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every finished shard's record, ordered by first line (read from the per-shard .json files)."""
    out = Path(output_dir)
    records = []
    for p in sorted(out.glob("shard-*.json")):
        try:
            records.append(json.loads(p.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise PolyheadError(f"{p}: unreadable shard record ({exc})") from exc
    return sorted(records, key=lambda r: r["first_line"])


def write_index(output_dir: str | os.PathLike) -> Path:
    """Rebuild index.jsonl (one shard record per line, by first line) from the shard records."""
    out = Path(output_dir)
    lines = "".join(json.dumps(r) + "\n" for r in read_index(out))
    write_bytes_atomic(out / INDEX_FILE, lambda fh: fh.write(lines.encode("utf-8")))
    return out / INDEX_FILE


def load_shards(output_dir: str | os.PathLike, mmap: bool = True) -> np.ndarray:
    """All embeddings in input-line order as one array; checks that shards cover every line once."""
    records = read_index(output_dir)
    expected = 0
    for r in records:
        if r["first_line"] != expected:
            raise PolyheadError(f"{output_dir}: lines {expected}..{r['first_line'] - 1} are missing (unfinished shards?)")
        expected += r["count"]
    arrays = [np.load(Path(output_dir) / r["file"], mmap_mode="r" if mmap else None) for r in records]
    if not arrays:
        run = Path(output_dir) / RUN_FILE
        dim = json.loads(run.read_text(encoding="utf-8")).get("dim", 0) if run.is_file() else 0
        return np.zeros((0, dim), dtype=np.float32)
    return np.concatenate(arrays, axis=0)
