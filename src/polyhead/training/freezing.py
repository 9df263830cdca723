"""Transfer-learning controls: freezing, gradual unfreezing, layer-wise learning-rate decay."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .config import FreezeConfig, TrainingConfig
from ..errors import PolyheadError


@dataclass
class LayerGroups:
    """The backbone's parameters split by depth: embeddings, each layer (bottom first), the rest."""

    embeddings: list[tuple[str, nn.Parameter]]
    layers: list[list[tuple[str, nn.Parameter]]]
    other: list[tuple[str, nn.Parameter]]


def layer_groups(backbone: nn.Module) -> LayerGroups:
    """Find the embeddings and the stack of transformer layers of any BERT-like backbone."""
    n_layers = getattr(getattr(backbone, "config", None), "num_hidden_layers", None)
    stack_name = None
    for name, module in backbone.named_modules():
        if isinstance(module, nn.ModuleList) and n_layers and len(module) == n_layers:
            stack_name = name
            break
    if stack_name is None:
        raise PolyheadError("cannot find the transformer layer stack of this backbone (needed for layer freezing/decay)")
    prefix = stack_name + "."
    layers: list[list[tuple[str, nn.Parameter]]] = [[] for _ in range(n_layers)]
    embeddings, other = [], []
    for name, p in backbone.named_parameters():
        if name.startswith(prefix):
            layers[int(name[len(prefix) :].split(".")[0])].append((name, p))
        elif "embed" in name:
            embeddings.append((name, p))
        else:
            other.append((name, p))
    return LayerGroups(embeddings, layers, other)


def backbone_depths(backbone: nn.Module) -> dict[str, int]:
    """Depth from the top for every backbone parameter: top layer 0, embeddings = number of layers."""
    groups = layer_groups(backbone)
    n = len(groups.layers)
    depths = {name: n for name, _ in groups.embeddings}
    for i, layer in enumerate(groups.layers):
        depths.update({name: n - 1 - i for name, _ in layer})
    depths.update({name: 0 for name, _ in groups.other})  # e.g. a final LayerNorm sits on top
    return depths


def apply_freezing(model: nn.Module, freeze: FreezeConfig) -> set[str]:
    """Set requires_grad for the static freezing choices; return the names of frozen parameters."""
    backbone = model.encoder.backbone
    frozen: set[str] = set()

    def off(prefix: str, params: list[tuple[str, nn.Parameter]]) -> None:
        for name, p in params:
            p.requires_grad_(False)
            frozen.add(prefix + name)

    if freeze.all:
        off("", list(model.named_parameters()))
        return frozen
    enc_prefix = "encoder.backbone."
    if freeze.encoder:
        off(enc_prefix, list(backbone.named_parameters()))
        off("encoder.projection.", list(model.encoder.projection.named_parameters()))
    else:
        groups = layer_groups(backbone) if (freeze.embeddings or freeze.layers) else None
        if freeze.embeddings and groups:
            off(enc_prefix, groups.embeddings)
        if freeze.layers and groups:
            if freeze.layers > len(groups.layers):
                raise PolyheadError(f"freeze.layers={freeze.layers} but the backbone has {len(groups.layers)} layers")
            for layer in groups.layers[: freeze.layers]:
                off(enc_prefix, layer)
    for head in freeze.heads:
        off(f"heads.{head}.", list(model.heads[head].named_parameters()))
    return frozen


class GradualUnfreezer:
    """ULMFiT-style schedule: heads first, then one more backbone layer group every `every` units.

    Stage 0 trains the heads only; stage k also trains the top k layers; the embeddings come
    last. Statically frozen parameters never unfreeze.
    """

    def __init__(self, model: nn.Module, every: int, static_frozen: set[str]) -> None:
        if every < 1:
            raise PolyheadError("freeze.gradual_unfreezing must be at least 1")
        self.every = every
        groups = layer_groups(model.encoder.backbone)
        prefix = "encoder.backbone."
        # Top layer first; the "other" parameters (e.g. final norm) join with the top layer.
        ordered = [groups.layers[-1] + groups.other] + list(reversed(groups.layers[:-1])) + [groups.embeddings]
        self.stages = [[(prefix + n, p) for n, p in g] for g in ordered]
        # The modules after pooling (a Dense layer) sit above the top layer: they thaw with it.
        self.stages[0] += [("encoder.projection." + n, p) for n, p in model.encoder.projection.named_parameters()]
        self.static_frozen = static_frozen
        self.stage = -1

    def update(self, progress: int) -> bool:
        """Apply the stage for this many elapsed units; True when the trainable set changed."""
        stage = min(progress // self.every, len(self.stages))
        if stage == self.stage:
            return False
        self.stage = stage
        for i, group in enumerate(self.stages):
            for name, p in group:
                if name not in self.static_frozen:
                    p.requires_grad_(i < stage)
        return True


def param_groups(model: nn.Module, train: TrainingConfig, extra: list[nn.Parameter] = ()) -> list[dict]:
    """AdamW parameter groups: layer-wise lr decay on the backbone, head lr, no decay on biases/norms.

    Call it after static freezing and before gradual unfreezing: every parameter that may
    ever train is included, so unfreezing needs no optimiser rebuild (AdamW skips
    parameters whose grad is None).
    """
    head_lr = train.effective_head_lr
    depths = backbone_depths(model.encoder.backbone) if train.layer_decay != 1.0 else {}
    buckets: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:  # statically frozen: never in the optimiser, so never touched
            continue
        if name.startswith("encoder.backbone."):
            depth = depths.get(name[len("encoder.backbone.") :], 0)
            lr = train.lr * train.layer_decay**depth
        elif name.startswith("encoder."):  # the modules after pooling train with the top layer
            lr = train.lr
        else:
            lr = head_lr
        no_decay = p.ndim < 2 or "norm" in name.lower()
        wd = 0.0 if no_decay else train.weight_decay
        buckets.setdefault((lr, wd), []).append(p)
    groups = [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in buckets.items()]
    if extra:
        groups.append({"params": list(extra), "lr": head_lr, "weight_decay": 0.0})
    return groups
