"""What every exported-graph backend shares: the export folder's manifest, tokenising to NumPy,
length-sorted batches padded to their own longest text, and the `InferenceModel` methods.

A backend (runtime.py: ONNX Runtime; openvino.py: OpenVINO) only says how to run the graph on
one padded batch (`_run`) and what it knows about itself (`_runtime_info`). The graph is the
same in both: encoder + pooling + normalisation + every head, outputs `sentence_embedding`,
`pooled` and `logits.<task>` (export.py).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..console import progress
from ..errors import PolyheadError
from ..io import read_json
from ..modeling.backend import (
    CPU_BATCH_TOKENS,
    check_texts,
    describe_encoder,
    length_sorted_batches,
    paired_similarity,
    predict_by_prompt,
    predict_pairs,
    prediction,
    prompt_passes,
)
from ..modeling.heads import activate, per_text_tasks
from ..modeling.model import select_tasks
from ..modeling.tasks import TaskSpec

TOKENIZER_DIR = "tokenizer"
# The pair heads' weights (pair classification), beside the graph: they read two texts' sentence
# embeddings, which the graph gives, so they run in NumPy (kinds/pair_classification.py).
PAIR_HEADS_FILE = "pair_heads.safetensors"


def write_pair_heads(model: Any, folder: Path) -> str | None:
    """Save `model`'s pair heads' weights into folder/PAIR_HEADS_FILE (None when it has none with weights)."""
    from safetensors.numpy import save_file

    tensors = {f"{task}/{k}": v for task, state in model.pair_head_states().items() for k, v in state.items()}
    if not tensors:
        return None
    save_file(tensors, str(folder / PAIR_HEADS_FILE))
    return PAIR_HEADS_FILE


def read_pair_heads(folder: Path, manifest: dict[str, Any]) -> dict[str, dict[str, np.ndarray]]:
    """The pair heads' weights an export folder holds, by task (safetensors: nothing is unpickled)."""
    name = manifest.get("pair_heads")
    if not name:
        return {}
    from safetensors.numpy import load_file

    states: dict[str, dict[str, np.ndarray]] = {}
    for key, value in load_file(str(Path(folder) / name)).items():
        task, _, param = key.partition("/")
        states.setdefault(task, {})[param] = value
    return states


def require(module: str, extra: str, what: str) -> Any:
    """Import an optional dependency, or fail with one line naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise PolyheadError(f"{what} needs the {module} package ({exc}); run: pip install 'polyhead[{extra}]'") from None


def read_manifest(folder: str | os.PathLike, manifest: str, format_name: str, version: int) -> dict[str, Any]:
    """The manifest of an export folder, checked for format and version."""
    folder = Path(folder)
    data = read_json(folder / manifest)
    if data.get("format") != format_name:
        raise PolyheadError(f"{folder / manifest}: format is {data.get('format')!r}, expected {format_name!r}")
    if data.get("format_version") != version:
        raise PolyheadError(f"{folder}: {format_name} export format version {data.get('format_version')!r} is not supported")
    return data


def find_export_dir(path: str | os.PathLike, manifest: str, subdir: str, what: str, command: str) -> Path:
    """The export folder for PATH: PATH itself if it holds the manifest, else PATH/<subdir>."""
    path = Path(path)
    for cand in (path, path / subdir):
        if (cand / manifest).is_file():
            return cand
    raise PolyheadError(f"no {what} export in {path} (no {manifest}); run: {command}")


def variant_file(folder: Path, manifest: dict[str, Any], variant: str | None) -> tuple[str, Path]:
    """(variant, file) for a requested variant (None: the export's default), checked to exist."""
    variant = variant or manifest.get("default", "fp32")
    files = manifest.get("files", {})
    if variant not in files:
        raise PolyheadError(f"{folder} has no {variant} model (it has {', '.join(files)})")
    path = folder / files[variant]
    if not path.is_file():
        raise PolyheadError(f"{folder}: missing {files[variant]}")
    return variant, path


def load_tokenizer(folder: Path, manifest: dict[str, Any]) -> Any:
    """The tokenizer saved in the export folder (the folder is self-contained)."""
    from transformers import AutoTokenizer

    from ..modeling.encoder import quiet_transformers

    quiet_transformers()
    return AutoTokenizer.from_pretrained(str(folder / manifest.get("tokenizer", TOKENIZER_DIR)), trust_remote_code=False)


class GraphModel:
    """A polyhead model exported as one graph: the `InferenceModel` contract on NumPy arrays.

    It has no `.encoder`: the encoder's choices are attributes of the model itself (dim,
    normalize, max_length, pooling, precision, device, config_dict()), so code that needs an
    "encoder" (the streaming encoder, the server) takes the model directly.
    """

    backend = "graph"

    def __init__(self, folder: Path, manifest: dict[str, Any], tokenizer: Any, variant: str, inputs: set[str]) -> None:
        self.folder = folder
        self.manifest = manifest
        self.tokenizer = tokenizer
        self.variant = variant
        cfg = manifest["polyhead"]
        enc = cfg.get("encoder", {})
        self.pooling = enc.get("pooling", "mean")
        self.normalize = bool(enc.get("normalize", True))
        self.max_length = int(enc.get("max_length", 256))
        self.dim = int(enc.get("dim", 0))
        self.prompts: dict[str, str] = dict(enc.get("prompts") or {})
        self.default_prompt_name: str | None = enc.get("default_prompt_name")
        self.include_prompt = bool(enc.get("include_prompt", True))
        self.name_or_path = enc.get("name_or_path", str(folder))
        self.tasks: dict[str, TaskSpec] = {t["name"]: TaskSpec.from_dict(t) for t in cfg.get("tasks", [])}
        self.precision = variant  # what the weights are stored as ("fp32" or "int8")
        self._inputs = set(inputs)
        # Most padded tokens per forward pass (None: only batch_size limits a batch); the
        # exported graphs run on CPUs, where smaller batches of long texts are faster.
        self.batch_tokens: int | None = CPU_BATCH_TOKENS
        self._warned_truncation = False
        self._pair_states: dict[str, dict[str, np.ndarray]] | None = None

    # -- what a backend provides ----------------------------------------------------------------
    def _run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The graph's outputs `names` for one padded batch."""
        raise NotImplementedError

    def _runtime_info(self) -> dict[str, Any]:
        """Backend facts for info(): providers, threads, inference precision..."""
        return {}

    @property
    def device(self) -> Any:
        """The device the graph runs on, as a torch.device (as Encoder.device)."""
        import torch

        return torch.device("cpu")

    # -- batching -------------------------------------------------------------------------
    def batches(self, texts: Sequence[str], batch_size: int, offsets: bool = False) -> Iterator[tuple[list[int], dict[str, np.ndarray], list]]:
        """Yield (original indices, numpy feed, offsets) for length-sorted batches padded to their longest text.

        Texts are tokenised once; each batch is padded only to its own longest member, never to
        max_length, and the caller puts results back in input order.
        """
        from ..modeling.encoder import warn_if_truncated

        if batch_size < 1:  # checked before tokenising, so a bad value fails fast
            raise PolyheadError(f"batch_size must be at least 1, got {batch_size}")
        texts = check_texts(texts)
        if not texts:
            return
        with_types = "token_type_ids" in self._inputs
        enc = self.tokenizer(
            texts,
            truncation=True,
            max_length=self.max_length,
            padding=False,
            return_offsets_mapping=offsets,
            return_attention_mask=False,
            return_token_type_ids=with_types,
        )
        self._warned_truncation = warn_if_truncated(enc, self.max_length, self._warned_truncation)
        ids = enc["input_ids"]
        types = enc.get("token_type_ids")
        offs = enc.get("offset_mapping") if offsets else None
        pad = self.tokenizer.pad_token_id or 0
        for idx in length_sorted_batches([len(x) for x in ids], batch_size, self.batch_tokens):
            width = len(ids[idx[0]])  # sorted longest first
            input_ids = np.full((len(idx), width), pad, dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            tt = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(ids[i])
                input_ids[row, :n] = ids[i]
                mask[row, :n] = 1
                if types is not None:
                    tt[row, :n] = types[i]
            feed = {"input_ids": input_ids, "attention_mask": mask}
            if with_types:
                feed["token_type_ids"] = tt
            # Offsets padded with (0, 0) like the PyTorch tokenizer's, so decoding sees the same rows.
            rows = [[tuple(o) for o in offs[i]] + [(0, 0)] * (width - len(offs[i])) for i in idx] if offs is not None else []
            yield idx, feed, rows

    # -- inference ------------------------------------------------------------------------
    def encode(
        self,
        texts: Sequence[str] | str,
        batch_size: int = 32,
        normalize: bool | None = None,
        show_progress: bool = False,
        *,
        prompt_name: str | None = None,
        prompt: str | None = None,
    ) -> np.ndarray:
        """Embed texts into a (len(texts), dim) float32 array, in input order (prompts as Encoder.encode)."""
        from ..modeling.st_modules import resolve_prompt, with_prompt

        single = isinstance(texts, str)
        text_prompt = resolve_prompt(self.prompts, self.default_prompt_name, prompt, prompt_name)
        if text_prompt and not self.include_prompt:
            raise PolyheadError("this model's pooling leaves the prompt out (include_prompt=false), which the exported "
                                "graph cannot do; encode with prompts on the torch backend")
        texts = check_texts(with_prompt([texts] if single else list(texts), text_prompt))
        normalize = self.normalize if normalize is None else normalize
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with progress(len(texts), show_progress, "encoding") as bar:
            for idx, feed, _ in self.batches(texts, batch_size):
                pooled = self._run(["pooled"], feed)[0]
                out[idx] = l2_normalize(pooled) if normalize else pooled
                bar.update(len(idx))
        return out[0] if single else out

    def predict(
        self,
        texts: Sequence[str],
        tasks: Sequence[str] | None = None,
        batch_size: int = 32,
        embeddings: bool = True,
        show_progress: bool = False,
    ) -> list[dict[str, Any]]:
        """For each text: its embedding and every (or each chosen) head's prediction, in input order."""
        texts = check_texts(texts)
        selected = per_text_tasks(self.tasks, select_tasks(self.tasks, tasks))
        with progress(len(texts) * prompt_passes(self.tasks, selected, embeddings), show_progress, "predicting") as bar:

            def one_pass(inputs: list[str], chosen: list[str], with_embeddings: bool) -> list[dict[str, Any]]:
                names = (["sentence_embedding"] if with_embeddings else []) + [f"logits.{t}" for t in chosen]
                results: list[dict[str, Any] | None] = [None] * len(inputs)
                for idx, feed, offsets in self.batches(inputs, batch_size, offsets=True):
                    outs = dict(zip(names, self._run(names, feed))) if names else {}
                    probs = {t: activate(self.tasks[t], outs[f"logits.{t}"]) for t in chosen}
                    for row, i in enumerate(idx):
                        emb = outs["sentence_embedding"][row] if with_embeddings else None
                        results[i] = prediction(inputs[i], emb, self.tasks, {t: probs[t][row] for t in chosen}, offsets[row])
                    bar.update(len(idx))
                return results  # type: ignore[return-value]

            return predict_by_prompt(one_pass, texts, self.tasks, selected, embeddings)

    def similarity(self, texts_a: Sequence[str], texts_b: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Cosine similarity of each pair (texts_a[i], texts_b[i])."""
        return paired_similarity(self, texts_a, texts_b, batch_size)

    def predict_pairs(self, pairs: Sequence[Sequence[str]], tasks: Sequence[str] | None = None, batch_size: int = 32) -> list[dict[str, Any]]:
        """For each pair of texts: every (or each chosen) pair head's prediction (see MultiTaskModel.predict_pairs)."""
        return predict_pairs(self, pairs, tasks, batch_size, self.pair_head_states())

    def pair_head_states(self) -> dict[str, dict[str, np.ndarray]]:
        """The pair heads' weights, from the export's PAIR_HEADS_FILE (NumPy arrays, by task)."""
        if self._pair_states is None:
            self._pair_states = read_pair_heads(self.folder, self.manifest)
        return self._pair_states

    # -- facts ----------------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        """The encoder choices, as in polyhead.json."""
        return dict(self.manifest["polyhead"].get("encoder", {}))

    def info(self) -> dict[str, Any]:
        """A summary: backend, file, quantisation, encoder choices, tasks and labels."""
        files = self.manifest.get("files", {})
        return {
            "backend": self.backend,
            "folder": str(self.folder),
            "file": files.get(self.variant),
            "variant": self.variant,
            "quantized": self.variant == "int8",
            **self._runtime_info(),
            "encoder": {**self.config_dict(), "precision": self.precision},
            "tasks": [spec.to_dict() for spec in self.tasks.values()],
        }

    def describe(self) -> dict[str, Any]:
        """Static facts for /info and model cards, the same keys as MultiTaskModel.describe()."""
        return describe_encoder(self, self.info())


def l2_normalize(x: np.ndarray) -> np.ndarray:
    # Same epsilon as torch.nn.functional.normalize, so zero vectors stay zero.
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
