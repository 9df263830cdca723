"""The ONNX backend: export a model folder to one ONNX graph (export.py) and run it with ONNX
Runtime behind the same inference API as the PyTorch model."""
from .export import MANIFEST, OnnxModel, export_cli, export_onnx, find_onnx_dir, load_onnx  # noqa: F401
