"""ONNX export of a whole polyhead model (encoder + pooling + every head) and an ONNX Runtime loader.

Layout of an export folder (default MODEL_DIR/onnx/):

    polyhead-onnx.json   manifest: files, inputs/outputs, opset, fusion, quantisation, polyhead.json copy
    model.onnx           fp32 graph: encoder, pooling, normalisation and every head in ONE graph
    model_int8.onnx      (with --quantize int8) the same graph, weights dynamically quantised to int8
    tokenizer/           the tokenizer files, so the folder is self-contained

Why one graph: every head reads the same encoder output, so one graph means one ORT call per
batch and no copy of the (batch, seq, dim) token states across a session boundary; the heads
are a few small MatMuls, so running them when only embeddings are asked for costs ~nothing.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from .. import __version__
from ..errors import PolyheadError

MANIFEST = "polyhead-onnx.json"
FORMAT_NAME = "polyhead-onnx"
FORMAT_VERSION = 1
OPSET = 17
FP32_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
TOKENIZER_DIR = "tokenizer"
# ORT's transformer fusions know these architectures' attention/LayerNorm/GELU patterns.
_FUSABLE = {"bert", "roberta", "xlm-roberta", "distilbert", "electra", "camembert", "mpnet"}
# A fused graph that drifts further than this from the plain export is discarded.
_FUSION_TOLERANCE = 1e-4


# -- export ---------------------------------------------------------------------------------
def export_onnx(
    model: Any,
    out_dir: str | os.PathLike,
    quantize: str | None = None,
    optimize: bool = False,
) -> Path:
    """Export a MultiTaskModel (or a bare Encoder) to an ONNX folder; return the folder.

    optimize=True also applies ORT's offline transformer fusions (one Attention op per layer);
    off by default because on the measured CPU the plain graph, which ORT optimises itself at
    load time, ran faster (docs/speed.md).
    """
    import torch

    from ..modeling.encoder import Encoder
    from ..modeling.model import MultiTaskModel

    if quantize not in (None, "int8"):
        raise PolyheadError(f"unknown quantisation {quantize!r}; the only one is int8")
    if isinstance(model, Encoder):
        model = MultiTaskModel(model, [])
    if not isinstance(model, MultiTaskModel):
        raise PolyheadError(f"can only export a MultiTaskModel or an Encoder, got {type(model).__name__}")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        inputs = _input_names(model)
        heads = [name for name, spec in model.tasks.items() if spec.kind != "similarity"]
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
            "polyhead": model.config_dict(),
        }
        with open(tmp / MANIFEST, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=2)
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


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
        dynamic[f"logits.{h}"] = {0: "batch", 1: "sequence"} if model.tasks[h].kind == "token" else {0: "batch"}
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


def _session(path: Path | str, threads: int | None = None, providers: Sequence[str] | None = None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=list(providers or _default_providers()))


def _default_providers() -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


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
    diff = _max_output_diff(_session(raw), _session(out), probe)
    if diff > _FUSION_TOLERANCE:
        out.unlink(missing_ok=True)
        return raw, {"applied": False, "reason": f"fused graph differs by {diff:.2e} > {_FUSION_TOLERANCE}", "ops": stats}
    return out, {"applied": True, "ops": stats, "max_abs_diff_vs_unfused": diff}


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
    a, b = _session(src), _session(dst)
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
        shape = ["batch", "sequence", spec.num_labels] if spec.kind == "token" else ["batch", spec.num_labels]
        specs.append({"name": f"logits.{h}", "dtype": "float32", "shape": shape, "task": h, "kind": spec.kind, "labels": spec.labels})
    return specs


def _replace_dir(tmp: Path, folder: Path) -> None:
    if folder.exists():
        if not folder.is_dir():
            raise PolyheadError(f"{folder} exists and is not a folder")
        old = folder.parent / f".{folder.name}.old-{os.getpid()}"
        os.replace(folder, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(tmp, folder)


def export_cli(args: argparse.Namespace) -> int:
    """`polyhead export MODEL_DIR --format onnx [--quantize int8] [-o DIR]`."""
    from ..cli.main import say
    from ..modeling.encoder import Encoder
    from ..modeling.model import CONFIG_FILE, MultiTaskModel

    if getattr(args, "format", "onnx") != "onnx":
        raise PolyheadError(f"unknown export format {args.format!r}; the only one is onnx")
    src = Path(args.model_dir)
    if (src / CONFIG_FILE).is_file():
        model: Any = MultiTaskModel.load(src, device="cpu")
    elif (src / "config.json").is_file():
        # A plain encoder folder: export embeddings only, with the default choices (max length
        # capped at the backbone's positions so small backbones export too).
        positions = json.loads((src / "config.json").read_text(encoding="utf-8")).get("max_position_embeddings") or 256
        model = Encoder(src, device="cpu", max_length=min(256, int(positions)))
    else:
        raise PolyheadError(f"{src} is neither a polyhead model nor an encoder folder")
    out = Path(args.output) if args.output else src / "onnx"
    started = time.perf_counter()
    export_onnx(model, out, quantize=args.quantize)
    manifest = _read_manifest(out)
    fusion = manifest["ort_fusion"]
    say(f"exported to {out} in {time.perf_counter() - started:.1f}s: " + ", ".join(manifest["files"].values()))
    say("ORT fusion: " + (", ".join(f"{k} x{v}" for k, v in fusion["ops"].items()) if fusion["applied"] else fusion["reason"]))
    if manifest["quantization"]:
        say(f"int8: min cosine to fp32 on a probe batch {manifest['quantization']['probe_min_cosine_vs_fp32']:.4f}")
    return 0


# -- loading and inference --------------------------------------------------------------------
def _read_manifest(folder: Path) -> dict[str, Any]:
    from ..modeling.encoder import read_json

    data = read_json(folder / MANIFEST)
    if data.get("format") != FORMAT_NAME:
        raise PolyheadError(f"{folder / MANIFEST}: format is {data.get('format')!r}, expected {FORMAT_NAME!r}")
    if data.get("format_version") != FORMAT_VERSION:
        raise PolyheadError(f"{folder}: ONNX export format version {data.get('format_version')!r} is not supported")
    return data


def find_onnx_dir(path: str | os.PathLike) -> Path:
    """The export folder for PATH: PATH itself if it holds the manifest, else PATH/onnx."""
    path = Path(path)
    for cand in (path, path / "onnx"):
        if (cand / MANIFEST).is_file():
            return cand
    raise PolyheadError(f"no ONNX export in {path} (no {MANIFEST}); run: polyhead export {path} --format onnx")


class OnnxModel:
    """A polyhead model exported to ONNX, run on ONNX Runtime, with MultiTaskModel's inference API."""

    def __init__(self, folder: Path, manifest: dict[str, Any], session: Any, tokenizer: Any, variant: str) -> None:
        from ..modeling.tasks import TaskSpec

        self.folder = folder
        self.manifest = manifest
        self.session = session
        self.tokenizer = tokenizer
        self.variant = variant
        cfg = manifest["polyhead"]
        enc = cfg.get("encoder", {})
        self.pooling = enc.get("pooling", "mean")
        self.normalize = bool(enc.get("normalize", True))
        self.max_length = int(enc.get("max_length", 256))
        self.dim = int(enc.get("dim", 0))
        self.name_or_path = enc.get("name_or_path", str(folder))
        self.tasks: dict[str, TaskSpec] = {t["name"]: TaskSpec.from_dict(t) for t in cfg.get("tasks", [])}
        self.precision = variant  # "fp32" or "int8": what the weights are stored as
        self._inputs = {i.name for i in session.get_inputs()}
        self._warned_truncation = False

    # -- construction -------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        variant: str | None = None,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
    ) -> "OnnxModel":
        """Load MODEL_DIR/onnx or an export folder; variant fp32|int8 (default: the export's default)."""
        from transformers import AutoTokenizer

        from ..modeling.encoder import quiet_transformers

        folder = find_onnx_dir(path)
        manifest = _read_manifest(folder)
        variant = variant or manifest.get("default", "fp32")
        files = manifest.get("files", {})
        if variant not in files:
            raise PolyheadError(f"{folder} has no {variant} model (it has {', '.join(files)})")
        onnx_path = folder / files[variant]
        if not onnx_path.is_file():
            raise PolyheadError(f"{folder}: missing {files[variant]}")
        quiet_transformers()
        tokenizer = AutoTokenizer.from_pretrained(str(folder / manifest.get("tokenizer", TOKENIZER_DIR)), trust_remote_code=False)
        return cls(folder, manifest, _session(onnx_path, threads, providers), tokenizer, variant)

    # -- encoder-like view ----------------------------------------------------------------
    @property
    def encoder(self) -> "OnnxModel":
        """The model itself: it carries tokenizer, dim, normalize, max_length, encode() like an Encoder."""
        return self

    @property
    def device(self) -> Any:
        """The device ORT runs on, as a torch.device (for code written against Encoder)."""
        import torch

        return torch.device("cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu")

    # -- batching -------------------------------------------------------------------------
    def batches(self, texts: Sequence[str], batch_size: int, offsets: bool = False) -> Iterator[tuple[list[int], dict[str, np.ndarray], list]]:
        """Yield (original indices, numpy feed, offsets) for length-sorted batches padded to their longest text.

        Texts are tokenised once; each batch is padded only to its own longest member, never to
        max_length, and the caller puts results back in input order.
        """
        from ..modeling.encoder import _check_texts

        if batch_size < 1:
            raise PolyheadError(f"batch_size must be at least 1, got {batch_size}")
        texts = _check_texts(texts)
        if not texts:
            return
        enc = self.tokenizer(
            texts,
            truncation=True,
            max_length=self.max_length,
            padding=False,
            return_offsets_mapping=offsets,
            return_attention_mask=False,
            return_token_type_ids="token_type_ids" in self._inputs,
        )
        from ..modeling.encoder import warn_if_truncated

        self._warned_truncation = warn_if_truncated(enc, self.max_length, self._warned_truncation)
        ids = enc["input_ids"]
        types = enc.get("token_type_ids")
        offs = enc.get("offset_mapping") if offsets else None
        pad = self.tokenizer.pad_token_id or 0
        order = sorted(range(len(texts)), key=lambda i: -len(ids[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            width = len(ids[idx[0]])  # sorted longest first
            input_ids = np.full((len(idx), width), pad, dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            tt = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(ids[i])
                input_ids[row, :n] = ids[i]
                mask[row, :n] = 1
                if types is not None:
                    tt[row, :n] = types[i]
            feed = {"input_ids": input_ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feed["token_type_ids"] = tt
            yield idx, feed, ([[tuple(o) for o in offs[i]] + [(0, 0)] * (width - len(offs[i])) for i in idx] if offs is not None else [])

    # -- inference ------------------------------------------------------------------------
    def encode(
        self,
        texts: Sequence[str] | str,
        batch_size: int = 32,
        normalize: bool | None = None,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Embed texts into a (len(texts), dim) float32 array, in input order."""
        from ..modeling.encoder import _progress

        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        normalize = self.normalize if normalize is None else normalize
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with _progress(len(texts), show_progress, "encoding") as bar:
            for idx, feed, _ in self.batches(texts, batch_size):
                pooled = self.session.run(["pooled"], feed)[0]
                out[idx] = _l2_normalize(pooled) if normalize else pooled
                bar.update(len(idx))
        return out[0] if single else out

    def predict(
        self,
        texts: Sequence[str],
        tasks: Sequence[str] | None = None,
        batch_size: int = 32,
        embeddings: bool = True,
        show_progress: bool = False,
    ) -> list[dict[str, Any]]:
        """For each text: its embedding and every (or each chosen) head's prediction, in input order."""
        from ..modeling.encoder import _progress
        from ..modeling.heads import decode, per_text_tasks

        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        selected = per_text_tasks(self.tasks, self._select(tasks))
        names = (["sentence_embedding"] if embeddings else []) + [f"logits.{t}" for t in selected]
        results: list[dict[str, Any] | None] = [None] * len(texts)
        with _progress(len(texts), show_progress, "predicting") as bar:
            for idx, feed, offsets in self.batches(texts, batch_size, offsets=True):
                outs = dict(zip(names, self.session.run(names, feed))) if names else {}
                probs = {t: _softmax(outs[f"logits.{t}"]) for t in selected}
                for row, i in enumerate(idx):
                    item: dict[str, Any] = {"text": texts[i]}
                    if embeddings:
                        item["embedding"] = outs["sentence_embedding"][row]
                    item["tasks"] = {t: decode(self.tasks[t], probs[t][row], texts[i], offsets[row]) for t in selected}
                    results[i] = item
                bar.update(len(idx))
        return results  # type: ignore[return-value]

    def similarity(self, texts_a: Sequence[str], texts_b: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Cosine similarity of each pair (texts_a[i], texts_b[i])."""
        if len(texts_a) != len(texts_b):
            raise PolyheadError(f"got {len(texts_a)} first texts but {len(texts_b)} second texts")
        a = self.encode(texts_a, batch_size=batch_size, normalize=True)
        b = self.encode(texts_b, batch_size=batch_size, normalize=True)
        return (a * b).sum(axis=1)

    def _select(self, tasks: Sequence[str] | None) -> list[str]:
        from ..modeling.model import select_tasks

        return select_tasks(self.tasks, tasks)

    def config_dict(self) -> dict[str, Any]:
        """The encoder choices, as in polyhead.json."""
        return dict(self.manifest["polyhead"].get("encoder", {}))

    def info(self) -> dict[str, Any]:
        """A summary: backend, file, quantisation, encoder choices, tasks and labels."""
        files = self.manifest.get("files", {})
        return {
            "backend": "onnxruntime",
            "folder": str(self.folder),
            "file": files.get(self.variant),
            "variant": self.variant,
            "quantized": self.variant == "int8",
            "providers": self.session.get_providers(),
            "opset": self.manifest.get("opset"),
            "ort_fusion": self.manifest.get("ort_fusion", {}).get("applied", False),
            "encoder": {**self.config_dict(), "precision": self.variant},
            "tasks": [spec.to_dict() for spec in self.tasks.values()],
        }


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32, copy=False)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    # Same epsilon as torch.nn.functional.normalize, so zero vectors stay zero.
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def load_onnx(path: str | os.PathLike, variant: str | None = None, threads: int | None = None) -> OnnxModel:
    """Load an ONNX export (MODEL_DIR, MODEL_DIR/onnx, or any export folder)."""
    return OnnxModel.load(path, variant=variant, threads=threads)
