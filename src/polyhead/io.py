"""Files: atomic writes, JSON and UTF-8 reading, and the one rule for replacing what exists.

The rule (never lose work): polyhead replaces a file or folder only when it is missing, empty,
or something polyhead itself wrote there (recognised by a marker file, e.g. polyhead.json for a
model or polyhead-onnx.json for an ONNX export). Anything else needs an explicit --force.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

from .errors import PolyheadError


def default_cache_dir() -> Path:
    """The polyhead cache root (fetched datasets, feature caches): $POLYHEAD_CACHE, else ~/.cache/polyhead."""
    env = os.environ.get("POLYHEAD_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "polyhead"


# -- reading ------------------------------------------------------------------------------
def read_json(path: str | os.PathLike) -> dict[str, Any]:
    """Read a JSON object from a file, with a one-line error naming the file on failure."""
    data = read_json_value(path)
    if not isinstance(data, dict):
        raise PolyheadError(f"{path} must hold a JSON object")
    return data


def read_json_value(path: str | os.PathLike, name: str | None = None) -> Any:
    """Read any JSON value from a file; errors name the file (or `name`, e.g. a model-relative path)."""
    path = Path(path)
    shown = name or str(path)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError as exc:
        raise PolyheadError(f"missing file {shown}") from exc
    except IsADirectoryError as exc:
        raise PolyheadError(f"{shown} is a folder, not a JSON file") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PolyheadError(f"{shown} is not valid JSON: {exc}") from exc


def read_text(path: str | os.PathLike) -> str:
    """A whole UTF-8 text file, with one-line errors for a missing file or other bytes."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PolyheadError(f"no such file: {path}") from exc
    except IsADirectoryError as exc:
        raise PolyheadError(f"{path} is a folder, not a file") from exc
    except UnicodeDecodeError as exc:
        raise PolyheadError(f"{path} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from exc


# -- write failures -----------------------------------------------------------------------
def write_error_reason(exc: BaseException) -> str | None:
    """Why a write failed, in the OS's words, when it is the file system's fault (disk full,
    read-only, no permission, I/O error, quota); None for other errors. safetensors reports
    these as SafetensorError carrying the OS message, so that is recognised too."""
    if isinstance(exc, PolyheadError) and exc.__cause__ is not None:  # a write_failure from a layer below
        return write_error_reason(exc.__cause__)
    if isinstance(exc, OSError) and exc.errno is not None:
        return os.strerror(exc.errno)
    text = str(exc)
    if type(exc).__name__ == "SafetensorError":
        for errno_ in (28, 30, 13, 5, 122, 27):  # ENOSPC, EROFS, EACCES, EIO, EDQUOT, EFBIG
            if os.strerror(errno_) in text:
                return os.strerror(errno_)
    return None


def write_failure(exc: BaseException, what: str, kept: str, todo: str) -> PolyheadError:
    """A one-line error for a failed write: what could not be written and why, what was kept,
    and what to do (the caller raises it `from exc`)."""
    reason = write_error_reason(exc) or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return PolyheadError(f"could not write {what}: {reason}; {kept}; {todo}")


# -- atomic writes ------------------------------------------------------------------------
def write_bytes_atomic(path: str | os.PathLike, write: Callable[[Any], Any]) -> None:
    """Write a file through `write(fh)` into a temp file beside it, fsync, then rename it in."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a text file so that readers never see half of it."""
    write_bytes_atomic(path, lambda fh: fh.write(text.encode("utf-8")))


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write indented JSON atomically."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def write_atomic_dir(final: Path, fill: Callable[[Path], Any]) -> Path:
    """Create a folder by filling a temp folder beside it, then renaming it into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        fill(tmp)
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def replace_dir(tmp: Path, folder: Path) -> None:
    """Move the finished folder tmp to folder, removing what was there only after the move."""
    if folder.exists():
        if not folder.is_dir():
            raise PolyheadError(f"{folder} exists and is not a folder")
        old = folder.parent / f".{folder.name}.old-{os.getpid()}"
        os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
        return
    os.replace(tmp, folder)


# -- the one rule for replacing what exists --------------------------------------------------
def check_replaceable_dir(
    folder: str | os.PathLike, markers: Iterable[str], what: str, force: bool = False, flag: str = "--force"
) -> None:
    """Refuse (PolyheadError) to replace `folder` unless it is missing, empty, holds one of the
    marker files that says polyhead made it as `what`, or `force` is set. No markers: only a
    missing or empty folder (or force) will do."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():  # even with force: replace_dir never replaces a file
        raise PolyheadError(f"{folder} exists and is a file, not a folder; choose another path")
    if force or not folder.exists() or not any(folder.iterdir()):
        return
    markers = list(markers)
    if not markers:
        raise PolyheadError(f"{folder} is not empty; choose another folder or pass {flag} to replace what it holds")
    if any((folder / m).is_file() for m in markers):
        return
    raise PolyheadError(
        f"{folder} is not empty and is not {what} (no {' or '.join(markers)}); "
        f"choose another path or pass {flag} to replace it"
    )


def check_new_file(path: str | os.PathLike, force: bool = False, flag: str = "--force") -> None:
    """Refuse (PolyheadError) to overwrite an existing file unless `force` is set."""
    path = Path(path)
    if path.is_dir():
        raise PolyheadError(f"{path} is a folder; give a file name")
    if path.exists() and not force:
        raise PolyheadError(f"{path} already exists; choose another name or pass {flag} to overwrite it")
