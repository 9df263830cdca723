"""ONNX export of a whole polyhead model (encoder + pooling + every head); runtime.py runs it.

Layout of an export folder (default MODEL_DIR/onnx/):

    polyhead-onnx.json   manifest: files, inputs/outputs, opset, fusion, quantisation, polyhead.json copy
    model.onnx           fp32 graph: encoder, pooling, normalisation and every head in ONE graph
    model_int8.onnx      (with --quantize int8) the same graph, weights dynamically quantised to int8
    tokenizer/           the tokenizer files, so the folder is self-contained

Why one graph: every head reads the same encoder output, so one graph means one ORT call per
batch and no copy of the (batch, seq, dim) token states across a session boundary; the heads
are a few small MatMuls, so running them when only embeddings are asked for costs ~nothing.

Never lose work: the output folder is replaced only when it is missing, empty or a previous
export (it holds polyhead-onnx.json), or with force=True (--force); never when it is, or holds,
the model being exported, since replacing it would delete the model.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .. import __version__
from ..errors import PolyheadError
from ..io import check_replaceable_dir, replace_dir, write_error_reason, write_failure, write_json_atomic
from ..kinds import kind_of
from ..modeling.encoder import Encoder
from ..modeling.model import CONFIG_FILE, MultiTaskModel
from .graph import write_pair_heads
from .runtime import FORMAT_NAME, FORMAT_VERSION, FP32_FILE, INT8_FILE, MANIFEST, TOKENIZER_DIR, make_session

OPSET = 17
# ORT's transformer fusions know these architectures' attention/LayerNorm/GELU patterns.
_FUSABLE = {"bert", "roberta", "xlm-roberta", "distilbert", "electra", "camembert", "mpnet"}
# A fused graph that drifts further than this from the plain export is discarded.
_FUSION_TOLERANCE = 1e-4
# The releases from which ORT's offline fusion recognises the exported attention as one Attention
# op per layer (measured with a BERT; older ones fuse LayerNorm and GELU only: docs/dependencies.md).
ATTENTION_FUSION_NEEDS = {"onnxruntime": "1.31", "transformers": "5.13"}


# -- export ---------------------------------------------------------------------------------
def export_onnx(
    model: Any,
    out_dir: str | os.PathLike,
    quantize: str | None = None,
    optimize: bool = False,
    force: bool = False,
) -> Path:
    """Export a MultiTaskModel (or a bare Encoder) to an ONNX folder; return the folder.

    optimize=True also applies ORT's offline transformer fusions (one Attention op per layer with
    onnxruntime>=1.31 and transformers>=5.13; older releases fuse the rest and warn);
    off by default because on the measured CPU the plain graph, which ORT optimises itself at
    load time, ran faster (docs/speed.md).

    out_dir must be missing, empty or a previous export, else force=True replaces it; a model
    folder (or a folder holding the encoder being exported) is refused even with force.
    """
    import torch

    if quantize not in (None, "int8"):
        raise PolyheadError(f"unknown quantisation {quantize!r}; the only one is int8")
    if isinstance(model, Encoder):
        model = MultiTaskModel(model, [])
    if not isinstance(model, MultiTaskModel):
        raise PolyheadError(f"can only export a MultiTaskModel or an Encoder, got {type(model).__name__}")
    out_dir = Path(out_dir)
    # Before any work: a refused folder must not cost a whole export first.
    check_export_target(out_dir, force, local_folders(model.encoder.name_or_path))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        inputs = _input_names(model)
        heads = [name for name, spec in model.tasks.items() if kind_of(spec.kind).per_text]
        outputs = ["sentence_embedding", "pooled"] + [f"logits.{name}" for name in heads]
        wrapper = _ExportWrapper(model, inputs, heads)
        probe = _probe_batch(model, inputs)
        raw = tmp / "raw.onnx"
        _torch_export(model, wrapper, probe, inputs, outputs, heads, raw)
        fused, fusion = raw, {"applied": False, "reason": "off (the default): ORT optimises the plain graph when it loads it"}
        if optimize:
            fused, fusion = _fuse(model, raw, tmp / "fused.onnx", probe)
        os.replace(fused, tmp / FP32_FILE)
        raw.unlink(missing_ok=True)
        files = {"fp32": FP32_FILE}
        quant_info: dict[str, Any] | None = None
        if quantize == "int8":
            quant_info = _quantize_int8(tmp / FP32_FILE, tmp / INT8_FILE, heads, probe)
            files["int8"] = INT8_FILE
        model.encoder.tokenizer.save_pretrained(str(tmp / TOKENIZER_DIR))
        pair_heads = write_pair_heads(model, tmp)
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "polyhead_version": __version__,
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "exporter": f"torch.onnx.export (TorchScript, dynamo=False), torch {torch.__version__}",
            "opset": OPSET,
            "files": files,
            "default": "int8" if quantize == "int8" else "fp32",
            "quantized": quantize == "int8",
            "quantization": quant_info,
            "ort_fusion": fusion,
            "inputs": [{"name": n, "dtype": "int64", "shape": ["batch", "sequence"]} for n in inputs],
            "outputs": _output_specs(model, heads),
            "tasks": {name: (f"logits.{name}" if name in heads else None) for name in model.tasks},
            "tokenizer": TOKENIZER_DIR,
            "pair_heads": pair_heads,  # pair-classification heads' weights, run in NumPy on sentence_embedding
            "polyhead": model.config_dict(),
        }
        write_json_atomic(tmp / MANIFEST, manifest)
        replace_dir(tmp, out_dir)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if write_error_reason(exc):
            raise export_write_failure(exc, out_dir) from exc
        raise
    return out_dir


def export_write_failure(exc: BaseException, out_dir: Path) -> PolyheadError:
    """A one-line error for an export that could not be written (disk full, read-only, ...)."""
    kept = f"{out_dir} is as it was" if out_dir.exists() else f"nothing was left at {out_dir}"
    return write_failure(exc, f"the export {out_dir}", f"{kept}, and the model folder is untouched", "free space and export again")


class _ExportWrapper:
    """Built lazily as an nn.Module subclass (torch imported only when exporting)."""

    def __new__(cls, model: Any, inputs: list[str], heads: list[str]) -> Any:
        from torch import nn

        class Wrapper(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, *tensors: Any) -> tuple:
                kw = dict(zip(inputs, tensors))
                out = self.model(kw["input_ids"], kw["attention_mask"], kw.get("token_type_ids"), tasks=heads)
                return (out["sentence_embedding"], out["pooled"], *[out["heads"][h] for h in heads])

        return Wrapper().eval()


def _input_names(model: Any) -> list[str]:
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in getattr(model.encoder.tokenizer, "model_input_names", []):
        names.append("token_type_ids")
    return names


def _probe_batch(model: Any, inputs: list[str]) -> dict[str, np.ndarray]:
    # Texts of different lengths, so padding (and thus the attention mask) is part of the
    # traced graph: a batch without padding can let transformers drop the mask entirely.
    texts = [
        "Anna flew from Berlin to Paris on Monday to meet the team.",
        "Short one.",
        "How do I get a refund for an order that never arrived at my house?",
    ]
    enc = model.encoder.tokenizer(texts, padding=True, truncation=True, max_length=model.encoder.max_length, return_tensors="np")
    return {k: np.asarray(enc[k], dtype=np.int64) for k in inputs}


def _torch_export(model: Any, wrapper: Any, probe: dict, inputs: list, outputs: list, heads: list, path: Path) -> None:
    import torch

    backbone = model.encoder.backbone
    previous = getattr(backbone.config, "_attn_implementation", None)
    # Eager attention exports as plain MatMul/Softmax, which ORT's optimisers recognise (at load:
    # FusedMatMul; offline with optimize=True: one Attention op per layer). The SDPA path exports
    # as a decomposition that the offline fusion does not recognise (measured: 0 Attention ops).
    _set_attn(backbone, "eager")
    dynamic = {n: {0: "batch", 1: "sequence"} for n in inputs}
    dynamic.update({"sentence_embedding": {0: "batch"}, "pooled": {0: "batch"}})
    for h in heads:
        dynamic[f"logits.{h}"] = {0: "batch", 1: "sequence"} if kind_of(model.tasks[h].kind).token_level else {0: "batch"}
    device = model.encoder.device
    args = tuple(torch.from_numpy(probe[n]).to(device) for n in inputs)
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # The tracer warns about Python-level branches in transformers' mask helpers; they
            # depend only on shapes that are the same for every encoder input (checked by tests).
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper,
                args,
                str(path),
                dynamo=False,
                opset_version=OPSET,
                input_names=inputs,
                output_names=outputs,
                dynamic_axes=dynamic,
                do_constant_folding=True,
            )
    finally:
        _set_attn(backbone, previous)
        model.train(was_training)


def _set_attn(backbone: Any, impl: str | None) -> None:
    if impl is None:
        return
    try:
        backbone.set_attn_implementation(impl)
    except (AttributeError, ValueError, ImportError):
        backbone.config._attn_implementation = impl


def _fuse(model: Any, raw: Path, out: Path, probe: dict) -> tuple[Path, dict[str, Any]]:
    """Apply ORT's transformer fusions (Attention, SkipLayerNorm, BiasGelu, ...) if they keep parity."""
    config = model.encoder.backbone.config
    model_type = getattr(config, "model_type", "")
    if model_type not in _FUSABLE:
        return raw, {"applied": False, "reason": f"no ORT fusion rules for model_type {model_type!r}"}
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        # opt_level=0: only the offline Python fusions, so the file stays portable across CPUs;
        # ORT's own graph optimisations run at session creation on the target machine.
        fused = optimize_model(
            str(raw),
            model_type="bert",
            num_heads=int(getattr(config, "num_attention_heads", 0) or 0),
            hidden_size=int(getattr(config, "hidden_size", 0) or 0),
            opt_level=0,
        )
        stats = {k: v for k, v in fused.get_fused_operator_statistics().items() if v}
        fused.save_model_to_file(str(out))
    except Exception as exc:  # noqa: BLE001 - fusion is an optimisation; the plain graph still works
        return raw, {"applied": False, "reason": f"fusion failed: {type(exc).__name__}: {exc}"}
    diff = _max_output_diff(make_session(raw), make_session(out), probe)
    if diff > _FUSION_TOLERANCE:
        out.unlink(missing_ok=True)
        return raw, {"applied": False, "reason": f"fused graph differs by {diff:.2e} > {_FUSION_TOLERANCE}", "ops": stats}
    fusion: dict[str, Any] = {"applied": True, "ops": stats, "max_abs_diff_vs_unfused": diff}
    layers = int(getattr(config, "num_hidden_layers", 0) or 0)
    if stats.get("Attention", 0) < layers:
        fusion["attention"] = attention_fusion_note(stats.get("Attention", 0), layers)
        warnings.warn(f"optimize=True: {fusion['attention']}", stacklevel=3)
    return out, fusion


def release(text: str) -> tuple[int, ...]:
    """`1.31.0rc1` -> (1, 31, 0): the leading numbers of a version, for ordering releases."""
    import re

    return tuple(int(x) for x in re.findall(r"\d+", re.match(r"[\d.]*", text).group(0)))


def releases_too_old_for_attention_fusion() -> list[str]:
    """`["onnxruntime 1.18.1"]`: each installed release older than ATTENTION_FUSION_NEEDS asks."""
    from importlib.metadata import version

    found = {name: version(name) for name in ATTENTION_FUSION_NEEDS}
    return [f"{name} {found[name]}" for name, need in ATTENTION_FUSION_NEEDS.items() if release(found[name]) < release(need)]


def attention_fusion_note(fused: int, layers: int) -> str:
    """Why the offline fusion left attention layers unfused: the installed releases beside the ones
    from which it recognises them (ATTENTION_FUSION_NEEDS)."""
    old = releases_too_old_for_attention_fusion()
    needs = " and ".join(f"{name}>={need}" for name, need in ATTENTION_FUSION_NEEDS.items())
    why = f"it recognises the exported attention with {needs}; installed: {', '.join(old)}" if old else (
        f"not the releases ({needs} installed): this architecture's attention pattern is not one it knows")
    return f"attention fused in {fused} of {layers} layers ({why}); the other fusions are applied and exact"


def _max_output_diff(a: Any, b: Any, feed: dict) -> float:
    out_a = a.run(None, _feed_for(a, feed))
    out_b = b.run(None, _feed_for(b, feed))
    return float(max(np.abs(x - y).max() for x, y in zip(out_a, out_b)))


def _feed_for(session: Any, feed: dict) -> dict[str, np.ndarray]:
    return {i.name: feed[i.name] for i in session.get_inputs()}


def _quantize_int8(src: Path, dst: Path, heads: list[str], probe: dict) -> dict[str, Any]:
    """Dynamic int8 quantisation of the encoder's weights; the tiny heads stay fp32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(src), load_external_data=False).graph
    # Head MatMuls are a rounding error of the compute, so quantising them buys no speed and
    # only adds error to the label probabilities.
    exclude = _head_only_nodes(graph)
    quiet = _DropMessage("pre-processing before quantization")  # advice meant for CNN calibration
    logging.getLogger().addFilter(quiet)
    try:
        quantize_dynamic(
            str(src),
            str(dst),
            weight_type=QuantType.QInt8,
            # One scale per output column: on all-MiniLM-L6-v2 per-tensor scales gave a worst-case
            # cosine of 0.937 to fp32 on STS-B sentences, per-channel 0.987, at the same speed.
            per_channel=True,
            reduce_range=False,
            nodes_to_exclude=exclude,
            # ORT's contrib ops (the fused Attention) have no ONNX shape inference; tell the
            # quantiser their outputs are float.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        logging.getLogger().removeFilter(quiet)
    a, b = make_session(src), make_session(dst)
    ea = a.run(["sentence_embedding"], _feed_for(a, probe))[0]
    eb = b.run(["sentence_embedding"], _feed_for(b, probe))[0]
    cos = (ea * eb).sum(1) / (np.linalg.norm(ea, axis=1) * np.linalg.norm(eb, axis=1) + 1e-12)
    return {
        "method": "onnxruntime.quantization.quantize_dynamic",
        "weight_type": "QInt8",
        "activations": "uint8, scale computed per batch at run time",
        "per_channel": True,
        "excluded_nodes": len(exclude),
        "probe_min_cosine_vs_fp32": float(cos.min()),
    }


class _DropMessage(logging.Filter):
    """Drops log records containing a given text (for one noisy third-party warning)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def _head_only_nodes(graph: Any) -> list[str]:
    """Names of the nodes that only heads need: ancestors of logits.* but not of the embedding."""

    def ancestors(outputs: list[str]) -> set[str]:
        producer = {o: n for n in graph.node for o in n.output}
        seen: set[str] = set()
        stack = [producer[o] for o in outputs if o in producer]
        while stack:
            node = stack.pop()
            if node.name in seen:
                continue
            seen.add(node.name)
            stack.extend(producer[i] for i in node.input if i in producer)
        return seen

    names = [o.name for o in graph.output]
    shared = ancestors([n for n in names if not n.startswith("logits.")])
    return sorted(ancestors([n for n in names if n.startswith("logits.")]) - shared)


def _output_specs(model: Any, heads: list[str]) -> list[dict[str, Any]]:
    dim = model.encoder.dim
    specs = [
        {"name": "sentence_embedding", "dtype": "float32", "shape": ["batch", dim],
         "note": "L2-normalised" if model.encoder.normalize else "not normalised (normalize=false)"},
        {"name": "pooled", "dtype": "float32", "shape": ["batch", dim], "note": f"{model.encoder.pooling.mode} pooling, before normalisation"},
    ]
    for h in heads:
        spec = model.tasks[h]
        kind = kind_of(spec.kind)
        shape = ["batch", "sequence", spec.num_labels] if kind.token_level else ["batch", spec.num_labels]
        specs.append({"name": f"logits.{h}", "dtype": "float32", "shape": shape, "task": h, "kind": spec.kind, "labels": spec.labels,
                      "activation": kind.activation, **kind.facts(spec)})
    return specs


def check_export_target(
    out_dir: str | os.PathLike,
    force: bool = False,
    models: Iterable[str | os.PathLike] = (),
    manifest: str = MANIFEST,
    what: str = "an ONNX export",
    subdir: str = "onnx",
) -> None:
    """Refuse (PolyheadError) an export folder whose replacement would lose work.

    Refused even with force: a file (replacing folders only), a polyhead model folder, and the
    folder of any of `models` or a folder above one (replacing it would delete that model).
    Otherwise only a missing or empty folder or a previous export, unless force.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise PolyheadError(f"{out} exists and is not a folder; choose another output folder")
    where = out.resolve()
    for model in models:
        src = Path(model).resolve()
        if where == src or where in src.parents:
            what = "is" if where == src else "holds"
            raise PolyheadError(
                f"{out} {what} the model being exported: exporting there would delete it, even with --force; "
                f"choose another output folder (the default is {Path(model) / subdir})"
            )
    if (out / CONFIG_FILE).is_file():
        raise PolyheadError(
            f"{out} is a polyhead model folder ({CONFIG_FILE}): exporting there would delete the model, even with "
            f"--force; choose another output folder (the default is {out / subdir})"
        )
    check_replaceable_dir(out, [manifest], what, force)


def local_folders(name_or_path: str) -> list[Path]:
    """The encoder's source as a folder to protect, when it is one on this machine."""
    if not name_or_path:  # Path("") is the current folder, which is no model
        return []
    path = Path(name_or_path).expanduser()
    return [path] if path.is_dir() else []


def export_folder(
    model_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None, quantize: str | None = None, force: bool = False
) -> Path:
    """Export a saved model folder (or a plain encoder folder) to ONNX; returns the export folder.

    The default output is MODEL_DIR/onnx. The target is checked before the model loads and
    against MODEL_DIR itself: a loaded model does not remember its folder, so export_onnx alone
    could not tell that `-o MODEL_DIR` would delete it.
    """
    src = Path(model_dir)
    out = Path(out_dir) if out_dir else src / "onnx"
    check_export_target(out, force, [src])
    export_onnx(load_exportable(src), out, quantize=quantize, force=force)
    return out


def load_exportable(src: Path) -> Any:
    """The model in a saved polyhead folder, or a plain encoder folder as a model without heads."""
    if (src / CONFIG_FILE).is_file():
        return MultiTaskModel.load(src, device="cpu")
    if (src / "config.json").is_file():
        # An encoder folder: embeddings only, with its sentence-transformers config, else the
        # defaults (the max length capped at the backbone's positions, so small backbones export too).
        return Encoder(src, device="cpu")
    raise PolyheadError(f"{src} is neither a polyhead model nor an encoder folder")
