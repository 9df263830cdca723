"""The ONNX Runtime backend: load an export folder (written by export.py) and run it behind the
inference contract `polyhead.modeling.backend.InferenceModel`, like the PyTorch MultiTaskModel.

What the two backends share (the texts check, length-sorted batching, decoding each head's
probabilities, pair similarity) comes from polyhead.modeling; only what differs lives here:
tokenising to NumPy, padding each batch, and one ORT call per batch for every output at once.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..console import progress
from ..errors import PolyheadError
from ..io import read_json
from ..modeling.backend import (
    check_texts,
    describe_encoder,
    length_sorted_batches,
    paired_similarity,
    prediction,
)
from ..modeling.heads import per_text_tasks
from ..modeling.model import select_tasks
from ..modeling.tasks import TaskSpec

# The export folder's format: export.py writes it, this module reads it.
MANIFEST = "polyhead-onnx.json"
FORMAT_NAME = "polyhead-onnx"
FORMAT_VERSION = 1
FP32_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
TOKENIZER_DIR = "tokenizer"


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """The manifest of an export folder, checked for format and version."""
    folder = Path(folder)
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


def make_session(path: Path | str, threads: int | None = None, providers: Sequence[str] | None = None) -> Any:
    """An ORT InferenceSession with every graph optimisation on (CUDA first when available)."""
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


class OnnxModel:
    """A polyhead model exported to ONNX, run on ONNX Runtime: the `InferenceModel` contract.

    It has no `.encoder`: the encoder's choices are attributes of the model itself (dim,
    normalize, max_length, pooling, precision, device, config_dict()), so code that needs an
    "encoder" (the streaming encoder, the server) takes the OnnxModel directly.
    """

    backend = "onnxruntime"

    def __init__(self, folder: Path, manifest: dict[str, Any], session: Any, tokenizer: Any, variant: str) -> None:
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
        manifest = read_manifest(folder)
        variant = variant or manifest.get("default", "fp32")
        files = manifest.get("files", {})
        if variant not in files:
            raise PolyheadError(f"{folder} has no {variant} model (it has {', '.join(files)})")
        onnx_path = folder / files[variant]
        if not onnx_path.is_file():
            raise PolyheadError(f"{folder}: missing {files[variant]}")
        quiet_transformers()
        tokenizer = AutoTokenizer.from_pretrained(str(folder / manifest.get("tokenizer", TOKENIZER_DIR)), trust_remote_code=False)
        return cls(folder, manifest, make_session(onnx_path, threads, providers), tokenizer, variant)

    @property
    def device(self) -> Any:
        """The device ORT runs on, as a torch.device (as Encoder.device and MultiTaskModel.device)."""
        import torch

        return torch.device("cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu")

    # -- batching -------------------------------------------------------------------------
    def batches(self, texts: Sequence[str], batch_size: int, offsets: bool = False) -> Iterator[tuple[list[int], dict[str, np.ndarray], list]]:
        """Yield (original indices, numpy feed, offsets) for length-sorted batches padded to their longest text.

        Texts are tokenised once; each batch is padded only to its own longest member, never to
        max_length, and the caller puts results back in input order.
        """
        from ..modeling.encoder import warn_if_truncated

        if batch_size < 1:  # checked before tokenising, so a bad value fails fast
            raise PolyheadError(f"batch_size must be at least 1, got {batch_size}")
        texts = check_texts(texts)
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
        self._warned_truncation = warn_if_truncated(enc, self.max_length, self._warned_truncation)
        ids = enc["input_ids"]
        types = enc.get("token_type_ids")
        offs = enc.get("offset_mapping") if offsets else None
        pad = self.tokenizer.pad_token_id or 0
        for idx in length_sorted_batches([len(x) for x in ids], batch_size):
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
            # Offsets padded with (0, 0) like the PyTorch tokenizer's, so decoding sees the same rows.
            rows = [[tuple(o) for o in offs[i]] + [(0, 0)] * (width - len(offs[i])) for i in idx] if offs is not None else []
            yield idx, feed, rows

    # -- inference ------------------------------------------------------------------------
    def encode(
        self,
        texts: Sequence[str] | str,
        batch_size: int = 32,
        normalize: bool | None = None,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Embed texts into a (len(texts), dim) float32 array, in input order."""
        single = isinstance(texts, str)
        texts = check_texts(texts)
        normalize = self.normalize if normalize is None else normalize
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with progress(len(texts), show_progress, "encoding") as bar:
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
        texts = check_texts(texts)
        selected = per_text_tasks(self.tasks, select_tasks(self.tasks, tasks))
        names = (["sentence_embedding"] if embeddings else []) + [f"logits.{t}" for t in selected]
        results: list[dict[str, Any] | None] = [None] * len(texts)
        with progress(len(texts), show_progress, "predicting") as bar:
            for idx, feed, offsets in self.batches(texts, batch_size, offsets=True):
                outs = dict(zip(names, self.session.run(names, feed))) if names else {}
                probs = {t: _softmax(outs[f"logits.{t}"]) for t in selected}
                for row, i in enumerate(idx):
                    emb = outs["sentence_embedding"][row] if embeddings else None
                    results[i] = prediction(texts[i], emb, self.tasks, {t: probs[t][row] for t in selected}, offsets[row])
                bar.update(len(idx))
        return results  # type: ignore[return-value]

    def similarity(self, texts_a: Sequence[str], texts_b: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Cosine similarity of each pair (texts_a[i], texts_b[i])."""
        return paired_similarity(self, texts_a, texts_b, batch_size)

    # -- facts ----------------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        """The encoder choices, as in polyhead.json."""
        return dict(self.manifest["polyhead"].get("encoder", {}))

    def info(self) -> dict[str, Any]:
        """A summary: backend, file, quantisation, encoder choices, tasks and labels."""
        files = self.manifest.get("files", {})
        return {
            "backend": self.backend,
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

    def describe(self) -> dict[str, Any]:
        """Static facts for /info and model cards, the same keys as MultiTaskModel.describe()."""
        return describe_encoder(self, self.info())


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
