"""Exported graphs and their runtimes: export a model folder to one graph (export.py: ONNX;
openvino.py: OpenVINO IR, int8 with NNCF) and run it with ONNX Runtime (runtime.py) or OpenVINO
(openvino.py) behind the same inference contract as the PyTorch model (graph.py holds what both
runtimes share); backends.py loads any backend by name and picks the fastest one for `auto`."""
from .backends import BACKENDS, load_backend, pick_backend  # noqa: F401
from .export import check_export_target, export_folder, export_onnx  # noqa: F401
from .openvino import OpenVinoModel, export_openvino, export_openvino_folder, find_openvino_dir, load_openvino  # noqa: F401
from .runtime import MANIFEST, OnnxModel, find_onnx_dir, load_onnx, read_manifest  # noqa: F401
