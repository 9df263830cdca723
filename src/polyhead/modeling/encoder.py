"""The shared sentence encoder: backbone + pooling + optional L2 normalisation."""
from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..console import progress
from ..errors import PolyheadError
from ..io import read_json
from .backbone import (
    DEFAULT_MODEL,
    embedded_default_path,
    is_default_name,
    load_backbone,
    quiet_transformers,
    resolve_model_path,
    user_stacklevel,
)
from .backend import batch_tokens_for, check_texts, length_sorted_batches

POOLING_MODES = ("mean", "cls", "max")
PRECISIONS = ("fp32", "bf16", "fp16", "auto")

# Public names of this module, including re-exports other packages import from here today
# (their canonical homes: backbone.py, backend.py, console.py, io.py).
__all__ = [
    "DEFAULT_MODEL", "POOLING_MODES", "PRECISIONS", "Encoder", "Pooling", "autocast_context", "check_texts",
    "cpu_supports_bf16", "embedded_default_path", "pick_device", "quiet_transformers", "read_json",
    "resolve_model_path", "resolve_precision", "warn_if_truncated",
]


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The device to run on: the override if given, else CUDA when present, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_supports_bf16() -> bool:
    """True when this CPU has native bf16 matrix instructions (AVX-512 BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    """Turn "auto" into the concrete precision for a device; validate the others."""
    if precision not in PRECISIONS:
        raise PolyheadError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_supports_bf16():
        return "bf16"
    return "fp32"


def autocast_context(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """An autocast context for a concrete precision (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


class Pooling(nn.Module):
    """Turns per-token hidden states into one vector per text: masked mean, CLS or masked max."""

    def __init__(self, mode: str = "mean") -> None:
        super().__init__()
        if mode not in POOLING_MODES:
            raise PolyheadError(f"unknown pooling {mode!r}; choose one of {', '.join(POOLING_MODES)}")
        self.mode = mode

    def forward(self, token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pool (batch, seq, dim) hidden states into (batch, dim), ignoring padding."""
        if self.mode == "cls":
            return token_embeddings[:, 0]
        mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
        if self.mode == "max":
            # Padding must never win the max, so it is pushed far below any real value.
            filled = token_embeddings.masked_fill(mask == 0, torch.finfo(token_embeddings.dtype).min)
            return filled.max(dim=1).values
        summed = (token_embeddings * mask).sum(dim=1)
        return summed / mask.sum(dim=1).clamp(min=1e-9)


class Encoder(nn.Module):
    """A Hugging Face encoder backbone with explicit pooling, normalisation and max length."""

    def __init__(
        self,
        model_name_or_path: str | os.PathLike | None = None,
        pooling: str = "mean",
        normalize: bool = True,
        max_length: int = 256,
        device: str | torch.device | None = None,
        precision: str = "fp32",
        *,
        backbone: nn.Module | None = None,
        tokenizer: Any = None,
    ) -> None:
        super().__init__()
        if max_length < 2:
            raise PolyheadError(f"max_length must be at least 2, got {max_length}")
        if backbone is None or tokenizer is None:
            backbone, tokenizer = load_backbone(model_name_or_path)
        self.name_or_path = DEFAULT_MODEL if is_default_name(model_name_or_path) else str(model_name_or_path)
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.pooling = Pooling(pooling)
        self.normalize = bool(normalize)
        model_max = getattr(getattr(backbone, "config", None), "max_position_embeddings", None)
        if model_max and max_length > model_max:
            raise PolyheadError(f"max_length {max_length} exceeds the backbone's {model_max} positions")
        self.max_length = int(max_length)
        self.device_ = pick_device(device)
        self.precision = resolve_precision(precision, self.device_)
        # Most padded tokens per forward pass when encoding (None: only batch_size limits a batch).
        self.batch_tokens: int | None = batch_tokens_for(self.device_)
        self._warned_truncation = False
        self.to(self.device_)
        self.eval()

    # -- properties -------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Size of the sentence embedding."""
        return int(self.backbone.config.hidden_size)

    @property
    def device(self) -> torch.device:
        """The device the weights live on."""
        return next(self.parameters()).device

    def config_dict(self) -> dict[str, Any]:
        """The choices outside the backbone, as saved with the model."""
        return {
            "name_or_path": self.name_or_path,
            "pooling": self.pooling.mode,
            "normalize": self.normalize,
            "max_length": self.max_length,
            "dim": self.dim,
        }

    # -- tokenisation -----------------------------------------------------------------
    def tokenize(self, texts: Sequence[str], *, offsets: bool = False, max_length: int | None = None) -> Any:
        """Tokenise texts, padded to the longest in the batch (never to max_length)."""
        texts = check_texts(texts)
        limit = max_length or self.max_length
        enc = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=limit,
            return_tensors="pt",
            return_offsets_mapping=offsets,
        )
        self._warned_truncation = warn_if_truncated(enc, limit, self._warned_truncation)
        return enc

    # -- forward ----------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Run the backbone once; return token states, the pooled and the output embedding."""
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.backbone(**kwargs).last_hidden_state
        pooled = self.pooling(hidden, attention_mask)
        embedding = nn.functional.normalize(pooled, p=2, dim=-1) if self.normalize else pooled
        return {"token_embeddings": hidden, "pooled": pooled, "sentence_embedding": embedding}

    def batches(self, texts: Sequence[str], batch_size: int, offsets: bool = False) -> Iterator[tuple[list[int], Any]]:
        """Yield (original indices, tokenised batch) with texts grouped by token length.

        Sorting by length first means each batch is padded only to its own longest text,
        which is what makes mixed-length corpora cheap; callers restore the input order.
        Every text is tokenised once, here; batches are padded from those token ids.
        """
        if batch_size < 1:
            raise PolyheadError(f"batch_size must be at least 1, got {batch_size}")
        texts = check_texts(texts)
        if not texts:
            return
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length, return_offsets_mapping=offsets)
        self._warned_truncation = warn_if_truncated(enc, self.max_length, self._warned_truncation)
        for idx in length_sorted_batches([len(ids) for ids in enc["input_ids"]], batch_size, self.batch_tokens):
            yield idx, self._padded(enc, idx)

    def _padded(self, enc: Any, idx: list[int]) -> Any:
        """The rows idx of an unpadded tokenisation as tensors, padded to their longest row.

        Pads exactly as `tokenizer(..., padding=True)` does, on the tokenizer's padding side.
        """
        from transformers import BatchEncoding

        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            raise PolyheadError("the tokenizer has no padding token; set tokenizer.pad_token before encoding")
        fill = {
            "input_ids": pad_id,
            "token_type_ids": getattr(self.tokenizer, "pad_token_type_id", 0),
            "attention_mask": 0,
            "special_tokens_mask": 1,
            "offset_mapping": (0, 0),
        }
        left = getattr(self.tokenizer, "padding_side", "right") == "left"
        width = max(len(enc["input_ids"][i]) for i in idx)
        out = {}
        for key in enc.keys():
            rows = []
            for i in idx:
                row = list(enc[key][i])
                pad = [fill.get(key, 0)] * (width - len(row))
                rows.append(pad + row if left else row + pad)
            out[key] = torch.tensor(rows, dtype=torch.long)
        return BatchEncoding(out)

    @torch.inference_mode()
    def encode(
        self,
        texts: Sequence[str] | str,
        batch_size: int = 32,
        normalize: bool | None = None,
        show_progress: bool = False,
        convert_to: str = "numpy",
    ) -> np.ndarray | torch.Tensor:
        """Embed texts into a (len(texts), dim) float32 array, in input order."""
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        normalize = self.normalize if normalize is None else normalize
        self.eval()
        out = torch.empty((len(texts), self.dim), dtype=torch.float32)
        device = self.device
        with progress(len(texts), show_progress, "encoding") as bar:
            for idx, enc in self.batches(texts, batch_size):
                enc = {k: v.to(device) for k, v in enc.items() if k != "offset_mapping"}
                with autocast_context(self.precision, device):
                    res = self.forward(**enc)
                vec = res["pooled"].float()
                if normalize:
                    vec = nn.functional.normalize(vec, p=2, dim=-1)
                out[idx] = vec.cpu()
                bar.update(len(idx))
        if convert_to == "tensor":
            return out[0] if single else out
        if convert_to != "numpy":
            raise PolyheadError(f"convert_to must be 'numpy' or 'tensor', got {convert_to!r}")
        arr = out.numpy()
        return arr[0] if single else arr

    # -- persistence ------------------------------------------------------------------
    def save_backbone(self, folder: str | os.PathLike) -> None:
        """Write backbone weights (safetensors), its config and the tokenizer into folder."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        quiet_transformers()
        self.backbone.save_pretrained(str(folder), safe_serialization=True)
        self.tokenizer.save_pretrained(str(folder))

    @classmethod
    def from_saved(cls, folder: str | os.PathLike, config: dict[str, Any], device: Any = None, precision: str = "fp32") -> "Encoder":
        """Rebuild an encoder from a saved backbone folder and its pooling config."""
        # strict: a folder polyhead wrote holds exactly the backbone's tensors, nothing else.
        backbone, tokenizer = load_backbone(str(folder), local_only=True, strict=True)
        enc = cls(
            pooling=config.get("pooling", "mean"),
            normalize=config.get("normalize", True),
            max_length=config.get("max_length", 256),
            device=device,
            precision=precision,
            backbone=backbone,
            tokenizer=tokenizer,
        )
        enc.name_or_path = config.get("name_or_path", str(folder))
        return enc


def warn_if_truncated(enc: Any, limit: int, already_warned: bool) -> bool:
    """Warn (once per owner) when a tokenised batch lost tokens to max_length; return the new flag."""
    if already_warned or not getattr(enc, "encodings", None):
        return already_warned
    if any(e.overflowing for e in enc.encodings):
        warnings.warn(
            f"some texts are longer than max_length={limit} tokens and were truncated (this warning is shown once)",
            stacklevel=user_stacklevel(),
        )
        return True
    return False

