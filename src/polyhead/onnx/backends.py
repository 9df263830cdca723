"""One loader for every backend (`--backend torch|onnx|openvino|auto` in serve, encode, predict
and the Ray integration), and `auto`: the fastest backend installed for this CPU and model.

auto measures, once per machine and model: every backend that can run MODEL_DIR here (PyTorch
always; ONNX Runtime when MODEL_DIR/onnx exists and onnxruntime is installed; OpenVINO when
MODEL_DIR/openvino exists and openvino is installed) encodes the same 64 texts of mixed length
(the first of the shipped calibration sample), interleaved, best of two rounds after a
warm-up pass. The winner is
cached in $POLYHEAD_CACHE/backend-auto.json under a key made of the CPU (model, cores, the
instruction-set flags that decide speed), the thread count, the precision and each candidate's
files (path, size, modification time), so a re-export, another CPU or another thread count
measures again. Delete the file to force a new measurement. With a CUDA GPU, auto is PyTorch
(no measurement: the exported graphs here are CPU-tuned).
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import time
import warnings
from pathlib import Path
from typing import Any, Callable

from ..console import say
from ..errors import PolyheadError
from ..io import default_cache_dir, write_json_atomic

BACKENDS = ("torch", "onnx", "openvino", "auto")
AUTO_CACHE = "backend-auto.json"
_SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8", "amx_tile", "avx_vnni")
_PROBE_TEXTS = 64
_PROBE_BATCH = 32


def load_backend(
    model_dir: str | os.PathLike | None,
    backend: str = "torch",
    *,
    device: str | None = None,
    precision: str = "auto",
    threads: int | None = None,
    variant: str | None = None,
    encoder_kwargs: dict[str, Any] | None = None,
    announce: bool = True,
) -> Any:
    """An `InferenceModel` for MODEL_DIR on the chosen backend.

    torch: a polyhead model, a plain encoder folder or hub name (a model without heads;
    encoder_kwargs are its pooling/normalize/max_length), or the bundled encoder (None).
    onnx / openvino: the export in MODEL_DIR (MODEL_DIR/onnx, MODEL_DIR/openvino, or the
    export folder itself); variant fp32|int8 picks a file (default: the export's default).
    auto: the fastest of those available here (module docstring); `announce` says which on stderr.
    """
    if backend not in BACKENDS:
        raise PolyheadError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        backend = pick_backend(model_dir, device=device, precision=precision, threads=threads, variant=variant, announce=announce)
    if backend in ("onnx", "openvino") and model_dir is None:
        raise PolyheadError(f"--backend {backend} needs MODEL_DIR (an exported model: polyhead export MODEL_DIR --format {backend})")
    if backend == "onnx":
        from .runtime import OnnxModel

        return _loading(lambda: OnnxModel.load(model_dir, variant=variant, threads=threads), "ONNX", model_dir)
    if backend == "openvino":
        from .openvino import OpenVinoModel

        return _loading(
            lambda: OpenVinoModel.load(model_dir, variant=variant, threads=threads, precision=precision), "OpenVINO", model_dir
        )
    return load_torch(model_dir, device=device, precision=precision, threads=threads, encoder_kwargs=encoder_kwargs)


def _loading(load: Callable[[], Any], what: str, model_dir: Any) -> Any:
    try:
        return load()
    except PolyheadError:
        raise
    except Exception as exc:  # noqa: BLE001 - a runtime's own errors become one line
        raise PolyheadError(f"could not load the {what} model from {model_dir}: {exc}") from None


def load_torch(
    model_dir: str | os.PathLike | None,
    device: str | None = None,
    precision: str = "auto",
    threads: int | None = None,
    encoder_kwargs: dict[str, Any] | None = None,
) -> Any:
    """The PyTorch backend: a polyhead model, or an encoder (folder, hub name, bundled) without heads."""
    from ..modeling.model import CONFIG_FILE, MultiTaskModel, load

    if threads:
        import torch

        torch.set_num_threads(int(threads))
    if model_dir is not None and (Path(model_dir) / CONFIG_FILE).is_file():
        return load(model_dir, device=device, precision=precision)
    from ..modeling.encoder import Encoder

    return MultiTaskModel(Encoder(model_dir, device=device, precision=precision, **(encoder_kwargs or {})), [])


# -- auto -------------------------------------------------------------------------------------
def candidates(model_dir: str | os.PathLike | None) -> dict[str, Path | None]:
    """The backends that can run MODEL_DIR on this machine: {name: export folder (None for torch)}."""
    import importlib.util

    found: dict[str, Path | None] = {"torch": None}
    if model_dir is None:
        return found
    from .openvino import find_openvino_dir
    from .runtime import find_onnx_dir

    for name, module, finder in (("onnx", "onnxruntime", find_onnx_dir), ("openvino", "openvino", find_openvino_dir)):
        if importlib.util.find_spec(module) is None:
            continue
        try:
            folder = finder(model_dir)
        except PolyheadError:
            continue
        if _exports_this_model(folder, Path(model_dir)):
            found[name] = folder
    return found


def _exports_this_model(folder: Path, model_dir: Path) -> bool:
    """False for an export of an older state of MODEL_DIR (e.g. made before `polyhead add-head`):
    its tasks differ from polyhead.json's, so running it would silently drop heads."""
    from ..io import read_json
    from ..modeling.model import CONFIG_FILE

    config = model_dir / CONFIG_FILE
    if not config.is_file():
        return True  # an export folder given directly, or a plain encoder: nothing to compare
    manifest = next((p for p in folder.glob("polyhead-*.json")), None)
    try:
        exported = read_json(manifest)["polyhead"].get("tasks") if manifest else None
        current = read_json(config).get("tasks")
    except (PolyheadError, KeyError, AttributeError):
        return False
    if exported != current:
        say(f"backend auto: skipping the export in {folder}: it predates the model's current tasks "
            f"(run polyhead export {model_dir} again)")
        return False
    return True


def pick_backend(
    model_dir: str | os.PathLike | None,
    device: str | None = None,
    precision: str = "auto",
    threads: int | None = None,
    variant: str | None = None,
    announce: bool = True,
    cache_file: Path | None = None,
) -> str:
    """The fastest backend for MODEL_DIR here: cached, else measured now and cached."""
    import torch

    if (device or "").startswith("cuda") or (device is None and torch.cuda.is_available()):
        return "torch"
    found = candidates(model_dir)
    if len(found) == 1:
        return "torch"
    cache_file = cache_file or default_cache_dir() / AUTO_CACHE
    key = _cache_key(model_dir, found, precision, threads, variant)
    cached = _read_cache(cache_file).get(key)
    if cached and cached.get("backend") in found:
        if announce:
            say(f"backend auto: {cached['backend']} ({_rates(cached['texts_per_s'])}; measured {cached['measured_at']}, cached in {cache_file})")
        return cached["backend"]
    rates = measure(model_dir, list(found), device=device, precision=precision, threads=threads, variant=variant)
    best = max(rates, key=rates.get)
    entry = {
        "backend": best,
        "texts_per_s": {k: round(v, 1) for k, v in rates.items()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": cpu_identity(),
        "threads": threads or os.cpu_count(),
        "precision": precision,
        "variant": variant,
        "model": str(Path(model_dir).resolve()) if model_dir is not None else None,
    }
    _write_cache(cache_file, key, entry)
    if announce:
        say(f"backend auto: {best} ({_rates(entry['texts_per_s'])}; measured now on {_PROBE_TEXTS} texts, cached in {cache_file})")
    return best


def measure(
    model_dir: str | os.PathLike | None,
    backends: list[str],
    device: str | None = None,
    precision: str = "auto",
    threads: int | None = None,
    variant: str | None = None,
) -> dict[str, float]:
    """Texts per second of each backend on the probe texts: one warm-up, then the best of two interleaved rounds."""
    texts = probe_texts()
    models = {
        name: load_backend(model_dir, name, device=device, precision=precision, threads=threads, variant=variant, announce=False)
        for name in backends
    }
    best = {name: 0.0 for name in models}
    with warnings.catch_warnings():
        # Probe texts longer than a model's max_length are cut, as they would be in use; the
        # truncation warning is about the user's texts, not these.
        warnings.filterwarnings("ignore", message="some texts are longer than max_length")
        for model in models.values():
            model.encode(texts, batch_size=_PROBE_BATCH)  # warm-up: every shape once
        for _ in range(2):
            for name, model in models.items():
                start = time.perf_counter()
                model.encode(texts, batch_size=_PROBE_BATCH)
                best[name] = max(best[name], len(texts) / max(time.perf_counter() - start, 1e-9))
    return best


def probe_texts() -> list[str]:
    """The first texts of the shipped calibration sample (3 to 220 words, many domains)."""
    from .openvino import CALIBRATION_SAMPLE

    with open(CALIBRATION_SAMPLE, encoding="utf-8") as fh:
        return [line.strip() for line in fh if line.strip()][:_PROBE_TEXTS]


def cpu_identity() -> str:
    """CPU model, logical CPUs and the speed-deciding instruction-set flags, as one line."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not model:
                    model = value.strip()
                elif key.strip() in ("flags", "Features") and not flags:
                    flags = set(value.split())
                if model and flags:
                    break
    except OSError:  # not Linux: the platform's own description
        pass
    model = model or platform.processor() or platform.machine()
    present = [f for f in _SPEED_FLAGS if f in flags]
    return f"{model}; {os.cpu_count()} CPUs; {' '.join(present) or 'no avx2/avx512/amx flags'}"


def _cache_key(model_dir: Any, found: dict[str, Path | None], precision: str, threads: int | None, variant: str | None) -> str:
    parts = [cpu_identity(), f"threads={threads or os.cpu_count()}", f"precision={precision}", f"variant={variant}"]
    for name, folder in sorted(found.items()):
        where = Path(folder if folder is not None else (model_dir or "bundled"))
        parts.append(f"{name}:{where.resolve() if where.exists() else where}:{_stamp(where)}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _stamp(folder: Path) -> str:
    """Size and modification time of the files that decide speed (a re-export changes them)."""
    if not folder.is_dir():
        return "-"
    stats = [(p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in sorted(folder.iterdir()) if p.is_file()]
    return hashlib.sha256(repr(stats).encode()).hexdigest()[:12]


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # missing or damaged: measure again
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, key: str, entry: dict[str, Any]) -> None:
    data = _read_cache(path)
    data[key] = entry
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, data)
    except OSError as exc:  # a read-only cache costs a measurement next time, nothing more
        say(f"backend auto: could not cache the choice in {path} ({exc})")


def _rates(rates: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.0f} texts/s" for k, v in sorted(rates.items(), key=lambda kv: -kv[1]))
