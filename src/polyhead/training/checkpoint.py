"""Pickle-free checkpoint state: nested dicts of tensors and plain values -> safetensors + JSON."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..errors import PolyheadError


def save_tree(tree: Any, folder: Path, name: str) -> None:
    """Write a nested structure: tensors to NAME.safetensors, the rest to NAME.json."""
    tensors: dict[str, torch.Tensor] = {}

    def encode(node: Any, path: str) -> Any:
        if isinstance(node, torch.Tensor):
            tensors[path] = node.detach().cpu().contiguous()
            return {"__tensor__": path}
        if isinstance(node, dict):
            # Pairs keep non-string keys (optimizer state is keyed by int).
            return {"__dict__": [[k, encode(v, f"{path}/{k}")] for k, v in node.items()]}
        if isinstance(node, (list, tuple)):
            return {"__list__": [encode(v, f"{path}/{i}") for i, v in enumerate(node)], "tuple": isinstance(node, tuple)}
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        raise PolyheadError(f"cannot checkpoint a value of type {type(node).__name__} at {path}")

    skeleton = encode(tree, "")
    save_file(tensors, str(folder / f"{name}.safetensors"))
    with open(folder / f"{name}.json", "w", encoding="utf-8") as fh:
        json.dump(skeleton, fh)


def load_tree(folder: Path, name: str) -> Any:
    """Read back what save_tree wrote."""
    try:
        tensors = load_file(str(folder / f"{name}.safetensors"))
        with open(folder / f"{name}.json", encoding="utf-8") as fh:
            skeleton = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise PolyheadError(f"checkpoint {folder}: cannot read {name} ({exc})") from exc

    def decode(node: Any) -> Any:
        if isinstance(node, dict):
            if "__tensor__" in node:
                return tensors[node["__tensor__"]]
            if "__dict__" in node:
                return {k: decode(v) for k, v in node["__dict__"]}
            if "__list__" in node:
                items = [decode(v) for v in node["__list__"]]
                return tuple(items) if node.get("tuple") else items
        return node

    return decode(skeleton)


def write_atomic_dir(final: Path, fill: Any) -> Path:
    """Create a folder by filling a temp folder beside it, then renaming it into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        fill(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def write_text_atomic(path: Path, text: str) -> None:
    """Write a small text file so readers never see half of it."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
