"""The ONNX backend: export a model folder to one ONNX graph (export.py) and run it with ONNX
Runtime (runtime.py) behind the same inference contract as the PyTorch model."""
from .export import check_export_target, export_folder, export_onnx  # noqa: F401
from .runtime import MANIFEST, OnnxModel, find_onnx_dir, load_onnx, read_manifest  # noqa: F401
