"""What a frozen encoder gives the heads, computed once per split and cached.

When nothing below the heads trains, running the encoder on every batch of every epoch only
recomputes the same numbers. Instead each split is encoded once: the pooled vector per text
(what sentence heads read: `features["pooled"]`, before normalisation) and, for token heads, each
word's first sub-token state (what the token head's loss and decoding read). Heads then train on
these arrays in seconds.

A cache entry is keyed by everything that decides its numbers: the encoder's weights (a hash of
every tensor), its pooling and max length, the precision it ran in, and the texts of the split.
Anything else (another encoder, pooling or data) gets another key, so a stale entry is never
used: it is rebuilt. On disk entries are fp16 `.npy` files (half the size; far below the
precision a linear head can use) with a JSON file that repeats the key's inputs.
"""
from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..io import write_bytes_atomic, write_error_reason, write_json_atomic
from ..modeling.encoder import Encoder, autocast_context
from ..kinds import kind_of
from ..modeling.tasks import TaskSpec
from .data import Source, collated_batches

FORMAT = 1
FEATURES_DIR = "features"  # under OUTPUT/training/


@dataclass
class SplitFeatures:
    """One split of one source, as the heads see it."""

    pooled: np.ndarray | None  # (texts, dim) float32: sentence heads' input
    words: np.ndarray | None  # (words, dim) float32: each word's first sub-token state (0 if cut off)
    word_start: np.ndarray | None  # (texts + 1,) int64: text i's words are words[word_start[i]:word_start[i+1]]
    kept: np.ndarray | None  # (words,) bool: False where truncation cut the word off (predicted "O")

    def text_words(self, i: int) -> slice:
        """The rows of `words` that belong to text i."""
        assert self.word_start is not None
        return slice(int(self.word_start[i]), int(self.word_start[i + 1]))


def encoder_fingerprint(encoder: Encoder) -> str:
    """A hash of every encoder tensor and of the choices outside the backbone."""
    h = hashlib.sha256()
    h.update(json.dumps({k: v for k, v in encoder.config_dict().items() if k != "name_or_path"}, sort_keys=True).encode())
    for name, tensor in sorted(encoder.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return h.hexdigest()


def data_fingerprint(src: Source, split: str) -> str:
    """A hash of the texts (and word splits) of one split, in order."""
    h = hashlib.sha256()
    for e in src.splits.get(split) or []:
        h.update(e.text.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
        if e.words is not None:
            h.update("\x1f".join(e.words).encode("utf-8", "surrogatepass"))
        h.update(b"\x01")
    return h.hexdigest()


def needs(src: Source, specs: dict[str, TaskSpec]) -> tuple[bool, bool]:
    """(pooled, words): which features the tasks of a text source read."""
    levels = [kind_of(specs[t].kind).token_level for t in src.tasks]
    return (not all(levels), any(levels))


class FeatureCache:
    """Encodes splits with a frozen encoder once; keeps them in memory and, given a folder, on disk."""

    def __init__(self, encoder: Encoder, folder: Path | None = None, precision: str = "fp32", batch_size: int = 64) -> None:
        self.encoder, self.folder, self.precision, self.batch_size = encoder, folder, precision, batch_size
        self._fingerprint: str | None = None
        self.memory: dict[str, SplitFeatures] = {}
        self.encode_seconds = 0.0
        self.hits = 0  # entries read from disk instead of encoded
        self.builds = 0  # entries encoded

    @property
    def fingerprint(self) -> str:
        """The encoder's hash, computed once (the encoder is frozen)."""
        if self._fingerprint is None:
            self._fingerprint = encoder_fingerprint(self.encoder)
        return self._fingerprint

    def key(self, src: Source, split: str, specs: dict[str, TaskSpec]) -> tuple[str, dict[str, Any]]:
        """The cache key of a split and the inputs it was made from."""
        pooled, words = needs(src, specs)
        inputs = {
            "format": FORMAT,
            "encoder": self.fingerprint,
            "encoder_name": self.encoder.name_or_path,
            "pooling": self.encoder.pooling.mode,
            "max_length": src.max_length or self.encoder.max_length,
            "precision": self.precision,
            "data": data_fingerprint(src, split),
            "examples": len(src.splits.get(split) or []),
            "pooled": pooled,
            "words": words,
        }
        return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:24], inputs

    def get(self, src: Source, split: str, specs: dict[str, TaskSpec], progress: Callable[[int], None] | None = None) -> SplitFeatures:
        """The features of one split: from memory, from disk when the key matches, else encoded now."""
        key, inputs = self.key(src, split, specs)
        if key in self.memory:
            return self.memory[key]
        feats = self._read(key, inputs)
        if feats is None:
            started = time.perf_counter()
            feats = encode_split(self.encoder, src, split, specs, self.precision, self.batch_size, progress)
            self.encode_seconds += time.perf_counter() - started
            self.builds += 1
            if self.folder is not None:
                try:
                    self._write(key, inputs, feats)
                except OSError as exc:  # the cache is an optimisation: a full disk must not stop the run
                    if write_error_reason(exc) is None:
                        raise
                    warnings.warn(f"could not write the feature cache in {self.folder}: {write_error_reason(exc)}; "
                                  f"going on without it (features stay in memory; free space to cache them for later runs)",
                                  stacklevel=2)
                    self.folder = None
                else:
                    feats = self._read(key, inputs)  # what later runs will read: the same numbers every run
        else:
            self.hits += 1
        self.memory[key] = feats  # type: ignore[assignment]
        return feats  # type: ignore[return-value]

    # -- disk ------------------------------------------------------------------------------------
    def _paths(self, key: str) -> tuple[Path, dict[str, Path]]:
        assert self.folder is not None
        arrays = {name: self.folder / f"{key}.{name}.npy" for name in ("pooled", "words", "word_start", "kept")}
        return self.folder / f"{key}.json", arrays

    def _read(self, key: str, inputs: dict[str, Any]) -> SplitFeatures | None:
        if self.folder is None:
            return None
        meta_path, arrays = self._paths(key)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("inputs") != inputs:
                return None  # a hash collision or a file from elsewhere: rebuild
            loaded = {}
            for name, path in arrays.items():
                if name in meta["arrays"]:
                    array = np.load(path, allow_pickle=False, mmap_mode="r")
                    loaded[name] = np.asarray(array, dtype=np.float32) if name in ("pooled", "words") else np.asarray(array)
                else:
                    loaded[name] = None
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing, truncated or foreign: encode again
        return SplitFeatures(**loaded)

    def _write(self, key: str, inputs: dict[str, Any], feats: SplitFeatures) -> None:
        assert self.folder is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        meta_path, arrays = self._paths(key)
        written = []
        for name, path in arrays.items():
            array = getattr(feats, name)
            if array is None:
                continue
            if name in ("pooled", "words"):
                array = array.astype(np.float16)
            write_bytes_atomic(path, lambda fh, a=array: np.save(fh, a, allow_pickle=False))
            written.append(name)
        # The JSON goes last: an entry without it (a crash mid-write) is never read.
        write_json_atomic(meta_path, {"inputs": inputs, "arrays": written, "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


@torch.inference_mode()
def encode_split(
    encoder: Encoder,
    src: Source,
    split: str,
    specs: dict[str, TaskSpec],
    precision: str = "fp32",
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> SplitFeatures:
    """Run the frozen encoder over one split of a text source, batched by length, in input order.

    Texts are tokenised exactly as the training loop's `collate` does (same max length, same
    word alignment), so a head fit on these features sees what it would see in the loop.
    """
    examples = src.splits.get(split) or []
    want_pooled, want_words = needs(src, specs)
    was_training = encoder.training
    encoder.eval()
    device = encoder.device
    dim, width = encoder.dim, encoder.hidden_size  # sentence vectors; per-token states
    pooled = np.zeros((len(examples), dim), dtype=np.float32) if want_pooled else None
    per_text: list[np.ndarray] = [np.zeros((0, width), np.float32)] * len(examples)
    kept_per_text: list[np.ndarray] = [np.zeros(0, bool)] * len(examples)
    for idx, _, batch in collated_batches(src, split, specs, encoder.tokenizer, encoder.max_length, batch_size):
        inputs = {k: v.to(device) for k, v in batch["inputs"].items()}
        with autocast_context(precision, device):
            out = encoder(**inputs)
        if pooled is not None:
            pooled[idx] = out["pooled"].float().cpu().numpy()
        if want_words:
            states = out["token_embeddings"].float().cpu().numpy()
            for row, i in enumerate(idx):
                firsts = np.asarray(batch["firsts"][row], dtype=np.int64)
                keep = firsts >= 0
                vectors = np.zeros((len(firsts), width), np.float32)
                vectors[keep] = states[row, firsts[keep]]
                per_text[i], kept_per_text[i] = vectors, keep
        if progress is not None:
            progress(len(idx))
    encoder.train(was_training)
    words = word_start = kept = None
    if want_words:
        counts = np.array([len(k) for k in kept_per_text], dtype=np.int64)
        word_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        words = np.concatenate(per_text) if len(per_text) else np.zeros((0, width), np.float32)
        kept = np.concatenate(kept_per_text) if len(kept_per_text) else np.zeros(0, bool)
    return SplitFeatures(pooled, words, word_start, kept)
