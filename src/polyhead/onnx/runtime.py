"""The ONNX Runtime backend: load an export folder (written by export.py) and run it behind the
inference contract `polyhead.modeling.backend.InferenceModel`, like the PyTorch MultiTaskModel.

What every exported-graph backend shares (the manifest, tokenising to NumPy, length-sorted
batches padded to their own longest text, decoding each head's probabilities) is graph.py's
GraphModel; only what differs lives here: the ORT session and one ORT call per batch.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from .graph import TOKENIZER_DIR, GraphModel, find_export_dir, load_tokenizer, require, variant_file
from .graph import read_manifest as _read_manifest

# The export folder's format: export.py writes it, this module reads it.
MANIFEST = "polyhead-onnx.json"
FORMAT_NAME = "polyhead-onnx"
FORMAT_VERSION = 1
FP32_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
__all__ = ["MANIFEST", "FORMAT_NAME", "FORMAT_VERSION", "FP32_FILE", "INT8_FILE", "TOKENIZER_DIR",
           "OnnxModel", "find_onnx_dir", "load_onnx", "make_session", "read_manifest"]


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """The manifest of an ONNX export folder, checked for format and version."""
    return _read_manifest(folder, MANIFEST, FORMAT_NAME, FORMAT_VERSION)


def find_onnx_dir(path: str | os.PathLike) -> Path:
    """The export folder for PATH: PATH itself if it holds the manifest, else PATH/onnx."""
    return find_export_dir(path, MANIFEST, "onnx", "ONNX", f"polyhead export {path} --format onnx")


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


class OnnxModel(GraphModel):
    """A polyhead model exported to ONNX, run on ONNX Runtime: the `InferenceModel` contract."""

    backend = "onnxruntime"

    def __init__(self, folder: Path, manifest: dict[str, Any], session: Any, tokenizer: Any, variant: str) -> None:
        super().__init__(folder, manifest, tokenizer, variant, {i.name for i in session.get_inputs()})
        self.session = session
        if session.get_providers()[0] == "CUDAExecutionProvider":
            self.batch_tokens = None  # GPUs want large batches

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        variant: str | None = None,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
    ) -> "OnnxModel":
        """Load MODEL_DIR/onnx or an export folder; variant fp32|int8 (default: the export's default)."""
        require("onnxruntime", "onnx", "the ONNX Runtime backend")
        folder = find_onnx_dir(path)
        manifest = read_manifest(folder)
        variant, onnx_path = variant_file(folder, manifest, variant)
        tokenizer = load_tokenizer(folder, manifest)
        return cls(folder, manifest, make_session(onnx_path, threads, providers), tokenizer, variant)

    def _run(self, names: list[str], feed: dict) -> list:
        return self.session.run(names, feed)

    def _runtime_info(self) -> dict[str, Any]:
        return {
            "providers": self.session.get_providers(),
            "opset": self.manifest.get("opset"),
            "ort_fusion": self.manifest.get("ort_fusion", {}).get("applied", False),
        }

    @property
    def device(self) -> Any:
        """The device ORT runs on, as a torch.device (as Encoder.device and MultiTaskModel.device)."""
        import torch

        return torch.device("cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu")


def load_onnx(path: str | os.PathLike, variant: str | None = None, threads: int | None = None) -> OnnxModel:
    """Load an ONNX export (MODEL_DIR, MODEL_DIR/onnx, or any export folder)."""
    return OnnxModel.load(path, variant=variant, threads=threads)
