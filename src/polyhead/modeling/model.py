"""MultiTaskModel: one shared encoder + named heads; forward, predict, save and load."""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .. import __version__
from ..console import progress
from ..errors import PolyheadError
from ..io import read_json, replace_dir, write_json_atomic
from .backbone import FIX_FOLDER, check_safetensors_file
from .backend import describe_encoder, paired_similarity, prediction
from .encoder import Encoder, autocast_context
from .heads import build_head, per_text_tasks
from .tasks import TaskSpec

FORMAT_NAME = "polyhead-model"
FORMAT_VERSION = 1
CONFIG_FILE = "polyhead.json"
ENCODER_DIR = "encoder"
HEADS_DIR = "heads"


class MultiTaskModel(nn.Module):
    """One shared encoder and any number of task heads, run in a single forward pass.

    The PyTorch backend of the inference contract in `backend.InferenceModel`.
    """

    backend = "torch"

    def __init__(self, encoder: Encoder | None = None, tasks: Sequence[TaskSpec | dict] = ()) -> None:
        super().__init__()
        self.encoder = encoder if encoder is not None else Encoder()
        self.tasks: dict[str, TaskSpec] = {}
        self.heads = nn.ModuleDict()
        for spec in tasks:
            self.add_task(spec)

    # -- building ---------------------------------------------------------------------
    def add_task(self, spec: TaskSpec | dict) -> TaskSpec:
        """Attach a new head; labels must be known (classification/token) before it is built."""
        if isinstance(spec, dict):
            spec = TaskSpec.from_dict(spec)
        if spec.name in self.tasks:
            raise PolyheadError(f"a task named {spec.name!r} already exists")
        if spec.kind in ("classification", "token") and not spec.labels:
            raise PolyheadError(f"task {spec.name!r} has no labels; give them or take them from data")
        self.tasks[spec.name] = spec
        self.heads[spec.name] = build_head(spec, self.encoder.dim).to(self.encoder.device)
        return spec

    @property
    def device(self) -> torch.device:
        """The device the weights live on."""
        return self.encoder.device

    @property
    def tokenizer(self) -> Any:
        """The encoder's tokenizer."""
        return self.encoder.tokenizer

    def describe(self) -> dict[str, Any]:
        """Static facts for /info and model cards (see backend.describe_encoder)."""
        return describe_encoder(self, self.info())

    def _select(self, tasks: Sequence[str] | None) -> list[str]:
        return select_tasks(self.tasks, tasks)

    # -- forward ----------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        tasks: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Run the encoder once and the requested heads (all by default) on its output."""
        features = self.encoder(input_ids, attention_mask, token_type_ids)
        features["heads"] = {name: self.heads[name](features) for name in self._select(tasks)}
        return features

    # -- inference --------------------------------------------------------------------
    def encode(self, texts: Sequence[str], **kwargs: Any) -> np.ndarray:
        """Sentence embeddings from the shared encoder (see Encoder.encode)."""
        return self.encoder.encode(texts, **kwargs)

    @torch.inference_mode()
    def similarity(self, texts_a: Sequence[str], texts_b: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Cosine similarity of each pair (texts_a[i], texts_b[i])."""
        return paired_similarity(self, texts_a, texts_b, batch_size)

    @torch.inference_mode()
    def predict(
        self,
        texts: Sequence[str],
        tasks: Sequence[str] | None = None,
        batch_size: int = 32,
        embeddings: bool = True,
        show_progress: bool = False,
    ) -> list[dict[str, Any]]:
        """For each text: its embedding and every (or each chosen) head's prediction, in input order.

        Classification heads give the label, its probability and all label probabilities;
        token heads give entity spans with word and character offsets. Similarity heads
        need pairs, so they appear in `similarity()`, not here.
        """
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        selected = per_text_tasks(self.tasks, self._select(tasks))
        self.eval()
        results: list[dict[str, Any] | None] = [None] * len(texts)
        device = self.device
        with progress(len(texts), show_progress, "predicting") as bar:
            for idx, enc in self.encoder.batches(texts, batch_size, offsets=True):
                offsets = enc.pop("offset_mapping").tolist()
                enc = {k: v.to(device) for k, v in enc.items()}
                with autocast_context(self.encoder.precision, device):
                    out = self.forward(**enc, tasks=selected)
                emb = out["sentence_embedding"].float().cpu().numpy() if embeddings else None
                probs = {name: torch.softmax(out["heads"][name].float(), dim=-1).cpu().numpy() for name in selected}
                for row, i in enumerate(idx):
                    row_probs = {name: probs[name][row] for name in selected}
                    results[i] = prediction(texts[i], None if emb is None else emb[row], self.tasks, row_probs, offsets[row])
                bar.update(len(idx))
        return results  # type: ignore[return-value]

    # -- persistence ------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        """What polyhead.json holds: format, encoder choices, every task with its labels."""
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "polyhead_version": __version__,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "encoder": self.encoder.config_dict(),
            "tasks": [spec.to_dict() for spec in self.tasks.values()],
        }

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the whole model into one folder (safetensors + JSON), atomically."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
        try:
            self.encoder.save_backbone(tmp / ENCODER_DIR)
            (tmp / HEADS_DIR).mkdir()
            for name, head in self.heads.items():
                tensors = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
                save_file(tensors, str(tmp / HEADS_DIR / f"{name}.safetensors"), metadata={"task": name})
            write_json_atomic(tmp / CONFIG_FILE, self.config_dict())
            _install(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike, device: str | torch.device | None = None, precision: str = "fp32") -> "MultiTaskModel":
        """Load a folder written by save(); never runs code from it, never unpickles."""
        folder = Path(folder)
        if not folder.is_dir():
            raise PolyheadError(f"{folder} is not a folder")
        if not (folder / CONFIG_FILE).is_file():
            hint = " (it looks like a plain encoder: use Encoder(path))" if (folder / "config.json").is_file() else ""
            raise PolyheadError(f"{folder} is not a polyhead model: no {CONFIG_FILE}{hint}")
        cfg = read_json(folder / CONFIG_FILE)
        if cfg.get("format") != FORMAT_NAME:
            raise PolyheadError(f"{folder / CONFIG_FILE}: format is {cfg.get('format')!r}, expected {FORMAT_NAME!r}")
        version = cfg.get("format_version")
        if version != FORMAT_VERSION:
            raise PolyheadError(
                f"{folder}: format version {version!r} is not supported by polyhead {__version__} (reads {FORMAT_VERSION})"
            )
        enc_dir = folder / ENCODER_DIR
        if not (enc_dir / "config.json").is_file():
            raise PolyheadError(f"{folder}: missing {ENCODER_DIR}/config.json")
        encoder = Encoder.from_saved(enc_dir, cfg.get("encoder", {}), device=device, precision=precision)
        expected_dim = cfg.get("encoder", {}).get("dim")
        if expected_dim is not None and expected_dim != encoder.dim:
            raise PolyheadError(f"{folder}: encoder dim is {encoder.dim}, polyhead.json says {expected_dim}")
        model = cls(encoder, [])
        for entry in cfg.get("tasks", []):
            spec = model.add_task(TaskSpec.from_dict(entry))
            path = folder / HEADS_DIR / f"{spec.name}.safetensors"
            if not path.is_file():
                raise PolyheadError(f"{folder}: missing head weights {HEADS_DIR}/{spec.name}.safetensors")
            check_safetensors_file(path)
            try:
                state = load_file(str(path))
            except (SafetensorError, OSError) as exc:  # the header was fine but the data is not
                raise PolyheadError(f"{path} is not a readable safetensors file ({exc}); {FIX_FOLDER}") from exc
            _load_head_state(model.heads[spec.name], state, path)
        model.to(encoder.device_)
        model.eval()
        return model

    def export_sentence_transformers(self, folder: str | os.PathLike) -> Path:
        """Write encoder + pooling (+ normalisation) as a sentence-transformers model folder."""
        folder = Path(folder)
        self.encoder.save_backbone(folder)
        enc = self.encoder
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]
        if enc.normalize:
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
            (folder / "2_Normalize").mkdir(exist_ok=True)
        (folder / "1_Pooling").mkdir(exist_ok=True)
        pooling = {
            "word_embedding_dimension": enc.dim,
            "pooling_mode_cls_token": enc.pooling.mode == "cls",
            "pooling_mode_mean_tokens": enc.pooling.mode == "mean",
            "pooling_mode_max_tokens": enc.pooling.mode == "max",
            "pooling_mode_mean_sqrt_len_tokens": False,
        }
        write_json_atomic(folder / "1_Pooling" / "config.json", pooling)
        write_json_atomic(folder / "modules.json", modules)
        write_json_atomic(folder / "sentence_bert_config.json", {"max_seq_length": enc.max_length, "do_lower_case": False})
        return folder

    def info(self) -> dict[str, Any]:
        """A summary: encoder choices, tasks and labels, parameter counts."""
        n_enc = sum(p.numel() for p in self.encoder.parameters())
        return {
            "encoder": {**self.encoder.config_dict(), "parameters": n_enc, "precision": self.encoder.precision},
            "tasks": [
                {**spec.to_dict(), "parameters": sum(p.numel() for p in self.heads[name].parameters())}
                for name, spec in self.tasks.items()
            ],
            "parameters": sum(p.numel() for p in self.parameters()),
        }


def select_tasks(available: dict[str, TaskSpec], tasks: Sequence[str] | str | None) -> list[str]:
    """The requested task names (all by default), with a clear error for unknown ones."""
    if tasks is None:
        return list(available)
    if isinstance(tasks, str):
        tasks = [tasks]
    unknown = [t for t in tasks if t not in available]
    if unknown:
        raise PolyheadError(f"unknown task(s) {', '.join(unknown)}; this model has {', '.join(available) or 'none'}")
    return list(tasks)


def load(folder: str | os.PathLike, device: str | torch.device | None = None, precision: str = "fp32") -> MultiTaskModel:
    """Load a saved polyhead model folder."""
    return MultiTaskModel.load(folder, device=device, precision=precision)


def _load_head_state(head: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Load a head's tensors after checking names and shapes against its task spec."""
    expected = head.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise PolyheadError(
            f"{path}: tensors do not match the head (missing {missing}, unexpected {unexpected}); {FIX_FOLDER}"
        )
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise PolyheadError(
                f"{path}: {key} has shape {tuple(value.shape)}, the task spec needs {tuple(expected[key].shape)}; "
                f"{FIX_FOLDER}"
            )
    head.load_state_dict(state)


def _install(tmp: Path, folder: Path) -> None:
    """Move a freshly written model from tmp into folder, keeping unrelated files there.

    polyhead.json is removed first and written last, so a crash in between leaves a
    folder that fails to load with a clear error instead of a silent mix of old and new.
    """
    if folder.exists() and not folder.is_dir():
        raise PolyheadError(f"{folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).unlink(missing_ok=True)
    for name in (ENCODER_DIR, HEADS_DIR):
        replace_dir(tmp / name, folder / name)
    os.replace(tmp / CONFIG_FILE, folder / CONFIG_FILE)
    shutil.rmtree(tmp, ignore_errors=True)
