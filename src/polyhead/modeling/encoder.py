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
from .st_modules import (
    POOLING_MODES, FolderSettings, Pooling, folder_locator, pooling_modes, read_settings, resolve_prompt,
    with_prompt, write_settings,
)

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


class Encoder(nn.Module):
    """A Hugging Face encoder backbone with explicit pooling, normalisation and max length.

    A sentence-transformers folder (or Hub model) is read the way sentence-transformers reads it:
    its Pooling mode, the Dense / LayerNorm / Normalize modules after it, its max_seq_length and
    do_lower_case, and its prompts (see st_modules.py). Arguments given here win over the folder
    (with a one-line warning when they differ from it); a plain Hugging Face model without
    sentence-transformers files gets polyhead's defaults: mean pooling, normalised, 256 tokens.
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike | None = None,
        pooling: str | None = None,
        normalize: bool | None = None,
        max_length: int | None = None,
        device: str | torch.device | None = None,
        precision: str = "fp32",
        *,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        backbone: nn.Module | None = None,
        tokenizer: Any = None,
        settings: FolderSettings | None = None,
    ) -> None:
        super().__init__()
        if max_length is not None and max_length < 2:
            raise PolyheadError(f"max_length must be at least 2, got {max_length}")
        if backbone is None or tokenizer is None:
            backbone, tokenizer = load_backbone(model_name_or_path, revision=revision, cache_dir=cache_dir)
            resolved = resolve_model_path(model_name_or_path, revision, cache_dir)  # the same folder (a Hub copy is cached)
            settings = read_settings(folder_locator(resolved), str(model_name_or_path or DEFAULT_MODEL), _hidden_size(backbone))
        self.name_or_path = DEFAULT_MODEL if is_default_name(model_name_or_path) else str(model_name_or_path)
        self.backbone = backbone
        self.tokenizer = tokenizer
        folder = settings or FolderSettings(source="")
        chosen = _choose(settings, "pooling", pooling_modes(pooling) if pooling is not None else None, folder.pooling, ("mean",))
        self.pooling = Pooling(chosen, include_prompt=folder.include_prompt)
        self.normalize = bool(_choose(settings, "normalize", normalize, folder.normalize, True))
        # What sentence-transformers runs after pooling (Dense, LayerNorm, a Normalize that is not last).
        self.projection = nn.ModuleList(folder.modules)
        limit = position_limit(backbone, tokenizer)
        length = _choose(settings, "max_length", max_length, folder.max_length, min(256, limit) if limit else 256)
        if limit and length > limit:
            raise PolyheadError(f"max_length {length} exceeds the backbone's {limit} positions")
        self.max_length = int(length)
        self.do_lower_case = bool(folder.do_lower_case)
        if self.do_lower_case:
            lowercase_inputs(tokenizer)
        self.prompts = dict(folder.prompts if prompts is None else prompts)
        self.default_prompt_name = folder.default_prompt_name if default_prompt_name is None else default_prompt_name
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise PolyheadError(f"default_prompt_name {self.default_prompt_name!r} is not one of the prompts ({', '.join(self.prompts) or 'none'})")
        self._prompt_lengths: dict[str, int] = {}
        self.device_ = pick_device(device)
        self.precision = resolve_precision(precision, self.device_)
        # Most padded tokens per forward pass when encoding (None: only batch_size limits a batch).
        self.batch_tokens: int | None = batch_tokens_for(self.device_)
        self._warned_truncation = False
        self.to(self.device_)
        self.eval()

    # -- properties -------------------------------------------------------------------
    @property
    def hidden_size(self) -> int:
        """Size of the backbone's per-token states (what token heads read)."""
        return _hidden_size(self.backbone)

    @property
    def dim(self) -> int:
        """Size of the sentence embedding (after pooling and any Dense module)."""
        dim = _hidden_size(self.backbone) * len(self.pooling.modes)
        for module in self.projection:
            dim = getattr(module, "out_dim", dim)
        return int(dim)

    @property
    def device(self) -> torch.device:
        """The device the weights live on."""
        return next(self.parameters()).device

    def config_dict(self) -> dict[str, Any]:
        """The choices outside the backbone, as saved with the model."""
        cfg: dict[str, Any] = {
            "name_or_path": self.name_or_path,
            "pooling": self.pooling.mode,
            "normalize": self.normalize,
            "max_length": self.max_length,
            "dim": self.dim,
        }
        # Written only when they differ from a plain model, so older folders compare equal.
        if not self.pooling.include_prompt:
            cfg["include_prompt"] = False
        if self.projection:
            cfg["modules"] = [{"type": m.kind, **m.config()} for m in self.projection]
        if self.do_lower_case:
            cfg["do_lower_case"] = True
        if self.prompts:
            cfg["prompts"] = dict(self.prompts)
        if self.default_prompt_name is not None:
            cfg["default_prompt_name"] = self.default_prompt_name
        return cfg

    # -- prompts ----------------------------------------------------------------------
    def resolve_prompt(self, prompt: str | None = None, prompt_name: str | None = None) -> str | None:
        """The prompt text to put before each input: `prompt`, else the named one, else the default."""
        return resolve_prompt(self.prompts, self.default_prompt_name, prompt, prompt_name)

    def prompt_length(self, prompt: str) -> int:
        """The prompt's tokens, with the leading special token and without a trailing one (as
        sentence-transformers counts them for `include_prompt=False` pooling)."""
        if prompt not in self._prompt_lengths:
            ids = self.tokenizer([prompt], truncation=True, max_length=self.max_length)["input_ids"][0]
            special = set(getattr(self.tokenizer, "all_special_ids", []) or [])
            self._prompt_lengths[prompt] = len(ids) - (1 if ids and ids[-1] in special else 0)
        return self._prompt_lengths[prompt]

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
        prompt_length: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Run the backbone once; return token states, the pooled and the output embedding.

        `pooled` is the pooling output after any Dense/LayerNorm modules, before normalisation
        (what sentence heads read); `prompt_length` leaves a prompt out of the pool when the
        pooling says `include_prompt=False`.
        """
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.backbone(**kwargs).last_hidden_state
        pooled = self.pooling(hidden, attention_mask, prompt_length)
        for module in self.projection:
            pooled = module(pooled)
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
        *,
        prompt_name: str | None = None,
        prompt: str | None = None,
    ) -> np.ndarray | torch.Tensor:
        """Embed texts into a (len(texts), dim) float32 array, in input order.

        `prompt_name` (one of `prompts`) or `prompt` (any text) goes before every text, as in
        sentence-transformers; with neither, the default prompt applies when the model has one.
        """
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        normalize = self.normalize if normalize is None else normalize
        text_prompt = self.resolve_prompt(prompt, prompt_name)
        prompt_length = None
        if text_prompt:
            texts = with_prompt(texts, text_prompt)
            prompt_length = None if self.pooling.include_prompt else self.prompt_length(text_prompt)
        self.eval()
        out = torch.empty((len(texts), self.dim), dtype=torch.float32)
        device = self.device
        with progress(len(texts), show_progress, "encoding") as bar:
            for idx, enc in self.batches(texts, batch_size):
                enc = {k: v.to(device) for k, v in enc.items() if k != "offset_mapping"}
                with autocast_context(self.precision, device):
                    res = self.forward(**enc, prompt_length=prompt_length)
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
        """Write the encoder as a sentence-transformers folder: backbone weights (safetensors), its
        config and the tokenizer, then modules.json, Pooling, Dense/LayerNorm/Normalize and prompts."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        quiet_transformers()
        self.backbone.save_pretrained(str(folder), safe_serialization=True)
        self.tokenizer.save_pretrained(str(folder))
        write_settings(folder, hidden_size=_hidden_size(self.backbone), pooling=self.pooling, modules=list(self.projection),
                       normalize=self.normalize, max_length=self.max_length, do_lower_case=self.do_lower_case,
                       prompts=self.prompts, default_prompt_name=self.default_prompt_name)

    @classmethod
    def from_saved(cls, folder: str | os.PathLike, config: dict[str, Any], device: Any = None, precision: str = "fp32") -> "Encoder":
        """Rebuild an encoder from a saved backbone folder and its pooling config."""
        # strict: a folder polyhead wrote holds exactly the backbone's tensors, nothing else.
        backbone, tokenizer = load_backbone(str(folder), local_only=True, strict=True)
        # Folders saved before polyhead wrote the sentence-transformers modules have none: then
        # polyhead.json's choices are all there is.
        settings = read_settings(folder_locator(folder), str(folder), _hidden_size(backbone))
        enc = cls(
            pooling=config.get("pooling", "mean"),
            normalize=config.get("normalize", True),
            max_length=config.get("max_length", 256),
            device=device,
            precision=precision,
            backbone=backbone,
            tokenizer=tokenizer,
            settings=settings,
        )
        enc.name_or_path = config.get("name_or_path", str(folder))
        return enc


def _hidden_size(backbone: nn.Module) -> int:
    return int(backbone.config.hidden_size)  # type: ignore[union-attr]


def _choose(settings: FolderSettings | None, what: str, given: Any, from_folder: Any, default: Any) -> Any:
    """The value to use: the argument, else the folder's, else polyhead's default; an argument that
    differs from the folder's sentence-transformers config is used, and said in one line."""
    if given is None:
        return from_folder if settings is not None and from_folder is not None else default
    if settings is not None and from_folder is not None and given != from_folder:
        shown = (lambda v: "+".join(v) if isinstance(v, tuple) else v)
        if what == "max_length":
            effect = (f"texts over {given} tokens are cut shorter than the published model cuts them" if given < from_folder
                      else f"texts over {from_folder} tokens are read further than the model was published to")
        else:
            effect = "so embeddings differ from the published model's"
        warnings.warn(
            f"{what}={shown(given)!r} given; {settings.source}'s sentence-transformers config says "
            f"{shown(from_folder)!r} (the given value is used: {effect})",
            stacklevel=user_stacklevel(),
        )
    return given


def position_limit(backbone: nn.Module, tokenizer: Any) -> int | None:
    """The most tokens the backbone can take: its position table, or the tokenizer's limit when
    that is smaller (RoBERTa and XLM-R have 514 positions but take 512 tokens)."""
    limit = getattr(getattr(backbone, "config", None), "max_position_embeddings", None)
    tok = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok, int) and 1 < tok < 1_000_000:
        limit = min(limit, tok) if limit else tok
    return int(limit) if limit else None


def lowercase_inputs(tokenizer: Any) -> None:
    """Make a fast tokenizer lowercase its input (sentence-transformers' do_lower_case), once."""
    from tokenizers import normalizers

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise PolyheadError("do_lower_case needs a fast tokenizer (tokenizer.json)")
    current = backend.normalizer
    if current is not None and "Lowercase" in repr(current):
        return
    parts = [normalizers.Lowercase()]
    if isinstance(current, normalizers.Sequence):
        parts += list(current)
    elif current is not None:
        parts.append(current)
    backend.normalizer = normalizers.Sequence(parts)


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

