"""The benchmark runner and study, end to end on tiny synthetic data with the tiny random encoder."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from polyhead.bench import benchmark as bm
from polyhead.bench import study as st
from train_helpers import NER, TOPICS, tiny_encoder_dir

SENTIMENT = {"positive": ["a lovely warm film", "great acting and story", "i loved every minute"],
             "negative": ["a dull boring mess", "terrible script and pacing", "i hated the ending"]}
PAIRS = [("a cat sits", "a cat is sitting", 4.8), ("a dog runs", "stocks fell", 0.2),
         ("the sun is hot", "it is sunny", 3.5), ("he plays piano", "a man eats", 0.5)]


def _write(path: Path, lines: list[str]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def _task_files(root: Path, task: str) -> dict[str, str]:
    """train/dev/test files for one benchmark task name, in the formats the real datasets use."""
    out = {}
    for split, reps in (("train", 6), ("dev", 1), ("test", 1)):
        if task in ("trec", "sentiment"):
            data = TOPICS if task == "trec" else SENTIMENT
            rows = [json.dumps({"text": t, "label": lab}) for _ in range(reps) for lab, ts in data.items() for t in ts]
            out[split] = _write(root / task / f"{split}.jsonl", rows)
        elif task == "conll2003":
            lines = []
            for _ in range(reps):
                for words, tags in NER:
                    lines += [f"{w} {t}" for w, t in zip(words, tags)] + [""]
            out[split] = _write(root / task / f"{split}.conll", lines)
        else:
            pairs = [(a, b, s) for _ in range(reps) for a, b, s in PAIRS]
            if split == "test":  # enough distinct pairs that models' embeddings rank them differently
                texts = [t for ts in (*TOPICS.values(), *SENTIMENT.values()) for t in ts]
                pairs = [(texts[i], texts[(3 * i + 1) % len(texts)], (7 * i) % 11 / 2.2) for i in range(len(texts))]
            rows = [json.dumps({"sentence1": a, "sentence2": b, "score": s}) for a, b, s in pairs]
            out[split] = _write(root / task / f"{split}.jsonl", rows)
    return out


KINDS = {"trec": "classification", "sentiment": "classification", "conll2003": "token", "stsb": "similarity"}


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A joint config and four single-task configs shaped like configs/, on tiny data and the tiny encoder."""
    root = tmp_path_factory.mktemp("bench")
    enc = {"model": str(tiny_encoder_dir(root)), "max_length": 32}
    # Without the anchor and the refit stage, as configs/single/ pins them; the benchmark machinery is what is tested.
    training = {"epochs": 2, "batch_size": 4, "lr": 1e-3, "seed": 3, "anchor_weight": 0.0, "refit_heads": False}
    tasks = []
    for name, kind in KINDS.items():
        t = {"name": name, "kind": kind, **_task_files(root / "data", name)}
        if kind == "similarity":
            t["score_range"] = [0, 5]
        tasks.append(t)
        (root / "single").mkdir(exist_ok=True)
        (root / "single" / f"{name}.yaml").write_text(yaml.safe_dump({"encoder": enc, "tasks": [t], "training": training}))
    joint = root / "benchmark.yaml"
    joint.write_text(yaml.safe_dump({"encoder": enc, "tasks": tasks, "training": {**training, "sampling": "temperature"}}))
    return {"root": root, "joint": joint, "single": root / "single"}


def _check_schema(doc: dict) -> None:
    assert set(doc) >= {"machine", "date", "command", "records"}
    assert isinstance(doc["machine"], str) and doc["machine"] and isinstance(doc["date"], str)
    for r in doc["records"]:
        assert set(r) == {"run", "task", "split", "metric", "value", "seconds", "trainable_params"}
        assert r["task"] in (*bm.TASKS, "all") and r["split"] == "test"
        assert r["metric"] in ("accuracy", "macro_f1", "entity_f1", "spearman", "embedding_stsb")
        assert isinstance(r["value"], float) and isinstance(r["seconds"], float) and isinstance(r["trainable_params"], int)


def test_quick_benchmark_writes_schema_and_table(configs: dict[str, Path], tmp_path: Path) -> None:
    said: list[str] = []
    doc = bm.run_benchmark(configs["joint"], configs["single"], tmp_path / "out", tmp_path / "results", quick=True,
                           command="polyhead benchmark --quick", log=said.append)
    # Long runs are not silent: each run's dev summaries reach the log, named by run.
    assert any(m.startswith("[joint] step ") and " dev: " in m for m in said)
    assert any(m.startswith("[single-trec] ") for m in said)
    on_disk = json.loads((tmp_path / "out" / "benchmark.json").read_text())
    assert on_disk == doc
    # A quick run goes to benchmark-quick.json, never over the committed full figures.
    assert (tmp_path / "results" / "benchmark-quick.json").is_file()
    assert not (tmp_path / "results" / "benchmark.json").exists()
    _check_schema(doc)
    assert doc["command"] == "polyhead benchmark --quick" and doc["subset"]
    runs = {(r["run"], r["task"]) for r in doc["records"]}
    for task in bm.TASKS:
        assert ("joint", task) in runs and ("single", task) in runs
        assert (("frozen-encoder", task) in runs) == (task != "stsb")
    assert ("untrained", "stsb") in runs
    frozen = {r["trainable_params"] for r in doc["records"] if r["run"] == "frozen-encoder"}
    single = {r["trainable_params"] for r in doc["records"] if r["run"] == "single" and r["task"] != "stsb"}
    assert max(frozen) < min(single)  # heads only
    assert [r["trainable_params"] for r in doc["records"] if r["run"] == "untrained" and r["metric"] == "spearman"] == [0]
    md = (tmp_path / "out" / "benchmark.md").read_text()
    assert "QUICK SUBSET" in md and "| task | test metric | joint | single-task |" in md
    for task in bm.TASKS:
        assert f"| {task} |" in md
    # Every run's model has its served embedding scored on the STS-B test pairs: the joint and untrained
    # models' equal their own stsb score (the similarity head is the embedding's cosine); a frozen
    # encoder's equals the untrained one's.
    emb = {(r["run"], r["task"]): r["value"] for r in doc["records"] if r["metric"] == "embedding_stsb"}
    assert set(emb) == {("joint", "all"), ("untrained", "all")} | {("single", t) for t in bm.TASKS} | {
        ("frozen-encoder", t) for t in bm.TASKS if t != "stsb"}
    score = {(r["run"], r["task"]): r["value"] for r in doc["records"] if r["metric"] == "spearman"}
    assert emb[("joint", "all")] == pytest.approx(score[("joint", "stsb")], abs=1e-5)
    assert emb[("single", "stsb")] == pytest.approx(score[("single", "stsb")], abs=1e-5)
    assert emb[("untrained", "all")] == pytest.approx(score[("untrained", "stsb")], abs=1e-5)
    assert emb[("frozen-encoder", "trec")] == pytest.approx(emb[("untrained", "all")], abs=1e-5)
    assert "| run | trained on | embedding STS-B |" in md and "| single | trec |" in md


def test_subset_is_seeded_and_keeps_conll_sentences(tmp_path: Path) -> None:
    src = tmp_path / "a.conll"
    src.write_text("\n\n".join(f"w{i} O\nx{i} B-PER" for i in range(50)) + "\n", encoding="utf-8")
    assert bm.write_subset(src, tmp_path / "b.conll", 10, seed=1) == 10
    bm.write_subset(src, tmp_path / "c.conll", 10, seed=1)
    text = (tmp_path / "b.conll").read_text()
    assert text == (tmp_path / "c.conll").read_text()
    blocks = [b for b in text.split("\n\n") if b.strip()]
    assert len(blocks) == 10 and all(len(b.strip().splitlines()) == 2 for b in blocks)


def test_study_scenarios_on_tiny_data(configs: dict[str, Path], tmp_path: Path) -> None:
    doc = st.run_study(configs["joint"], tmp_path / "study", tmp_path / "results", subset=bm.QUICK,
                       scenarios=["frozen-backbone", "gradual-unfreezing", "head-frozen"],
                       command="polyhead benchmark --study --quick", log=lambda m: None)
    _check_schema(doc)
    assert (tmp_path / "results" / "study-quick.json").is_file()
    assert doc["scenarios"] == ["frozen-backbone", "full", "gradual-unfreezing", "head-frozen"]  # full: head-frozen starts there
    params = {r["run"]: r["trainable_params"] for r in doc["records"]}
    assert 0 < params["frozen-backbone"] < params["full"] == params["gradual-unfreezing"]
    tasks = {r["task"] for r in doc["records"] if r["run"] == "head-frozen"}
    assert tasks == set(bm.TASKS)  # the frozen head's task is scored on the moved backbone too
    assert "before" in doc["notes"]["head-frozen"]
    md = (tmp_path / "study" / "study.md").read_text()
    assert "| head-frozen |" in md and "Subset (same for every scenario)" in md
    # --resume with one more scenario: the four finished runs are kept, only layer-decay trains.
    said: list[str] = []
    again = st.run_study(configs["joint"], tmp_path / "study", None, subset=bm.QUICK, log=said.append, resume=True,
                         scenarios=["frozen-backbone", "gradual-unfreezing", "head-frozen", "layer-decay"])
    assert sorted(again["resumed"]["kept"]) == ["frozen-backbone", "full", "gradual-unfreezing", "head-frozen"]
    assert {m.split("]")[0] for m in said if m.startswith("[")} == {"[layer-decay"}
    assert [r for r in again["records"] if r["run"] != "layer-decay"] == doc["records"]
    assert again["notes"]["head-frozen"] == doc["notes"]["head-frozen"]


def test_parse_subset() -> None:
    s = bm.parse_subset("0.1:1:300")
    assert (s.train_fraction, s.epochs, s.dev_cap) == (0.1, 1, 300) and "full test" in s.describe()
    with pytest.raises(bm.PolyheadError):
        bm.parse_subset("2:1")
    with pytest.raises(bm.PolyheadError):
        bm.parse_subset("half")


def _doc(command: str, date: str, records: list[tuple[str, str, str, float]], subset: str | None = None) -> dict:
    return {"machine": "test box", "date": date, "command": command, "subset": subset, "total_seconds": 10.0,
            "records": [{"run": run, "task": task, "split": "test", "metric": metric, "value": value,
                         "seconds": 5.0, "trainable_params": 7} for run, task, metric, value in records]}


def test_merge_combines_separate_invocations(tmp_path: Path) -> None:
    a = tmp_path / "a.json"
    b = tmp_path / "b.json"
    a.write_text(json.dumps(_doc("polyhead benchmark --runs untrained,frozen-encoder", "2026-01-01",
                                 [("untrained", "stsb", "spearman", 0.82), ("frozen-encoder", "trec", "accuracy", 0.8)])))
    b.write_text(json.dumps(_doc("polyhead benchmark --runs joint,frozen-encoder", "2026-01-02",
                                 [("joint", "stsb", "spearman", 0.84), ("frozen-encoder", "trec", "accuracy", 0.9)])))
    doc = bm.merge_results([a, b], tmp_path / "results")
    _check_schema(doc)  # records keep the schema exactly
    assert doc == json.loads((tmp_path / "results" / "benchmark.json").read_text())
    got = {(r["run"], r["task"]): r["value"] for r in doc["records"]}
    assert got == {("untrained", "stsb"): 0.82, ("frozen-encoder", "trec"): 0.9, ("joint", "stsb"): 0.84}  # later wins
    assert [s["runs"] for s in doc["sources"]] == [["untrained/stsb"], ["frozen-encoder/trec", "joint/stsb"]]
    assert doc["date"] == "2026-01-02" and doc["total_seconds"] == 20.0 and "--runs joint" in doc["command"]
    md = (tmp_path / "results" / "benchmark.md").read_text()
    assert "`polyhead benchmark --runs untrained,frozen-encoder` (2026-01-01" in md and "| 0.8400 |" in md

    # Merging the merged file with a newer untrained run: the first source is fully replaced and drops out.
    c = tmp_path / "c.json"
    c.write_text(json.dumps(_doc("polyhead benchmark --runs untrained", "2026-01-03", [("untrained", "stsb", "spearman", 0.83)])))
    again = bm.merge_results([tmp_path / "results" / "benchmark.json", c], tmp_path / "results")
    assert [s["date"] for s in again["sources"]] == ["2026-01-02", "2026-01-03"]
    assert {(r["run"], r["task"]): r["value"] for r in again["records"]}[("untrained", "stsb")] == 0.83


def test_results_go_to_the_output_folder_unless_a_results_dir_is_given(tmp_path: Path, monkeypatch) -> None:
    """A benchmark, study or --merge never writes into benchmarks/results/ unless told to: by default
    its accumulating results file is in its --output-dir's results/ folder."""
    from polyhead.bench.results import IN_OUTPUT_DIR, MERGE_RESULTS_DIR, results_folder
    from polyhead.cli import build_parser
    from polyhead.cli.commands import cmd_benchmark

    parse = build_parser().parse_args
    assert parse(["benchmark"]).results_dir == IN_OUTPUT_DIR
    assert results_folder(IN_OUTPUT_DIR, "runs/x") == Path("runs/x/results")
    assert results_folder("benchmarks/results", "runs/x") == Path("benchmarks/results")
    assert results_folder(None, "runs/x") is None
    a = tmp_path / "a.json"
    a.write_text(json.dumps(_doc("polyhead benchmark --runs untrained", "2026-01-01", [("untrained", "stsb", "spearman", 0.82)])))
    monkeypatch.chdir(tmp_path)
    assert cmd_benchmark(parse(["benchmark", "--merge", str(a)])) == 0
    assert (tmp_path / MERGE_RESULTS_DIR / "benchmark.json").is_file()
    assert cmd_benchmark(parse(["benchmark", "--merge", str(a), "--output-dir", "mine"])) == 0
    assert (tmp_path / "mine" / "results" / "benchmark.json").is_file()
    assert cmd_benchmark(parse(["benchmark", "--merge", str(a), "--results-dir", "benchmarks/results"])) == 0
    assert (tmp_path / "benchmarks" / "results" / "benchmark.json").is_file()  # only when asked


def test_benchmark_results_file_defaults_to_the_output_folder(configs: dict[str, Path], tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    bm.run_benchmark(configs["joint"], configs["single"], tmp_path / "out", quick=True, runs=["untrained"], tasks=["stsb"],
                     log=lambda m: None)
    assert (tmp_path / "out" / "results" / "benchmark-quick.json").is_file()
    assert not (tmp_path / "benchmarks").exists()


def test_merge_refuses_subsets_and_garbage(tmp_path: Path) -> None:
    sub = tmp_path / "sub.json"
    sub.write_text(json.dumps(_doc("polyhead benchmark --quick", "d", [], subset="3% of train")))
    with pytest.raises(bm.PolyheadError, match="subset run"):
        bm.merge_results([sub], tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(bm.PolyheadError, match="cannot read benchmark results"):
        bm.merge_results([bad], tmp_path)
    with pytest.raises(bm.PolyheadError, match="cannot read"):
        bm.merge_results([tmp_path / "missing.json"], tmp_path)


def test_results_file_accumulates_scenarios_across_invocations(configs: dict[str, Path], tmp_path: Path) -> None:
    """Running one more scenario adds it to the results file instead of dropping the others' figures."""
    first = st.run_study(configs["joint"], tmp_path / "s1", tmp_path / "results", subset=bm.QUICK,
                         scenarios=["frozen-all"], command="polyhead benchmark --study --quick --scenarios frozen-all",
                         log=lambda m: None)
    second = st.run_study(configs["joint"], tmp_path / "s2", tmp_path / "results", subset=bm.QUICK,
                          scenarios=["frozen-backbone"], command="polyhead benchmark --study --quick --scenarios frozen-backbone",
                          log=lambda m: None)
    assert {r["run"] for r in second["records"]} == {"frozen-backbone"}  # the output folder holds this invocation only
    kept = json.loads((tmp_path / "results" / "study-quick.json").read_text())
    _check_schema(kept)
    assert kept["scenarios"] == ["frozen-all", "frozen-backbone"]
    assert {r["run"] for r in kept["records"]} == {"frozen-all", "frozen-backbone"}
    assert [s["command"] for s in kept["sources"]] == [first["command"], second["command"]]
    md = (tmp_path / "results" / "study-quick.md").read_text()
    assert "| frozen-all |" in md and "| frozen-backbone |" in md and "Commands:" in md


def test_combine_refuses_different_data() -> None:
    with pytest.raises(bm.PolyheadError, match="different data"):
        bm.combine([_doc("a", "d1", [], subset=None), _doc("b", "d2", [], subset="3% of train")])


def test_merge_refuses_training_flags(tmp_path: Path) -> None:
    from polyhead.cli import build_parser
    from polyhead.cli.commands import cmd_benchmark

    args = build_parser().parse_args(["benchmark", "--study", "--merge", str(tmp_path / "a.json")])
    with pytest.raises(bm.PolyheadError, match="--merge trains nothing"):
        cmd_benchmark(args)
    assert not list(tmp_path.iterdir())  # nothing trained, nothing written


def test_output_dir_replaces_only_what_a_benchmark_made(tmp_path: Path) -> None:
    """The benchmark deletes a folder in --output-dir only when its marker file lists it."""
    out = bm.OutputDir(tmp_path / "out")
    run = out.fresh("joint")
    run.mkdir()
    (run / "model.bin").write_text("an earlier benchmark's model")
    (tmp_path / "out" / "mine").mkdir()
    (tmp_path / "out" / "mine" / "notes.txt").write_text("keep")
    again = bm.OutputDir(tmp_path / "out")  # a later invocation reads the marker
    assert not again.fresh("joint").exists()  # listed: replaced
    with pytest.raises(bm.PolyheadError, match="not made by polyhead benchmark.*--force"):
        again.fresh("mine")
    assert (tmp_path / "out" / "mine" / "notes.txt").read_text() == "keep"
    assert not bm.OutputDir(tmp_path / "out", force=True).fresh("mine").exists()
    # A non-empty folder without the marker is not a benchmark's output folder at all.
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    with pytest.raises(bm.PolyheadError, match="not a benchmark output folder"):
        bm.OutputDir(tmp_path / "other")


def test_study_over_seeds_reports_mean_sd_and_difference_from_single_task(configs: dict[str, Path], tmp_path: Path) -> None:
    doc = st.run_study(configs["joint"], tmp_path / "study", tmp_path / "results", subset=bm.QUICK,
                       scenarios=["single-task", "full"], single_dir=configs["single"], seeds=[0, 1],
                       recipes={"heavier-sts": ["tasks.stsb.weight=3", "training.weighting=static"]},
                       command="polyhead benchmark --study --quick --seeds 0,1", log=lambda m: None, results_name="quality-quick")
    assert doc["scenarios"] == ["single-task", "full", "heavier-sts"] and doc["seeds"] == [0, 1]
    test = [r for r in doc["records"] if r["split"] == "test"]
    assert {(r["run"], r["seed"]) for r in test} == {(s, seed) for s in doc["scenarios"] for seed in (0, 1)}
    assert {r["task"] for r in test if r["run"] == "single-task"} == set(bm.TASKS)
    assert any(r["split"] == "dev" for r in doc["records"])  # the kept checkpoint's dev scores, for references
    # Seeds really differ, and the table's cell is their mean and sample sd.
    vals = sorted(r["value"] for r in test if r["run"] == "full" and r["task"] == "trec" and r["metric"] == "accuracy")
    mean, sd, n = bm.stats_of(doc["records"], "full", "trec", "accuracy")
    assert n == 2 and mean == pytest.approx(sum(vals) / 2) and sd == pytest.approx(abs(vals[1] - vals[0]) / 2 ** 0.5)
    md = (tmp_path / "results" / "quality-quick.md").read_text()
    assert f"{mean:.4f} ± {sd:.4f}" in md
    assert "Difference from single-task on the same seed" in md and "| heavier-sts |" in md
    assert not (tmp_path / "results" / "study-quick.json").exists()  # --name keeps it apart from the freezing study
    assert (tmp_path / "study" / "single-task-conll2003-s1" / "polyhead.json").is_file()


@pytest.mark.slow  # `make test-slow` (and CI) runs it
def test_parallel_jobs_give_the_runs_of_the_in_process_study(configs: dict[str, Path], tmp_path: Path) -> None:
    kw = dict(subset=bm.QUICK, scenarios=["full", "frozen-backbone"], seeds=[5], log=lambda m: None, results_dir=None)
    one = st.run_study(configs["joint"], tmp_path / "one", **kw)
    two = st.run_study(configs["joint"], tmp_path / "two", jobs=2, **kw)

    def key(doc: dict) -> dict:
        return {(r["run"], r["task"], r["metric"], r["split"]): r["value"] for r in doc["records"]}

    assert key(one).keys() == key(two).keys()
    for k, v in key(one).items():
        assert key(two)[k] == pytest.approx(v, abs=1e-4), k  # same seeds, same data: the same runs in other processes


def test_recipe_and_seed_parsing() -> None:
    assert st.parse_recipe("best=tasks.stsb.loss=cosent; training.weighting=famo;+distill") == (
        "best", ["tasks.stsb.loss=cosent", "training.weighting=famo", "+distill"])
    for bad in ("noequals", "=x=1", "full=training.lr=1"):
        with pytest.raises(bm.PolyheadError):
            st.parse_recipe(bad)
    assert bm.parse_seeds("0,1,2") == [0, 1, 2]
    for bad in ("a", "1,1", "-1", ""):
        with pytest.raises(bm.PolyheadError):
            bm.parse_seeds(bad)


def test_benchmark_over_seeds_records_each_seed(configs: dict[str, Path], tmp_path: Path) -> None:
    doc = bm.run_benchmark(configs["joint"], configs["single"], tmp_path / "out", tmp_path / "results", quick=True,
                           tasks=["trec"], runs=["joint", "single"], seeds=[0, 1], log=lambda m: None)
    test = [r for r in doc["records"] if r["split"] == "test" and r["metric"] == "accuracy"]
    assert sorted((r["run"], r["seed"]) for r in test) == [("joint", 0), ("joint", 1), ("single", 0), ("single", 1)]
    md = (tmp_path / "results" / "benchmark-quick.md").read_text()
    assert "over seeds 0, 1" in md and "±" in md


@pytest.mark.slow  # `make test-slow` (and CI) runs it
def test_benchmark_distill_teaches_the_joint_run_with_the_same_seeds_single_models(configs: dict[str, Path], tmp_path: Path) -> None:
    doc = bm.run_benchmark(configs["joint"], configs["single"], tmp_path / "out", None, quick=True,
                           runs=["joint", "single"], seeds=[0], jobs=2, distill=["conll2003", "stsb"],
                           overrides=["training.distill_other_texts=2"], log=lambda m: None)
    assert {r["run"] for r in doc["records"]} == {"joint", "single"}
    saved = yaml.safe_load((tmp_path / "out" / "joint-s0" / "training" / "config.yaml").read_text())
    # --set reaches every run, but the teachers' term on other texts is the joint run's (singles have no teacher)
    assert saved["training"]["distill_other_texts"] == 2
    single = yaml.safe_load((tmp_path / "out" / "single-trec-s0" / "training" / "config.yaml").read_text())
    assert single["training"]["distill_other_texts"] == 0
    # only the named tasks get a teacher; every single-task model is still trained (the reference rows)
    assert saved["training"]["distill_teachers"] == {t: str((tmp_path / "out" / f"single-{t}-s0").resolve()) for t in ("conll2003", "stsb")}
    assert {r["task"] for r in doc["records"] if r["run"] == "single"} == set(bm.TASKS)
    with pytest.raises(bm.PolyheadError, match="--distill needs"):
        bm.run_benchmark(configs["joint"], configs["single"], tmp_path / "x", None, quick=True, runs=["joint"], distill=["trec"])
    with pytest.raises(bm.PolyheadError, match="not in this benchmark: stsb"):
        bm.run_benchmark(configs["joint"], configs["single"], tmp_path / "y", None, quick=True, tasks=["trec"],
                         runs=["joint", "single"], distill=["stsb"])


@pytest.fixture()
def single_teacher_config(configs: dict[str, Path], tmp_path: Path) -> Path:
    """The joint config naming its CoNLL teacher as {single}: the benchmark's own single-task model."""
    doc = yaml.safe_load(configs["joint"].read_text())
    doc["training"].update(distill_teachers={"conll2003": "{single}"}, distill_other_texts=2.0, anchor_weight=1.0)  # as configs/
    path = tmp_path / "joint-single-teacher.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_single_teacher_in_the_joint_config_is_the_benchmarks_single_task_model(configs, single_teacher_config, tmp_path) -> None:
    said: list[str] = []
    bm.run_benchmark(single_teacher_config, configs["single"], tmp_path / "out", None, quick=True, tasks=["trec", "conll2003"],
                     runs=["joint", "single"], seeds=[0], log=said.append)
    saved = yaml.safe_load((tmp_path / "out" / "joint-s0" / "training" / "config.yaml").read_text())
    assert saved["training"]["distill_teachers"] == {"conll2003": str((tmp_path / "out" / "single-conll2003-s0").resolve())}
    assert saved["training"]["distill_other_texts"] == 2
    assert any("[joint-s0] distillation: teachers for conll2003" in m for m in said)
    # Without the single runs there is no teacher to train: one error that says what to do instead.
    with pytest.raises(bm.PolyheadError, match=r"add single to --runs .*training.distill_teachers.conll2003=PATH"):
        bm.run_benchmark(single_teacher_config, configs["single"], tmp_path / "x", None, quick=True, runs=["joint"])
    # A benchmark without the teacher's task trains without it (and without the term that needs it).
    said.clear()
    bm.run_benchmark(single_teacher_config, configs["single"], tmp_path / "y", None, quick=True, tasks=["trec"], runs=["joint"],
                     log=said.append)
    saved = yaml.safe_load((tmp_path / "y" / "joint" / "training" / "config.yaml").read_text())
    assert saved["training"]["distill_teachers"] == {} and saved["training"]["distill_other_texts"] == 0
    assert any("no teacher for conll2003 (not in --tasks)" in m for m in said)


def test_training_a_config_with_a_single_teacher_directly_says_how(single_teacher_config, tmp_path) -> None:
    from polyhead.training.config import load_config
    from polyhead.training.loop import train

    with pytest.raises(bm.PolyheadError, match=r"only polyhead benchmark fills in.*training.distill_teachers.conll2003=PATH"):
        train(load_config(single_teacher_config), tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "encoder").exists()


@pytest.mark.slow  # `make test-slow` (and CI) runs it
def test_the_study_leaves_the_configs_single_teachers_out_of_its_scenarios(configs, single_teacher_config, tmp_path) -> None:
    said: list[str] = []
    doc = st.run_study(single_teacher_config, tmp_path / "study", None, subset=bm.QUICK, scenarios=["full", "frozen-all"],
                       log=said.append)
    assert {r["run"] for r in doc["records"]} == {"full", "frozen-all"}  # no single-task teachers were trained
    # A frozen scenario of a config with the anchor trains without it (nothing to anchor), not a config error.
    assert yaml.safe_load((tmp_path / "study" / "frozen-all" / "training" / "config.yaml").read_text())["training"]["anchor_weight"] == 0
    saved = yaml.safe_load((tmp_path / "study" / "full" / "training" / "config.yaml").read_text())
    assert saved["training"]["distill_teachers"] == {} and saved["training"]["distill_other_texts"] == 0
    assert any("left out of every scenario but distill" in m for m in said)
    # distill adds every task's teacher to that base; a +distill recipe may ask for the other-texts term.
    st.run_study(single_teacher_config, tmp_path / "study2", None, subset=bm.QUICK, scenarios=["distill", "other"],
                 recipes={"other": ["training.distill_other_texts=3", st.DISTILL]}, single_dir=configs["single"], log=lambda m: None)
    for name, weight in (("distill", 0), ("other", 3)):
        saved = yaml.safe_load((tmp_path / "study2" / name / "training" / "config.yaml").read_text())
        assert set(saved["training"]["distill_teachers"]) == set(bm.TASKS)
        assert saved["training"]["distill_other_texts"] == weight


def test_benchmark_distill_flag_names_all_selected_tasks_or_some() -> None:
    from polyhead.cli.options import build_parser

    parse = build_parser().parse_args
    assert parse(["benchmark"]).distill is None
    assert parse(["benchmark", "--distill"]).distill == "all"
    assert parse(["benchmark", "--distill", "conll2003,stsb"]).distill == "conll2003,stsb"


def test_two_invocations_writing_side_by_side_keep_each_others_records(tmp_path: Path) -> None:
    from polyhead.bench.results import ResultsWriter, records_from, study_markdown

    results = tmp_path / "results" / "quality.json"
    docs, writers = [], []
    for i, run in enumerate(("anchor", "famo")):
        docs.append({"machine": "m", "date": f"d{i}", "command": f"c{i}", "subset": "s", "total_seconds": 0.0,
                     "records": [], "scenarios": [run]})
        writers.append(ResultsWriter(tmp_path / f"out{i}" / "study.json", results, study_markdown))
    for seed in (0, 1):  # interleaved, as two studies on two cores write after each run
        for doc, writer in zip(docs, writers):
            doc["records"] += records_from(doc["scenarios"][0], {"stsb": {"spearman": 0.8 + seed / 100}}, 1.0, 1, seed=seed)
            writer.write(doc)
    held = json.loads(results.read_text())
    assert {(r["run"], r["seed"]) for r in held["records"]} == {(run, s) for run in ("anchor", "famo") for s in (0, 1)}
    assert sorted(s["command"] for s in held["sources"]) == ["c0", "c1"]


def test_parallel_jobs_start_longest_first(tmp_path: Path) -> None:
    from polyhead.bench.harness import Job, estimated_cost
    from polyhead.training.config import config_from_dict

    small, large = tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    small.write_text('{"text": "a", "label": "x"}\n' * 10)
    large.write_text('{"text": "a", "label": "x"}\n' * 100)

    def job(name: str, files: list[Path], epochs: int) -> Job:
        tasks = [{"name": f"t{i}", "kind": "classification", "train": str(f)} for i, f in enumerate(files)]
        cfg = config_from_dict({"tasks": tasks, "training": {"epochs": epochs}}, base_dir=tmp_path)
        return Job(name, None, name, cfg)

    joint, single, long_single = job("joint", [small, large, large], 5), job("single", [large], 5), job("single8", [large], 8)
    assert estimated_cost(joint) > estimated_cost(long_single) > estimated_cost(single) > 0
    assert estimated_cost(job("gone", [tmp_path / "missing.jsonl"], 5)) == 0.0  # no file: nothing to order by, no error
    assert estimated_cost(Job("head-frozen", None, "hf")) == 0.0
    plan = [single, long_single, joint]
    assert sorted(plan, key=estimated_cost, reverse=True) == [joint, long_single, single]


class _Crash(Exception):
    """A stand-in for a benchmark that died (power cut, session end) right after a checkpoint."""


def test_resume_keeps_finished_runs_and_continues_the_interrupted_one(configs: dict[str, Path], tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from polyhead.training import loop

    args = dict(subset=bm.parse_subset("1:2"), tasks=["trec"], runs=["joint", "single"], seeds=[0],
                overrides=["training.checkpoint_every=2"])
    whole = bm.run_benchmark(configs["joint"], configs["single"], tmp_path / "whole", None, log=lambda m: None, **args)

    save = loop.save_checkpoint

    def save_then_crash(run: loop.Run, state: loop.TrainState) -> None:
        crash = run.out.name == "joint-s0" and state.global_step == 2
        if crash:
            time.sleep(1.0)  # this part's seconds must count in the resumed run's time
        save(run, state)
        if crash:
            raise _Crash()

    monkeypatch.setattr(loop, "save_checkpoint", save_then_crash)
    with pytest.raises(_Crash):  # single-trec-s0 trains first (plan order), then joint-s0 dies at step 2
        bm.run_benchmark(configs["joint"], configs["single"], tmp_path / "out", None, log=lambda m: None, **args)
    monkeypatch.setattr(loop, "save_checkpoint", save)
    state = json.loads((tmp_path / "out" / "joint-s0" / "checkpoints" / "step-0000002" / "trainer_state.json").read_text())
    assert state["elapsed"] >= 1.0

    # A changed config cannot continue the checkpoint: train() refuses, naming the difference.
    changed = {**args, "overrides": [*args["overrides"], "training.lr=0.5"]}
    with pytest.raises(bm.PolyheadError, match="differs from the checkpoint"):
        bm.run_benchmark(configs["joint"], configs["single"], tmp_path / "out", None, log=lambda m: None, resume=True, **changed)

    single_model = (tmp_path / "out" / "single-trec-s0" / "heads").stat().st_mtime_ns
    said: list[str] = []
    doc = bm.run_benchmark(configs["joint"], configs["single"], tmp_path / "out", None, log=said.append, resume=True, **args)
    assert "single-trec-s0: finished in the earlier run; kept" in said
    assert "joint-s0: unfinished; continuing from its last checkpoint" in said
    assert any(m.startswith("[joint-s0] resumed from step 2") for m in said)
    assert not any(m.startswith("[single-trec-s0]") for m in said)  # not trained again
    assert (tmp_path / "out" / "single-trec-s0" / "heads").stat().st_mtime_ns == single_model
    assert doc["resumed"]["kept"] == ["single-trec-s0"] and doc["resumed"]["continued"] == ["joint-s0"]

    def scores(d: dict) -> dict:
        return {(r["run"], r["task"], r["metric"]): r["value"] for r in d["records"]}

    assert scores(doc) == scores(whole)  # the interrupted benchmark ends where the uninterrupted one did
    joint = next(r for r in doc["records"] if r["run"] == "joint")
    assert joint["seconds"] >= state["elapsed"]  # the time before the crash counts
    assert json.loads((tmp_path / "out" / "benchmark.json").read_text()) == doc


def test_resume_refuses_what_it_cannot_continue(configs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(bm.PolyheadError, match="no interrupted run to continue"):
        bm.run_benchmark(configs["joint"], configs["single"], tmp_path / "out", None, quick=True, tasks=["trec"],
                         runs=["single"], resume=True, log=lambda m: None)
    bm.run_benchmark(configs["joint"], configs["single"], tmp_path / "out", None, quick=True, tasks=["trec"],
                     runs=["single"], log=lambda m: None)
    with pytest.raises(bm.PolyheadError, match="used other data"):
        bm.run_benchmark(configs["joint"], configs["single"], tmp_path / "out", None, subset=bm.parse_subset("0.5:1"),
                         tasks=["trec"], runs=["single"], resume=True, log=lambda m: None)


def test_resume_continues_a_benchmark_killed_before_any_run_finished(configs: dict[str, Path], tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """One joint run killed after a checkpoint leaves no benchmark.json yet; --resume must still continue it."""
    from polyhead.training import loop

    args = dict(subset=bm.parse_subset("1:2"), tasks=["trec"], runs=["joint"], seeds=[0],
                overrides=["training.checkpoint_every=2"])
    whole = bm.run_benchmark(configs["joint"], configs["single"], tmp_path / "whole", None, log=lambda m: None, **args)
    save = loop.save_checkpoint

    def save_then_crash(run: loop.Run, state: loop.TrainState) -> None:
        save(run, state)
        if state.global_step == 2:
            raise _Crash()

    monkeypatch.setattr(loop, "save_checkpoint", save_then_crash)
    with pytest.raises(_Crash):
        bm.run_benchmark(configs["joint"], configs["single"], tmp_path / "out", None, log=lambda m: None, **args)
    monkeypatch.setattr(loop, "save_checkpoint", save)
    assert not (tmp_path / "out" / "benchmark.json").exists()
    said: list[str] = []
    doc = bm.run_benchmark(configs["joint"], configs["single"], tmp_path / "out", None, log=said.append, resume=True, **args)
    assert "joint-s0: unfinished; continuing from its last checkpoint" in said
    assert any(m.startswith("[joint-s0] resumed from step 2") for m in said)
    assert doc["resumed"]["continued"] == ["joint-s0"]
    assert [(r["task"], r["value"]) for r in doc["records"]] == [(r["task"], r["value"]) for r in whole["records"]]


def test_committed_results_name_no_machine_path():
    """Results files are read on other machines: paths in them are relative to the repository
    (or $TMPDIR), never this checkout's or a temporary folder's absolute path; archive/ included."""
    import re

    results = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    absolute = re.compile(r"(?<![\w$.])/(?:work|tmp|home|root|Users|mnt|var/folders)/")
    files = sorted(p for p in results.rglob("*") if p.is_file() and p.suffix in (".json", ".md", ".csv"))
    assert any(p.parent.name == "archive" for p in files)  # the archived results are checked too
    offenders = [f"{p.relative_to(results)}:{n}" for p in files
                 for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if absolute.search(line)]
    assert not offenders, f"absolute machine paths in {len(offenders)} line(s), e.g. {offenders[:5]}"


def test_results_writer_takes_machine_paths_out(tmp_path, monkeypatch):
    import tempfile

    from polyhead.bench.results import portable

    monkeypatch.chdir(tmp_path)
    doc = {"command": f"python run.py --work {tmp_path}/runs/x --out {tempfile.gettempdir()}/scratch/y",
           "runs": [str(tmp_path / "runs" / "a")], "n": 3}
    assert portable(doc) == {"command": "python run.py --work runs/x --out $TMPDIR/scratch/y", "runs": ["runs/a"], "n": 3}
