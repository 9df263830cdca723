"""The modules of a sentence-transformers model folder, read and written the way sentence-transformers
does it: Pooling (every mode it has), Dense, LayerNorm and Normalize, the Transformer's
`max_seq_length` and `do_lower_case`, and the prompts.

A sentence-transformers folder lists its modules in `modules.json`, in order: the Transformer (the
backbone at the folder's root), Pooling, then any of Dense, LayerNorm and Normalize, each with its
own sub-folder (`config.json`, and `model.safetensors` for modules with weights). Prompts and the
default prompt live in `config_sentence_transformers.json`.

polyhead runs no code from a folder: activations are looked up among torch.nn's own classes,
weights are read from safetensors only, and a module polyhead does not implement is a one-line
error that names it (never a silent skip, which would give other vectors than the model's).
"""
from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..errors import PolyheadError

POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
# Other spellings users and older sentence-transformers configs use for the same modes.
POOLING_ALIASES = {"mean_sqrt_len": "mean_sqrt_len_tokens", "mean_tokens": "mean", "cls_token": "cls",
                   "max_tokens": "max", "weightedmean_tokens": "weightedmean", "last_token": "lasttoken"}
# sentence-transformers' legacy Pooling config: one boolean per mode, concatenated in this order.
LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max", "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
MODULE_TYPES = ("Transformer", "Pooling", "Dense", "LayerNorm", "Normalize")
ST_CONFIG = "config_sentence_transformers.json"
TRANSFORMER_CONFIG = "sentence_bert_config.json"
DEFAULT_ACTIVATION = "torch.nn.modules.activation.Tanh"  # sentence-transformers' Dense default


def pooling_modes(mode: str | Sequence[str]) -> tuple[str, ...]:
    """A pooling choice as a tuple of modes: "cls", "mean+max" or ["mean", "max"] (concatenated)."""
    parts = mode.split("+") if isinstance(mode, str) else list(mode)
    modes = tuple(POOLING_ALIASES.get(str(p).strip(), str(p).strip()) for p in parts)
    bad = [m for m in modes if m not in POOLING_MODES]
    if not modes or bad:
        raise PolyheadError(f"unknown pooling {mode!r}; choose one of {', '.join(POOLING_MODES)} (or several joined by '+')")
    return modes


class Pooling(nn.Module):
    """Per-token hidden states to one vector per text, as sentence-transformers' Pooling computes it.

    Modes: mean, cls (the first real token), max, mean_sqrt_len_tokens (sum / sqrt(length)),
    weightedmean (position-weighted mean), lasttoken (the last real token), or several of them
    concatenated. With `include_prompt=False` the prompt's tokens are left out of the pool.
    """

    def __init__(self, mode: str | Sequence[str] = "mean", include_prompt: bool = True) -> None:
        super().__init__()
        self.modes = pooling_modes(mode)
        self.include_prompt = bool(include_prompt)

    @property
    def mode(self) -> str:
        """The mode as one string ("mean", or "cls+mean" for a concatenation)."""
        return "+".join(self.modes)

    @mode.setter
    def mode(self, value: str | Sequence[str]) -> None:
        self.modes = pooling_modes(value)

    def forward(self, token_embeddings: torch.Tensor, attention_mask: torch.Tensor, prompt_length: int | None = None) -> torch.Tensor:
        """Pool (batch, seq, dim) hidden states into (batch, dim × modes), ignoring padding."""
        original = attention_mask
        if prompt_length and not self.include_prompt:
            # Padding may be on the left: the prompt starts at each row's first real token.
            start = attention_mask.to(torch.int32).argmax(dim=1)
            positions = torch.arange(attention_mask.size(1), device=attention_mask.device).unsqueeze(0)
            attention_mask = attention_mask.masked_fill(positions < (start + prompt_length).unsqueeze(1), 0)
        h = token_embeddings
        mask = attention_mask.unsqueeze(-1).to(h.dtype)
        out = []
        for mode in self.modes:
            if mode == "cls":
                first = attention_mask.to(torch.int32).argmax(dim=1)
                out.append(torch.gather(h, 1, first.view(-1, 1, 1).expand(-1, 1, h.size(-1))).squeeze(1))
            elif mode == "max":
                # Padding must never win the max, so it is pushed far below any real value.
                out.append(h.masked_fill(mask == 0, torch.finfo(h.dtype).min).max(dim=1).values)
            elif mode in ("mean", "mean_sqrt_len_tokens"):
                count = mask.sum(dim=1).clamp(min=1e-9)
                out.append((h * mask).sum(dim=1) / (count if mode == "mean" else count.sqrt()))
            elif mode == "weightedmean":
                weights = torch.arange(1, h.size(1) + 1, device=h.device, dtype=h.dtype).view(1, -1, 1)
                weights = weights - original.to(torch.int32).argmax(dim=1).to(h.dtype).view(-1, 1, 1)
                weighted = mask * weights
                out.append((h * weighted).sum(dim=1) / weighted.sum(dim=1).clamp(min=1e-9))
            else:  # lasttoken
                seq = h.size(1)
                values, from_end = attention_mask.to(torch.int32).flip(1).max(dim=1)
                from_end = torch.where(values == 0, torch.full_like(from_end, seq - 1), from_end)
                last = (seq - from_end - 1).view(-1, 1, 1).expand(-1, 1, h.size(-1))
                out.append(torch.gather(h * mask, 1, last).squeeze(1))
        return out[0] if len(out) == 1 else torch.cat(out, dim=-1)


class Dense(nn.Module):
    """sentence-transformers' Dense: activation(linear(x)), optionally plus a (projected) residual."""

    kind = "Dense"

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 activation_function: str | None = DEFAULT_ACTIVATION, use_residual: bool = False) -> None:
        super().__init__()
        self.in_features, self.out_features, self.use_residual = int(in_features), int(out_features), bool(use_residual)
        self.activation_name = activation_function or "torch.nn.modules.linear.Identity"
        self.linear = nn.Linear(self.in_features, self.out_features, bias=bool(bias))
        self.activation_function = torch_activation(self.activation_name)
        if self.use_residual and self.in_features != self.out_features:
            self.residual = nn.Linear(self.in_features, self.out_features, bias=False)

    @property
    def in_dim(self) -> int:
        return self.in_features

    @property
    def out_dim(self) -> int:
        return self.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.activation_function(self.linear(x))
        if self.use_residual:
            out = out + (x if self.in_features == self.out_features else self.residual(x))
        return out

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"in_features": self.in_features, "out_features": self.out_features,
                               "bias": self.linear.bias is not None, "activation_function": self.activation_name}
        if self.use_residual:
            cfg["use_residual"] = True
        return cfg


class LayerNorm(nn.Module):
    """sentence-transformers' LayerNorm module over the sentence embedding."""

    kind = "LayerNorm"

    def __init__(self, dimension: int) -> None:
        super().__init__()
        self.dimension = int(dimension)
        self.norm = nn.LayerNorm(self.dimension)

    @property
    def in_dim(self) -> int:
        return self.dimension

    out_dim = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)

    def config(self) -> dict[str, Any]:
        return {"dimension": self.dimension}


class Normalize(nn.Module):
    """L2 normalisation placed before other modules (a trailing one is the encoder's `normalize`)."""

    kind = "Normalize"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(x, p=2, dim=-1)

    def config(self) -> dict[str, Any]:
        return {}


def torch_activation(name: str) -> nn.Module:
    """The torch.nn activation class a Dense config names ("torch.nn.modules.activation.Tanh"), built
    with no arguments; anything else is refused, since it would be code from the folder."""
    short = name.rsplit(".", 1)[-1]
    cls = getattr(nn, short, None)
    if not name.startswith("torch.") or not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        raise PolyheadError(f"Dense activation {name!r} is not a torch.nn module; polyhead runs no code from a model folder")
    try:
        return cls()
    except TypeError as exc:
        raise PolyheadError(f"Dense activation {name!r} needs arguments polyhead cannot know") from exc


@dataclass
class FolderSettings:
    """What a sentence-transformers folder says about everything outside the backbone."""

    source: str
    pooling: tuple[str, ...] | None = None
    include_prompt: bool = True
    max_length: int | None = None
    do_lower_case: bool = False
    modules: list[nn.Module] = field(default_factory=list)  # after pooling, without a trailing Normalize
    normalize: bool = False
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None


Locate = Callable[[str], "Path | None"]


def folder_locator(folder: str | os.PathLike) -> Locate:
    """A file finder for a local folder."""
    root = Path(folder)
    return lambda rel: (root / rel) if (root / rel).is_file() else None


def _json(locate: Locate, rel: str, source: str) -> Any:
    from ..io import read_json_value

    path = locate(rel)
    return None if path is None else read_json_value(path, f"{source}/{rel}")


def read_settings(locate: Locate, source: str, hidden_size: int) -> FolderSettings | None:
    """Read a sentence-transformers folder's modules (None when it has no modules.json: a plain
    Hugging Face model). Every problem is a one-line PolyheadError naming the file."""
    modules = _json(locate, "modules.json", source)
    if modules is None:
        return None
    where = f"{source}/modules.json"
    if not isinstance(modules, list) or not all(isinstance(m, dict) and isinstance(m.get("type"), str) for m in modules):
        raise PolyheadError(f"{where}: expected a list of modules, each with a 'type'")
    settings = FolderSettings(source=source)
    names = [str(m["type"]).rsplit(".", 1)[-1] for m in modules]
    unknown = [(m["type"], m.get("path", "")) for m, n in zip(modules, names) if n not in MODULE_TYPES]
    if unknown:
        kind, path = unknown[0]
        raise PolyheadError(f"{where}: module {kind} ({path or 'the root'}) is not supported by polyhead "
                            f"(it runs {', '.join(MODULE_TYPES)}); its vectors cannot be reproduced")
    if names[:2] != ["Transformer", "Pooling"]:
        raise PolyheadError(f"{where}: polyhead needs a Transformer followed by a Pooling module, found {', '.join(names) or 'none'}")
    if str(modules[0].get("path", "")).strip("/") not in ("", "."):
        raise PolyheadError(f"{where}: the Transformer is in the sub-folder {modules[0]['path']!r}; "
                            f"load that sub-folder's model or move its files to the root")
    tcfg = _json(locate, TRANSFORMER_CONFIG, source) or {}
    if not isinstance(tcfg, dict):
        raise PolyheadError(f"{source}/{TRANSFORMER_CONFIG}: expected a JSON object")
    if tcfg.get("max_seq_length") is not None:
        settings.max_length = _int(tcfg["max_seq_length"], f"{source}/{TRANSFORMER_CONFIG}: max_seq_length")
    settings.do_lower_case = bool(tcfg.get("do_lower_case", False))
    dim = hidden_size
    for index, (entry, name) in enumerate(zip(modules[1:], names[1:]), start=1):
        rel = str(entry.get("path", "")).strip("/")
        cfg = _json(locate, f"{rel}/config.json", source) if rel else None
        label = f"{source}/{rel or 'modules.json'}"
        if cfg is not None and not isinstance(cfg, dict):
            raise PolyheadError(f"{label}/config.json: expected a JSON object")
        cfg = dict(cfg or {})
        if name == "Pooling":
            if index != 1:
                raise PolyheadError(f"{where}: a second Pooling module ({rel}) is not supported")
            settings.pooling, settings.include_prompt = pooling_config(cfg)
            dim = hidden_size * len(settings.pooling)
            continue
        if settings.normalize:  # a Normalize followed by more modules runs in place
            settings.modules.append(Normalize())
            settings.normalize = False
        for key in ("module_input_name", "module_output_name"):
            if cfg.get(key) not in (None, "sentence_embedding"):
                raise PolyheadError(f"{label}/config.json: {key}={cfg[key]!r} is not supported (polyhead reads and writes the sentence embedding)")
        if name == "Normalize":
            settings.normalize = True
            continue
        module = build_module(name, cfg, label)
        if module.in_dim != dim:
            raise PolyheadError(f"{label}: takes {module.in_dim}-dimensional input but the module before it gives {dim}")
        load_module_weights(module, locate, rel, label)
        settings.modules.append(module)
        dim = module.out_dim
    st = _json(locate, ST_CONFIG, source) or {}
    if not isinstance(st, dict):
        raise PolyheadError(f"{source}/{ST_CONFIG}: expected a JSON object")
    prompts = st.get("prompts") or {}
    if not isinstance(prompts, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in prompts.items()):
        raise PolyheadError(f"{source}/{ST_CONFIG}: 'prompts' must map names to strings")
    settings.prompts = dict(prompts)
    default = st.get("default_prompt_name")
    if default is not None and default not in prompts:
        raise PolyheadError(f"{source}/{ST_CONFIG}: default_prompt_name {default!r} is not one of its prompts ({', '.join(prompts) or 'none'})")
    settings.default_prompt_name = default
    return settings


def pooling_config(cfg: dict[str, Any]) -> tuple[tuple[str, ...], bool]:
    """The modes and include_prompt of a Pooling config (current or legacy keys)."""
    if "pooling_mode" in cfg:
        modes = pooling_modes(cfg["pooling_mode"])
    else:
        modes = tuple(mode for key, mode in LEGACY_POOLING_KEYS.items() if cfg.get(key)) or ("mean",)
    return modes, bool(cfg.get("include_prompt", True))


def build_module(name: str, cfg: dict[str, Any], label: str) -> Dense | LayerNorm:
    """A Dense or LayerNorm module from its config."""
    try:
        if name == "Dense":
            act = cfg.get("activation_function", DEFAULT_ACTIVATION)
            return Dense(_int(cfg["in_features"], "in_features"), _int(cfg["out_features"], "out_features"),
                         bool(cfg.get("bias", True)), act, bool(cfg.get("use_residual", False)))
        return LayerNorm(_int(cfg["dimension"], "dimension"))
    except KeyError as exc:
        raise PolyheadError(f"{label}/config.json: {name} needs {exc.args[0]!r}") from exc
    except PolyheadError as exc:
        raise PolyheadError(f"{label}/config.json: {exc}") from exc


def load_module_weights(module: nn.Module, locate: Locate, rel: str, label: str) -> None:
    """Load a module's model.safetensors (pickled weights are refused), every tensor checked."""
    from safetensors.torch import load_file

    from .backbone import check_safetensors_file, load_checked_state

    path = locate(f"{rel}/model.safetensors") if rel else None
    if path is None:
        pickled = locate(f"{rel}/pytorch_model.bin") if rel else None
        why = "only pickled pytorch_model.bin weights, which polyhead refuses" if pickled else "no model.safetensors"
        raise PolyheadError(f"{label}: has {why}")
    check_safetensors_file(path)
    load_checked_state(module, load_file(str(path)), path, "the module's config", "the config")


def write_settings(folder: Path, *, hidden_size: int, pooling: Pooling, modules: Sequence[nn.Module], normalize: bool,
                   max_length: int, do_lower_case: bool, prompts: dict[str, str], default_prompt_name: str | None) -> None:
    """Write the sentence-transformers metadata (and Dense/LayerNorm weights) next to a saved backbone."""
    from safetensors.torch import save_file

    from ..io import write_json_atomic

    entries = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]

    def add(kind: str) -> Path:
        idx = len(entries)
        entries.append({"idx": idx, "name": str(idx), "path": f"{idx}_{kind}", "type": f"sentence_transformers.models.{kind}"})
        sub = folder / f"{idx}_{kind}"
        sub.mkdir(parents=True, exist_ok=True)
        return sub

    sub = add("Pooling")
    cfg: dict[str, Any] = {"word_embedding_dimension": hidden_size}
    canonical = tuple(m for m in LEGACY_POOLING_KEYS.values() if m in pooling.modes)
    if canonical == pooling.modes:  # the legacy booleans: read by every sentence-transformers version
        cfg.update({key: mode in pooling.modes for key, mode in LEGACY_POOLING_KEYS.items()})
    else:
        cfg = {"embedding_dimension": hidden_size, "pooling_mode": list(pooling.modes)}
    if not pooling.include_prompt:
        cfg["include_prompt"] = False
    write_json_atomic(sub / "config.json", cfg)
    for module in modules:
        sub = add(module.kind)  # type: ignore[attr-defined]
        write_json_atomic(sub / "config.json", module.config())  # type: ignore[operator]
        tensors = {k: v.detach().float().cpu().contiguous() for k, v in module.state_dict().items()}
        if tensors:
            save_file(tensors, str(sub / "model.safetensors"))
    if normalize:
        add("Normalize")
    write_json_atomic(folder / "modules.json", entries)
    write_json_atomic(folder / TRANSFORMER_CONFIG, {"max_seq_length": max_length, "do_lower_case": do_lower_case})
    st: dict[str, Any] = {"prompts": dict(prompts), "default_prompt_name": default_prompt_name, "similarity_fn_name": "cosine"}
    write_json_atomic(folder / ST_CONFIG, st)


def resolve_prompt(prompts: dict[str, str], default_name: str | None, prompt: str | None = None,
                   prompt_name: str | None = None) -> str | None:
    """The text to put before each input: `prompt`, else the named prompt, else the default one."""
    if prompt is not None and prompt_name is not None:
        raise PolyheadError("give either prompt or prompt_name, not both")
    if prompt is not None:
        if not isinstance(prompt, str):
            raise PolyheadError(f"prompt must be a string, got {type(prompt).__name__}")
        return prompt
    if prompt_name is not None:
        if prompt_name not in prompts:
            raise PolyheadError(f"unknown prompt name {prompt_name!r}; this model has {', '.join(prompts) or 'no prompts'}")
        return prompts[prompt_name]
    return prompts.get(default_name) if default_name else None


def with_prompt(texts: list[Any], prompt: str | None) -> list[Any]:
    """Each text with the prompt in front (non-strings are left for check_texts to name)."""
    return [prompt + t if isinstance(t, str) else t for t in texts] if prompt else texts


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PolyheadError(f"{what} must be a positive integer, got {value!r}")
    return value
