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
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save, save_file
from torch import nn

from .. import __version__
from ..console import progress
from ..errors import PolyheadError
from ..io import read_json, replace_dir, write_bytes_atomic, write_error_reason, write_failure, write_json_atomic
from .backbone import FIX_FOLDER, check_safetensors_file, hub_snapshot, load_checked_state
from .backend import describe_encoder, paired_similarity, predict_by_prompt, predict_pairs, prediction, prompt_passes
from .card import write_card
from .encoder import Encoder, autocast_context
from .heads import activate, build_head, per_text_tasks
from ..kinds import TaskSpec, kind_of

FORMAT_NAME = "polyhead-model"
FORMAT_VERSION = 1
CONFIG_FILE = "polyhead.json"
ENCODER_DIR = "encoder"
HEADS_DIR = "heads"
# What a polyhead model repository on the Hub holds that loading reads (exports and anything
# else in the repository are left on the Hub; pickles are never downloaded).
HUB_MODEL_FILES = [CONFIG_FILE, "README.md", "MODEL_CARD.md", f"{ENCODER_DIR}/*", f"{HEADS_DIR}/*.safetensors"]


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
            self.add_head(spec)

    # -- building ---------------------------------------------------------------------
    def add_head(self, spec: TaskSpec | dict) -> TaskSpec:
        """Attach a new head for a task; labels must be known (classification/token) before it is built.

        Naming across polyhead: a *task* is what a config describes (name, kind, labels, data); a
        *head* is what the model holds for it. So: `add_head`, `fit_heads`, `add_heads_to_folder`,
        `polyhead add-head`, and `model.tasks` / `model.heads` for the two sides."""
        if isinstance(spec, dict):
            spec = TaskSpec.from_dict(spec)
        if spec.name in self.tasks:
            raise PolyheadError(f"a task named {spec.name!r} already exists")
        if kind_of(spec.kind).has_labels and not spec.labels:
            raise PolyheadError(f"task {spec.name!r} has no labels; give them or take them from data")
        self.tasks[spec.name] = spec
        # Token heads read the backbone's per-token states; the others the sentence vector, whose
        # size a Dense module after pooling may change.
        width = self.encoder.hidden_size if kind_of(spec.kind).token_level else self.encoder.dim
        self.heads[spec.name] = build_head(spec, width).to(self.encoder.device)
        return spec

    add_task = add_head  # the 0.1 name, kept

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
    def predict_pairs(self, pairs: Sequence[Sequence[str]], tasks: Sequence[str] | None = None, batch_size: int = 32) -> list[dict[str, Any]]:
        """For each pair of texts (a, b): {"pair": [a, b], "tasks": {name: prediction}} from every (or
        each chosen) pair head: pair classification gives the label, its probability and every
        label's; similarity the score on its scale and the cosine. Each text is encoded once."""
        return predict_pairs(self, pairs, tasks, batch_size, self.pair_head_states())

    def pair_head_states(self) -> dict[str, dict[str, np.ndarray]]:
        """The pair heads' weights as NumPy arrays, by task (what every backend's pair decoding reads)."""
        return {name: {k: v.detach().float().cpu().numpy() for k, v in self.heads[name].state_dict().items()}
                for name, spec in self.tasks.items() if kind_of(spec.kind).pairs}

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
        multi-label heads the labels over their thresholds and every label's probability;
        regression heads the number (or numbers); token heads entity spans with word and
        character offsets. Pair heads need pairs, so they appear in `similarity()`, not here.
        """
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        selected = per_text_tasks(self.tasks, self._select(tasks))
        self.eval()
        device = self.device
        with progress(len(texts) * prompt_passes(self.tasks, selected, embeddings), show_progress, "predicting") as bar:

            def one_pass(inputs: list[str], names: list[str], with_embeddings: bool) -> list[dict[str, Any]]:
                results: list[dict[str, Any] | None] = [None] * len(inputs)
                for idx, enc in self.encoder.batches(inputs, batch_size, offsets=True):
                    offsets = enc.pop("offset_mapping").tolist()
                    enc = {k: v.to(device) for k, v in enc.items()}
                    with autocast_context(self.encoder.precision, device):
                        out = self.forward(**enc, tasks=names)
                    emb = out["sentence_embedding"].float().cpu().numpy() if with_embeddings else None
                    probs = {name: activate(self.tasks[name], out["heads"][name].float().cpu().numpy()) for name in names}
                    for row, i in enumerate(idx):
                        row_probs = {name: probs[name][row] for name in names}
                        results[i] = prediction(inputs[i], None if emb is None else emb[row], self.tasks, row_probs, offsets[row])
                    bar.update(len(idx))
                return results  # type: ignore[return-value]

            return predict_by_prompt(one_pass, texts, self.tasks, selected, embeddings)

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
        """Write the whole model into one folder (safetensors + JSON), atomically, then its model card.

        The card is README.md (see `card.py`); a README.md polyhead did not write is never replaced.
        """
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
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if write_error_reason(exc) is not None:
                kept = f"{folder} is as it was" if folder.exists() else f"nothing was left at {folder}"
                raise write_failure(exc, f"the model folder {folder}", kept, "free space (or fix the folder's permissions) and save again") from exc
            raise
        write_card(folder)
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
            spec = model.add_head(TaskSpec.from_dict(entry))
            path = folder / HEADS_DIR / f"{spec.name}.safetensors"
            if not path.is_file():
                raise PolyheadError(f"{folder}: missing head weights {HEADS_DIR}/{spec.name}.safetensors")
            check_safetensors_file(path)
            try:
                state = load_file(str(path))
            except (SafetensorError, OSError) as exc:  # the header was fine but the data is not
                raise PolyheadError(f"{path} is not a readable safetensors file ({exc}); {FIX_FOLDER}") from exc
            load_checked_state(model.heads[spec.name], state, path, "the head", "the task spec", FIX_FOLDER)
        model.to(encoder.device_)
        model.eval()
        return model

    # -- the Hugging Face Hub ---------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *, revision: str | None = None,
                        cache_dir: str | os.PathLike | None = None, token: str | bool | None = None,
                        device: str | torch.device | None = None, precision: str = "fp32") -> "MultiTaskModel":
        """Load a model folder, or a Hub repository's polyhead model (downloaded into the Hugging
        Face cache with huggingface_hub, then loaded and checked exactly like a folder)."""
        path = Path(name_or_path).expanduser()
        if path.exists():
            return cls.load(path, device=device, precision=precision)
        folder = hub_snapshot(str(name_or_path), HUB_MODEL_FILES, revision, cache_dir, token)
        if not (folder / CONFIG_FILE).is_file():
            raise PolyheadError(f"{name_or_path!r} on the Hub is not a polyhead model (no {CONFIG_FILE}); "
                                f"for a plain encoder use Encoder({str(name_or_path)!r})")
        return cls.load(folder, device=device, precision=precision)

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """The same as save(): one folder with the encoder, every head and the model card."""
        return self.save(folder)

    def push_to_hub(self, repo_id: str, *, private: bool | None = None, token: str | bool | None = None,
                    commit_message: str = "Upload polyhead model", revision: str | None = None,
                    create_pr: bool = False) -> Any:
        """Save the model and upload the folder to a Hub repository (created if missing); returns
        huggingface_hub's CommitInfo. What goes up is exactly what save() writes."""
        from huggingface_hub import HfApi

        with tempfile.TemporaryDirectory(prefix="polyhead-push-") as tmp:
            folder = self.save(Path(tmp) / "model")
            api = HfApi(token=token)
            try:
                api.create_repo(repo_id, private=private, exist_ok=True)
                return api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=commit_message,
                                         revision=revision, create_pr=create_pr)
            except Exception as exc:  # noqa: BLE001 - auth, network, name: one line, the model is untouched
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise PolyheadError(f"could not upload to the Hub repository {repo_id!r}: {first}") from exc

    def export_sentence_transformers(self, folder: str | os.PathLike) -> Path:
        """Write the encoder as a sentence-transformers model folder: backbone, Pooling, any Dense /
        LayerNorm modules, Normalize, max_seq_length and prompts (the heads are not part of it)."""
        folder = Path(folder)
        self.encoder.save_backbone(folder)
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


# -- adding heads to a saved model (the encoder and the old heads are never rewritten) -------------
def check_heads_addable(folder: str | os.PathLike, names: Sequence[str], writable: bool = True) -> dict[str, Any]:
    """The polyhead.json of `folder` once it is known that heads named `names` can be added there.

    One-line PolyheadError when the folder is not a polyhead model, a name is already one of its
    tasks (or given twice), or, with `writable`, the folder or its heads/ cannot be written.
    Reads only polyhead.json: cheap enough to run before any training.
    """
    folder = Path(folder)
    names = list(names)
    if not folder.is_dir():
        raise PolyheadError(f"{folder} is not a folder")
    if not (folder / CONFIG_FILE).is_file():
        raise PolyheadError(f"{folder} is not a polyhead model: no {CONFIG_FILE}")
    saved = read_json(folder / CONFIG_FILE)
    if saved.get("format") != FORMAT_NAME or saved.get("format_version") != FORMAT_VERSION:
        raise PolyheadError(
            f"{folder / CONFIG_FILE}: not a polyhead model of format {FORMAT_NAME!r} version {FORMAT_VERSION} "
            f"(found {saved.get('format')!r} version {saved.get('format_version')!r})"
        )
    if not isinstance(saved.get("tasks"), list) or not isinstance(saved.get("encoder"), dict):
        raise PolyheadError(f"{folder / CONFIG_FILE}: no 'tasks' list or 'encoder' section; {FIX_FOLDER}")
    if not names:
        raise PolyheadError("no heads to add: name at least one new task")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise PolyheadError(f"task(s) {', '.join(twice)} named more than once")
    existing = [t.get("name") for t in saved["tasks"] if isinstance(t, dict)]
    taken = [n for n in names if n in existing]
    if taken:
        raise PolyheadError(
            f"{folder} already has task(s) {', '.join(taken)}; choose new names "
            f"(its tasks: {', '.join(map(str, existing)) or 'none'})"
        )
    if writable:
        for where in (folder, folder / HEADS_DIR):
            if where.exists() and not os.access(where, os.W_OK | os.X_OK):
                raise PolyheadError(f"{where} is not writable: no permission to add heads there (nothing was changed)")
    return saved


def encoder_difference(encoder: Encoder, folder: str | os.PathLike, saved: dict[str, Any] | None = None) -> str | None:
    """Why `encoder` is not the encoder saved in model folder `folder`, or None when it is.

    Compares the choices in polyhead.json (name_or_path, pooling, max_length, normalize, dim)
    and then every tensor of the folder's encoder safetensors with the in-memory backbone, exactly.
    """
    folder = Path(folder)
    saved_enc = (saved if saved is not None else read_json(folder / CONFIG_FILE)).get("encoder", {})
    mine = encoder.config_dict()
    for key in ("name_or_path", "pooling", "max_length", "normalize", "dim"):
        if key in saved_enc and saved_enc[key] != mine[key]:
            return f"{key} is {mine[key]!r}, the folder's is {saved_enc[key]!r}"
    files = sorted((folder / ENCODER_DIR).glob("*.safetensors"))
    if not files:
        return f"the folder has no {ENCODER_DIR}/*.safetensors weights"
    state = encoder.backbone.state_dict()
    seen: set[int] = set()
    saved_keys: set[str] = set()
    for file in files:
        check_safetensors_file(file)
        with safe_open(str(file), framework="pt") as fh:
            for key in fh.keys():
                if key not in state:
                    return f"the folder's encoder has tensor {key}, the model's has none"
                mine_t = state[key].detach()
                theirs = fh.get_tensor(key)
                if mine_t.dtype != theirs.dtype or tuple(mine_t.shape) != tuple(theirs.shape):
                    return f"tensor {key} is {mine_t.dtype} {tuple(mine_t.shape)}, the folder's is {theirs.dtype} {tuple(theirs.shape)}"
                if not torch.equal(mine_t.cpu(), theirs):
                    return f"tensor {key} has other values (the encoder was trained or replaced)"
                seen.add(mine_t.data_ptr())
                saved_keys.add(key)
    # save_pretrained writes a tied tensor once: a key missing from the files must share its storage.
    missing = [k for k, v in state.items() if k not in saved_keys and v.data_ptr() not in seen]
    if missing:
        return f"the model's encoder has tensor {missing[0]}, the folder's has none"
    return None


def add_heads_to_folder(folder: str | os.PathLike, model: MultiTaskModel, names: Sequence[str]) -> list[Path]:
    """Write the heads `names` of `model` into the saved model folder `folder`, touching nothing else.

    Each heads/<name>.safetensors is written atomically, then polyhead.json is rewritten
    atomically, last, with the new task specs appended; the encoder files and every existing
    head file are never opened for writing. Refused with a one-line PolyheadError, changing
    nothing, when the folder is not a polyhead model, a name is already there, the folder is
    not writable, or `model`'s encoder is not the folder's (choices or any weight).
    The model card (README.md, see `card.py`) is then rendered again to name the new tasks.
    Returns the head files written.
    """
    folder = Path(folder)
    names = list(names)
    saved = check_heads_addable(folder, names)
    unknown = [n for n in names if n not in model.tasks]
    if unknown:
        raise PolyheadError(f"the model has no task(s) {', '.join(unknown)} to write (it has {', '.join(model.tasks)})")
    diff = encoder_difference(model.encoder, folder, saved)
    if diff:
        raise PolyheadError(
            f"{folder}: the model's encoder is not this folder's ({diff}); "
            "add heads only to the folder the model was loaded from, or to a copy of it"
        )
    written: list[Path] = []
    try:
        (folder / HEADS_DIR).mkdir(exist_ok=True)
        for name in names:
            tensors = {k: v.detach().cpu().contiguous() for k, v in model.heads[name].state_dict().items()}
            data = save(tensors, metadata={"task": name})
            path = folder / HEADS_DIR / f"{name}.safetensors"
            write_bytes_atomic(path, lambda fh, data=data: fh.write(data))
            written.append(path)
        updated = dict(saved)
        updated["tasks"] = list(saved["tasks"]) + [model.tasks[n].to_dict() for n in names]
        write_json_atomic(folder / CONFIG_FILE, updated)  # last: until now the folder loads as before
    except BaseException as exc:
        for path in written:
            path.unlink(missing_ok=True)
        if isinstance(exc, PermissionError):
            raise PolyheadError(f"{folder} is not writable ({exc.strerror}: {exc.filename}); nothing was changed") from exc
        raise
    write_card(folder)
    return written


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
