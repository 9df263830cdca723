"""The OpenVINO backend: the same exported graph (encoder + pooling + every head, export.py)
converted to OpenVINO IR, optionally int8-quantised with NNCF, run behind `InferenceModel`.

Layout of an OpenVINO export folder (default MODEL_DIR/openvino/):

    polyhead-openvino.json  manifest: files, inputs/outputs, quantisation, polyhead.json copy
    model.xml, model.bin    fp32 IR converted from the ONNX graph (weights kept fp32)
    model_int8.xml/.bin     (with --quantize int8) NNCF post-training quantisation: int8 weights
                            AND int8 activations with scales measured on calibration texts
    tokenizer/              the tokenizer files, so the folder is self-contained

Why OpenVINO is faster on long texts (docs/speed.md has the numbers): its CPU plugin fuses each
layer's attention into one ScaledDotProductAttention kernel and, with precision auto on a CPU
with bf16 units, runs it and every other non-int8 operation in bf16; NNCF's static int8 puts the
dense layers (36 in all-MiniLM-L6-v2) on int8 kernels with activation scales fixed at export (no per-batch scale
computation). ONNX Runtime's dynamic int8 speeds up the same dense layers but leaves attention,
softmax and the rest in fp32, which is most of the work on long texts. Calibrated (static) int8
on ONNX Runtime was measured too and is slower than its dynamic int8 (benchmarks/ort_static_int8.py).

The calibration texts are the user's (`--calibration FILE`) or the shipped sample
(calibration.txt: 256 original texts of 3 to 220 words, many domains); the heads stay fp32 (they
are a rounding error of the compute and quantising them would only perturb label probabilities).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import __version__
from ..errors import PolyheadError
from ..io import write_json_atomic
from .graph import (
    TOKENIZER_DIR,
    GraphModel,
    find_export_dir,
    l2_normalize,
    load_tokenizer,
    read_manifest as _read_manifest,
    require,
    variant_file,
)

MANIFEST = "polyhead-openvino.json"
FORMAT_NAME = "polyhead-openvino"
FORMAT_VERSION = 1
FP32_FILE = "model.xml"
INT8_FILE = "model_int8.xml"
CALIBRATION_SAMPLE = Path(__file__).with_name("calibration.txt")
# Inference precision hints by polyhead precision name (auto: the plugin's own choice, which
# follows the CPU: bf16 where it has avx512_bf16/AMX, else fp32).
_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
_PRECISIONS = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}
EXTRA = "openvino"


# The CPU plugin prepares kernels per input shape and keeps up to CPU_RUNTIME_CACHE_CAPACITY of
# them (OpenVINO's default: 5000). polyhead pads each batch to its own longest text, so a server
# sees a new shape for almost every batch, and the cache grew a soak's resident memory by half in
# 20 minutes. 64 bounds it (RSS +7% in 2 minutes of varied shapes against +29% with the default)
# and still keeps the shapes a steady workload repeats (benchmarks/results/openvino-shape-cache.json).
SHAPE_CACHE: int | None = 64


def require_openvino(what: str = "the OpenVINO backend") -> Any:
    """The openvino module, or a one-line error naming the extra that installs it."""
    return require("openvino", EXTRA, what)


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """The manifest of an OpenVINO export folder, checked for format and version."""
    return _read_manifest(folder, MANIFEST, FORMAT_NAME, FORMAT_VERSION)


def find_openvino_dir(path: str | os.PathLike) -> Path:
    """The export folder for PATH: PATH itself if it holds the manifest, else PATH/openvino."""
    return find_export_dir(path, MANIFEST, "openvino", "OpenVINO", f"polyhead export {path} --format openvino")


class OpenVinoModel(GraphModel):
    """A polyhead model exported to OpenVINO IR, run on OpenVINO's CPU plugin (or GPU/NPU by device)."""

    backend = "openvino"

    def __init__(self, folder: Path, manifest: dict[str, Any], compiled: Any, tokenizer: Any, variant: str, device: str) -> None:
        super().__init__(folder, manifest, tokenizer, variant, {p.get_any_name() for p in compiled.inputs})
        self.compiled = compiled
        self.ov_device = device
        self._outputs = {name: out for out in compiled.outputs for name in out.get_names()}
        self._request = compiled.create_infer_request()
        self._lock = threading.Lock()  # one infer request, shared: calls from several threads take turns
        try:
            hint = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()  # "f32", "bf16", ...
        except Exception:  # noqa: BLE001 - a plugin that does not report it
            hint = "f32"
        self.inference_precision = _PRECISIONS.get(hint, hint)
        if variant == "fp32":
            self.precision = self.inference_precision

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        variant: str | None = None,
        threads: int | None = None,
        precision: str = "auto",
        device: str = "CPU",
        shape_cache: int | None = SHAPE_CACHE,
    ) -> "OpenVinoModel":
        """Load MODEL_DIR/openvino or an export folder.

        variant: fp32|int8 (default: the export's default); precision: auto (the plugin's choice
        for this CPU: bf16 where it has bf16 units, else fp32), fp32 (exact, within 1e-4 of
        PyTorch), bf16 or fp16: the precision of the operations that are not int8; shape_cache:
        how many input shapes the CPU plugin keeps prepared kernels for (SHAPE_CACHE; None:
        OpenVINO's own default, 5000).
        """
        ov = require_openvino()
        if precision != "auto" and precision not in _HINTS:
            raise PolyheadError(f"unknown precision {precision!r} for OpenVINO; choose auto, {', '.join(_HINTS)}")
        folder = find_openvino_dir(path)
        manifest = read_manifest(folder)
        variant, xml = variant_file(folder, manifest, variant)
        tokenizer = load_tokenizer(folder, manifest)
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        if precision != "auto":
            config["INFERENCE_PRECISION_HINT"] = _HINTS[precision]
        if shape_cache is not None and device.upper().startswith("CPU"):
            config["CPU_RUNTIME_CACHE_CAPACITY"] = int(shape_cache)
        core = ov.Core()
        try:
            compiled = core.compile_model(core.read_model(str(xml)), device, config)
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError subclasses with long texts
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PolyheadError(f"OpenVINO could not compile {xml} for {device}: {first}") from None
        return cls(folder, manifest, compiled, tokenizer, variant, device)

    def _run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        with self._lock:
            result = self._request.infer(feed)
            # Copies: the request's output buffers are reused by the next call.
            return [np.array(result[self._outputs[n]], dtype=np.float32) for n in names]

    def _runtime_info(self) -> dict[str, Any]:
        return {
            "device_name": self.ov_device,
            "inference_precision": self.inference_precision,
            "threads": _property(self.compiled, "INFERENCE_NUM_THREADS"),
        }


def _property(compiled: Any, name: str) -> Any:
    try:
        value = compiled.get_property(name)
    except Exception:  # noqa: BLE001 - a property this plugin does not report
        return None
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)


# -- export -----------------------------------------------------------------------------------
def read_calibration(path: str | os.PathLike | None) -> tuple[list[str], str]:
    """(texts, source) for int8 calibration: a .txt (one text per line) or .jsonl file, else the sample.

    jsonl rows give their "text" field, or "sentence1"/"sentence2" (pair files), or the words
    of a token-classification row ("tokens"/"words") joined by spaces.
    """
    import json

    src = Path(path) if path else CALIBRATION_SAMPLE
    if not src.is_file():
        raise PolyheadError(f"calibration file {src} does not exist")
    texts: list[str] = []
    with open(src, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            if src.suffix == ".jsonl":
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise PolyheadError(f"{src}:{n}: not JSON ({exc.msg})") from None
                if not isinstance(row, dict):
                    raise PolyheadError(f"{src}:{n}: expected a JSON object")
                found = [row[k] for k in ("text", "sentence1", "sentence2") if isinstance(row.get(k), str)]
                words = row.get("tokens") or row.get("words")
                if not found and isinstance(words, list):
                    found = [" ".join(str(w) for w in words)]
                texts.extend(t for t in found if t.strip())
            else:
                texts.append(line)
    if len(texts) < 8:
        raise PolyheadError(f"{src}: {len(texts)} calibration text(s); give at least 8 (a few hundred is better)")
    return texts, ("the shipped sample (polyhead/onnx/calibration.txt)" if not path else str(src))


def export_openvino(
    model: Any,
    out_dir: str | os.PathLike,
    quantize: str | None = None,
    calibration: str | os.PathLike | Sequence[str] | None = None,
    calibration_size: int = 300,
    force: bool = False,
    protect: Sequence[str | os.PathLike] = (),
) -> Path:
    """Export a MultiTaskModel (or a bare Encoder) to an OpenVINO folder; return the folder.

    quantize="int8" adds model_int8.xml: NNCF post-training quantisation calibrated on
    `calibration` (a file, a list of texts, or None for the shipped sample), at most
    `calibration_size` texts. The output folder rules are the ONNX export's.
    """
    from .export import check_export_target, export_onnx, local_folders
    from .runtime import MANIFEST as ONNX_MANIFEST
    from .runtime import FP32_FILE as ONNX_FILE

    ov = require_openvino("polyhead export --format openvino")
    if quantize not in (None, "int8"):
        raise PolyheadError(f"unknown quantisation {quantize!r}; the only one is int8")
    if quantize == "int8":
        require("nncf", EXTRA, "int8 quantisation for OpenVINO")
    texts, source = (list(calibration), "texts given by the caller") if isinstance(calibration, (list, tuple)) else (None, None)
    if quantize == "int8" and texts is None:
        texts, source = read_calibration(calibration)  # before any work: a bad file fails fast
    out_dir = Path(out_dir)
    encoder = getattr(model, "encoder", model)
    check_export_target(out_dir, force, [*local_folders(getattr(encoder, "name_or_path", "")), *protect], MANIFEST, "an OpenVINO export", "openvino")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        graph_dir = export_onnx(model, tmp / "onnx")
        onnx_manifest = _read_json(graph_dir / ONNX_MANIFEST)
        ov_model = ov.convert_model(str(graph_dir / ONNX_FILE))
        ov.save_model(ov_model, str(tmp / FP32_FILE), compress_to_fp16=False)
        files = {"fp32": FP32_FILE}
        quant_info = None
        if quantize == "int8":
            quant_info = _quantize_int8(ov, tmp, graph_dir, texts[:calibration_size], source, onnx_manifest)
            files["int8"] = INT8_FILE
        shutil.move(str(graph_dir / onnx_manifest.get("tokenizer", TOKENIZER_DIR)), str(tmp / TOKENIZER_DIR))
        if onnx_manifest.get("pair_heads"):
            shutil.move(str(graph_dir / onnx_manifest["pair_heads"]), str(tmp / onnx_manifest["pair_heads"]))
        shutil.rmtree(graph_dir)
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "polyhead_version": __version__,
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "exporter": f"{onnx_manifest['exporter']}, then openvino.convert_model (OpenVINO {ov.__version__})",
            "opset": onnx_manifest.get("opset"),
            "files": files,
            "default": "int8" if quantize == "int8" else "fp32",
            "quantized": quantize == "int8",
            "quantization": quant_info,
            "inputs": onnx_manifest["inputs"],
            "outputs": onnx_manifest["outputs"],
            "tasks": onnx_manifest["tasks"],
            "tokenizer": TOKENIZER_DIR,
            "pair_heads": onnx_manifest.get("pair_heads"),
            "polyhead": onnx_manifest["polyhead"],
        }
        write_json_atomic(tmp / MANIFEST, manifest)
        from ..io import replace_dir

        replace_dir(tmp, out_dir)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        from ..io import write_error_reason
        from .export import export_write_failure

        if write_error_reason(exc):
            raise export_write_failure(exc, out_dir) from exc
        raise
    return out_dir


def _read_json(path: Path) -> dict[str, Any]:
    from ..io import read_json

    return read_json(path)


def _quantize_int8(ov: Any, tmp: Path, graph_dir: Path, texts: list[str], source: str, onnx_manifest: dict) -> dict[str, Any]:
    """NNCF post-training quantisation of tmp/model.xml into tmp/model_int8.xml; heads stay fp32."""
    import logging

    import nncf

    batcher = _Batcher(graph_dir, onnx_manifest)
    feeds = [feed for _, feed, _ in batcher.batches(texts, 8)]
    core = ov.Core()
    fp32 = core.read_model(str(tmp / FP32_FILE))
    heads = _head_only_ops(fp32)
    previous = logging.getLogger("nncf").level
    logging.getLogger("nncf").setLevel(logging.WARNING)  # its per-step progress bars and info lines
    try:
        quantized = nncf.quantize(
            fp32,
            nncf.Dataset(feeds),
            model_type=nncf.ModelType.TRANSFORMER,  # SmoothQuant, and no quantisers on LayerNorm/Softmax inputs
            subset_size=len(feeds),
            ignored_scope=nncf.IgnoredScope(names=heads) if heads else None,
        )
    finally:
        logging.getLogger("nncf").setLevel(previous)
    ov.save_model(quantized, str(tmp / INT8_FILE), compress_to_fp16=False)
    # A probe: the int8 graph against the fp32 one on the calibration texts themselves.
    a = core.compile_model(core.read_model(str(tmp / FP32_FILE)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    b = core.compile_model(core.read_model(str(tmp / INT8_FILE)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    cos = []
    for feed in feeds[:8]:
        ea = l2_normalize(np.asarray(a(feed)["pooled"]))
        eb = l2_normalize(np.asarray(b(feed)["pooled"]))
        cos.append((ea * eb).sum(1))
    return {
        "method": "nncf.quantize (post-training, static: int8 weights per channel, int8 activations with "
        "scales measured on the calibration texts; SmoothQuant for transformers)",
        "nncf_version": nncf.__version__,
        "calibration": {"source": source, "texts": len(texts), "batches": len(feeds), "batch_size": 8},
        "heads_kept_fp32": len(heads),
        "probe_min_cosine_vs_fp32": float(np.concatenate(cos).min()),
    }


class _Batcher(GraphModel):
    """The shared tokenising and batching, without a runtime (for calibration feeds)."""

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        names = {i["name"] for i in manifest["inputs"]}
        super().__init__(folder, manifest, load_tokenizer(folder, manifest), "fp32", names)
        self._warned_truncation = True  # calibration texts longer than max_length are cut, as in use


def _head_only_ops(model: Any) -> list[str]:
    """Friendly names of the MatMul ops only heads need: ancestors of logits.* but not of the embedding."""

    def ancestors(results: list[Any]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        stack = list(results)
        while stack:
            node = stack.pop()
            name = node.get_friendly_name()
            if name in seen:
                continue
            seen[name] = node
            stack.extend(value.get_node() for value in node.input_values())
        return seen

    results = model.get_results()

    def names_of(result: Any) -> set[str]:
        return set(result.input_value(0).get_names())

    heads = [r for r in results if any(n.startswith("logits.") for n in names_of(r))]
    shared = [r for r in results if not any(n.startswith("logits.") for n in names_of(r))]
    only = ancestors(heads)
    for name in ancestors(shared):
        only.pop(name, None)
    return sorted(name for name, node in only.items() if node.get_type_name() == "MatMul")


def export_openvino_folder(
    model_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    quantize: str | None = None,
    calibration: str | os.PathLike | None = None,
    force: bool = False,
) -> Path:
    """Export a saved model folder (or a plain encoder folder) to OpenVINO; default MODEL_DIR/openvino."""
    from .export import check_export_target, load_exportable

    src = Path(model_dir)
    out = Path(out_dir) if out_dir else src / "openvino"
    require_openvino("polyhead export --format openvino")
    check_export_target(out, force, [src], MANIFEST, "an OpenVINO export", "openvino")
    if quantize == "int8":
        require("nncf", EXTRA, "int8 quantisation for OpenVINO")
        read_calibration(calibration)  # a bad calibration file fails before the model loads
    elif calibration:
        raise PolyheadError("--calibration goes with --quantize int8 (the fp32 export needs no calibration)")
    return export_openvino(load_exportable(src), out, quantize=quantize, calibration=calibration, force=force, protect=[src])


def load_openvino(path: str | os.PathLike, variant: str | None = None, threads: int | None = None, precision: str = "auto",
                  shape_cache: int | None = SHAPE_CACHE) -> OpenVinoModel:
    """Load an OpenVINO export (MODEL_DIR, MODEL_DIR/openvino, or any export folder)."""
    return OpenVinoModel.load(path, variant=variant, threads=threads, precision=precision, shape_cache=shape_cache)
