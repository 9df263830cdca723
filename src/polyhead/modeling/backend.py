"""The inference contract every backend meets: the PyTorch `MultiTaskModel` and the ONNX Runtime
`OnnxModel` (polyhead.onnx) both satisfy `InferenceModel`, so the server, the CLI and the
streaming encoder call one API and never ask which backend they hold.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from ..errors import PolyheadError
from ..kinds import TaskSpec, kind_of
from .heads import decode


@runtime_checkable
class InferenceModel(Protocol):
    """What a loaded model offers for inference, whatever runs it."""

    backend: str  # "torch" or "onnxruntime"
    tasks: dict[str, TaskSpec]

    @property
    def tokenizer(self) -> Any:
        """The Hugging Face tokenizer that turns texts into the model's input ids."""

    def encode(
        self, texts: Sequence[str], batch_size: int = 32, normalize: bool | None = None, show_progress: bool = False,
        *, prompt_name: str | None = None, prompt: str | None = None,
    ) -> np.ndarray:
        """Sentence embeddings, (len(texts), dim) float32, in input order; a prompt (by name, or
        its text) goes before each text, the model's default prompt when neither is given."""

    def predict(
        self,
        texts: Sequence[str],
        tasks: Sequence[str] | None = None,
        batch_size: int = 32,
        embeddings: bool = True,
        show_progress: bool = False,
    ) -> list[dict[str, Any]]:
        """For each text: {"text", "embedding"?, "tasks": {name: decoded head output}}."""

    def similarity(self, texts_a: Sequence[str], texts_b: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Cosine similarity of each pair (texts_a[i], texts_b[i])."""

    def predict_pairs(self, pairs: Sequence[Sequence[str]], tasks: Sequence[str] | None = None, batch_size: int = 32) -> list[dict[str, Any]]:
        """For each pair of texts: {"pair", "tasks": {name: prediction}} from every (or each chosen) pair head."""

    def pair_head_states(self) -> dict[str, dict[str, np.ndarray]]:
        """The pair heads' weights as NumPy arrays, by task (what decode_pairs reads)."""

    def info(self) -> dict[str, Any]:
        """A summary for people: encoder choices, tasks and labels, backend details."""

    def describe(self) -> dict[str, Any]:
        """Static facts for /info: dimensions, max length, pooling, precision, device, tasks."""


def describe_tasks(tasks: dict[str, TaskSpec]) -> list[dict[str, Any]]:
    """Each task's name, kind and labels (and what its kind adds: a similarity task's score range,
    a multi-label task's thresholds), as /info shows them."""
    out = []
    for name, spec in tasks.items():
        entry: dict[str, Any] = {"name": name, "kind": spec.kind, "labels": list(spec.labels or [])}
        entry.update(kind_of(spec.kind).facts(spec))
        if spec.prompt:
            entry["prompt"] = spec.prompt
        out.append(entry)
    return out


def describe_encoder(model: Any, info: dict[str, Any]) -> dict[str, Any]:
    """The `describe()` dictionary shared by both backends, from the model and its `info()`."""
    enc = dict(info.get("encoder", {}) or {})
    device = getattr(model, "device", None)
    return {
        "backend": model.backend,
        "dimensions": int(enc["dim"]),
        "max_length": enc.get("max_length"),
        "pooling": enc.get("pooling"),
        "normalize": enc.get("normalize"),
        "precision": enc.get("precision"),
        "device": str(device) if device is not None else None,
        "encoder": enc.get("name_or_path"),
        "prompts": dict(enc.get("prompts") or {}),
        "default_prompt_name": enc.get("default_prompt_name"),
        "include_prompt": bool(enc.get("include_prompt", True)),
        "parameters": info.get("parameters"),
        "tasks": describe_tasks(model.tasks),
    }


# -- helpers both backends share (the PyTorch model and polyhead.onnx.OnnxModel) -------------
def check_texts(texts: Sequence[str] | str) -> list[str]:
    """The texts as a list (one string counts as one text); a non-string is a one-line error."""
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise PolyheadError(f"text {i} is a {type(t).__name__}, not a string")
    return texts


# Most padded tokens (texts x width) per forward pass on a CPU. Measured on an AMD EPYC (Zen 4),
# 2 threads (benchmarks/bench_batch_tokens.py, results/batch-tokens-amd-epyc-2t.json): on mixed
# 10-256-token texts a batch of 128 padded to its longest member computes mostly padding and its
# activations overflow the CPU caches; a cap of 1,024 tokens ran 1.8x (OpenVINO int8) to 2.7x
# (PyTorch bf16) faster at batch 128 and 1.07-1.39x at batch 32, the best of the caps tried
# (1,024 to 8,192), and short texts were no slower (0.98-1.13x). GPUs want large batches: no cap there.
CPU_BATCH_TOKENS = 1024


def batch_tokens_for(device: Any) -> int | None:
    """The default token cap per forward pass for a device: CPU_BATCH_TOKENS on a CPU, none on a GPU."""
    return CPU_BATCH_TOKENS if getattr(device, "type", str(device)) == "cpu" else None


def length_sorted_batches(lengths: Sequence[int], batch_size: int, max_tokens: int | None = None) -> Iterator[list[int]]:
    """Indices of the texts in batches of similar token length, longest first.

    Each batch is then padded only to its own longest text, which is what makes mixed-length
    corpora cheap; callers put results back at these indices to restore the input order.
    A batch holds at most `batch_size` texts and, with `max_tokens`, at most that many padded
    tokens (texts x its longest length; always at least one text): long texts go in smaller
    batches, short ones fill `batch_size`.
    """
    if batch_size < 1:
        raise PolyheadError(f"batch_size must be at least 1, got {batch_size}")
    if max_tokens is not None and max_tokens < 1:
        raise PolyheadError(f"max_tokens must be at least 1, got {max_tokens}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    start = 0
    while start < len(order):
        count = batch_size
        if max_tokens is not None:
            count = max(1, min(batch_size, max_tokens // max(1, lengths[order[start]])))
        yield order[start : start + count]
        start += count


def prediction(
    text: str,
    embedding: np.ndarray | None,
    specs: dict[str, TaskSpec],
    probs: dict[str, np.ndarray],
    offsets: list,
) -> dict[str, Any]:
    """One text's `predict()` item from its embedding (None: left out) and each task's activated
    output row (heads.activate: probabilities, or numbers in the data's units)."""
    item: dict[str, Any] = {"text": text}
    if embedding is not None:
        item["embedding"] = embedding
    item["tasks"] = {name: decode(specs[name], p, text, offsets) for name, p in probs.items()}
    return item


def by_prompt(specs: dict[str, TaskSpec], names: Sequence[str]) -> dict[str, list[str]]:
    """The tasks `names` grouped by their prompt ("" for none), in order: one encoder pass each."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(specs[name].prompt or "", []).append(name)
    return groups


def prompt_passes(specs: dict[str, TaskSpec], names: Sequence[str], embeddings: bool) -> int:
    """How many encoder passes `predict_by_prompt` runs: one per distinct prompt, plus the
    unprompted one when the embedding is asked for (a progress bar's total)."""
    return max(1, len(set(by_prompt(specs, names)) | ({""} if embeddings else set())))


def predict_by_prompt(one_pass: Callable[[list[str], list[str], bool], list[dict[str, Any]]], texts: list[str],
                      specs: dict[str, TaskSpec], selected: list[str], embeddings: bool) -> list[dict[str, Any]]:
    """`predict()` for either backend: `one_pass(texts, tasks, embeddings)` runs the encoder once
    and the given heads. Heads with a prompt (TaskSpec.prompt) see each text with it in front, one
    pass per distinct prompt; the embedding is always the text's own (the pass without a prompt)."""
    groups = by_prompt(specs, selected)
    if set(groups) <= {""}:
        return one_pass(texts, selected, embeddings)
    if embeddings:
        groups.setdefault("", [])
    results: list[dict[str, Any]] = [{"text": t} for t in texts]
    for prompt, names in sorted(groups.items(), key=lambda g: g[0] != ""):  # the unprompted pass first
        part = one_pass([prompt + t for t in texts] if prompt else texts, names, embeddings and not prompt)
        for item, got in zip(results, part):
            if "embedding" in got:
                item["embedding"] = got["embedding"]
            item.setdefault("tasks", {}).update(got["tasks"])
    return results


def check_pairs(pairs: Sequence[Sequence[str]]) -> tuple[list[str], list[str]]:
    """The first and second texts of pairs, each pair two strings; a one-line error otherwise."""
    firsts, seconds = [], []
    for i, pair in enumerate(pairs):
        if isinstance(pair, str) or len(pair) != 2 or not all(isinstance(t, str) for t in pair):
            raise PolyheadError(f"pair {i} must be two texts, got {pair!r:.80}")
        firsts.append(pair[0])
        seconds.append(pair[1])
    return firsts, seconds


def pair_tasks(specs: dict[str, TaskSpec], names: Sequence[str] | None) -> list[str]:
    """The pair tasks among `names` (None: every pair task); a task that predicts per text is refused."""
    if names is None:
        return [n for n, s in specs.items() if kind_of(s.kind).pairs]
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise PolyheadError(f"unknown task(s) {', '.join(unknown)}; this model has {', '.join(specs) or 'none'}")
    single = [n for n in names if not kind_of(specs[n].kind).pairs]
    if single:
        raise PolyheadError(f"task(s) {', '.join(single)} predict one text at a time: use predict()")
    return list(names)


def decode_pairs(specs: dict[str, TaskSpec], states: dict[str, dict[str, np.ndarray]], names: Sequence[str],
                 firsts: list[str], a: np.ndarray, seconds: list[str], b: np.ndarray) -> list[dict[str, Any]]:
    """Each pair's `predict_pairs()` item from both sides' sentence embeddings: every pair head's
    prediction (pair classification: label and probabilities; similarity: score and cosine)."""
    out: list[dict[str, Any]] = [{"pair": [x, y], "tasks": {}} for x, y in zip(firsts, seconds)]
    for name in names:
        for item, pred in zip(out, kind_of(specs[name].kind).decode_pairs(specs[name], states.get(name), a, b)):
            item["tasks"][name] = pred
    return out


def predict_pairs(model: Any, pairs: Sequence[Sequence[str]], tasks: Sequence[str] | None, batch_size: int,
                  states: dict[str, dict[str, np.ndarray]]) -> list[dict[str, Any]]:
    """`predict_pairs()` for either backend: both sides encoded once, then every pair head."""
    firsts, seconds = check_pairs(pairs)
    names = pair_tasks(model.tasks, tasks)
    results: list[dict[str, Any]] = [{"pair": [x, y], "tasks": {}} for x, y in zip(firsts, seconds)]
    for prompt, group in by_prompt(model.tasks, names).items():
        # A head with a prompt sees both texts with it in front, as it was trained (not the model's default prompt).
        xs, ys, extra = ([prompt + x for x in firsts], [prompt + y for y in seconds], {"prompt": ""}) if prompt else (firsts, seconds, {})
        a = model.encode(xs, batch_size=batch_size, **extra) if xs else np.zeros((0, 1), np.float32)
        b = model.encode(ys, batch_size=batch_size, **extra) if ys else np.zeros((0, 1), np.float32)
        for item, got in zip(results, decode_pairs(model.tasks, states, group, firsts, a, seconds, b)):
            item["tasks"].update(got["tasks"])
    return results


def paired_similarity(model: Any, texts_a: Sequence[str], texts_b: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """Cosine similarity of each pair (texts_a[i], texts_b[i]) from `model.encode`, normalised."""
    if len(texts_a) != len(texts_b):
        raise PolyheadError(f"got {len(texts_a)} first texts but {len(texts_b)} second texts")
    a = model.encode(texts_a, batch_size=batch_size, normalize=True)
    b = model.encode(texts_b, batch_size=batch_size, normalize=True)
    return (a * b).sum(axis=1)
