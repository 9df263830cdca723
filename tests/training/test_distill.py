"""Distillation: soft targets with teacher annealing, cached-target alignment, the anchor, errors, resume."""
from __future__ import annotations

import copy
import itertools
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from safetensors.torch import load_file

from polyhead import MultiTaskModel, PolyheadError, TaskSpec, load
from polyhead.training.batches import BatchStream
from polyhead.training.build import build_model, make_weighting
from polyhead.training.config import load_config
from polyhead.training.data import Example, Source, build_sources
from polyhead.training.anchor import anchor_shares
from polyhead.training.distill import Distiller, build_distiller, check_teacher, soft_cross_entropy, teacher_weight, word_starts
from polyhead.training.loop import Objective, train

from conftest import make_tiny_encoder
from train_helpers import write_config

SRC = str(Path(__file__).resolve().parents[2] / "src")
KILL = str(Path(__file__).with_name("train_kill.py"))
# Long, rare words: the tokenizer splits them into several sub-tokens, so word i's first sub-token
# is not position i + 1; the long sentence is cut by max_length (its last words have no position).
NER_WORDS = [
    (["Wolfeschlegelsteinhausen", "visited", "Szczebrzeszyn", "."], ["B-PER", "O", "B-LOC", "O"]),
    (["Anna", "Kowalczykiewicz", "lives", "in", "Llanfairpwllgwyngyll"], ["B-PER", "I-PER", "O", "O", "B-LOC"]),
    (["nothing", "here"], ["O", "O"]),
    (["Bob", "went", "to", "New", "York"] + ["and", "then", "Kuala", "Lumpur"] * 8, ["B-PER", "O", "O", "B-LOC", "I-LOC"] + ["O", "O", "B-LOC", "I-LOC"] * 8),
]


def _write_ner(path: Path, reps: int = 4) -> Path:
    lines = []
    for _ in range(reps):
        for words, tags in NER_WORDS:
            lines += [f"{w} {t}" for w, t in zip(words, tags)] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _config_file(root: Path, tasks: list[str] | None = None, **training) -> Path:
    """write_config's three-task config (NER on the long-word sentences), or only `tasks` of it."""
    path = write_config(root, **training)
    data = yaml.safe_load(path.read_text())
    ner = _write_ner(root / "data" / "ner_long.conll")
    for t in data["tasks"]:
        if t["name"] == "ner":
            t["train"] = str(ner)
    if tasks is not None:
        data["tasks"] = [t for t in data["tasks"] if t["name"] in tasks]
    path = root / f"config-{'-'.join(tasks or ['all'])}.yaml"  # write_config rewrites config.yaml each time
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def teachers(tmp_path_factory) -> Path:
    """Three single-task models (topic, ner, sts), each trained alone for one epoch, under ROOT/teachers."""
    root = tmp_path_factory.mktemp("distill")
    for task in ("topic", "ner", "sts"):
        train(load_config(_config_file(root, [task], epochs=1)), root / "teachers" / task, progress=False)
    return root


def _run_config(root: Path, *overrides: str, **training):
    return load_config(_config_file(root, **training), list(overrides))


# -- the math -----------------------------------------------------------------------------------
def test_soft_cross_entropy_matches_a_hand_computation():
    logits = torch.tensor([[1.0, 2.0, 0.0]])
    teacher = torch.tensor([[0.0, 0.0, math.log(2.0)]])  # softmax: 1/4, 1/4, 1/2
    lam = 0.5
    target = [0.5 * 0.25, 0.5 * 0.25 + 0.5, 0.5 * 0.5]  # gold label 1
    log_z = math.log(math.e ** 1 + math.e ** 2 + 1)
    expected = -sum(p * (x - log_z) for p, x in zip(target, [1.0, 2.0, 0.0]))
    assert soft_cross_entropy(logits, teacher, torch.tensor([1]), lam).item() == pytest.approx(expected, rel=1e-6)
    # lambda 0: the gold cross-entropy; lambda 1: cross-entropy against the teacher's distribution only
    rows, teachers_, gold = torch.randn(5, 4), torch.randn(5, 4), torch.tensor([0, 3, 1, 1, 2])
    assert torch.allclose(soft_cross_entropy(rows, teachers_, gold, 0.0), torch.nn.functional.cross_entropy(rows, gold))
    soft = -(teachers_.softmax(-1) * rows.log_softmax(-1)).sum(-1).mean()
    assert torch.allclose(soft_cross_entropy(rows, teachers_, gold, 1.0), soft)


def test_teacher_weight_goes_from_one_to_zero_and_is_a_function_of_the_step():
    assert teacher_weight(0, 40) == 1.0
    assert teacher_weight(10, 40) == pytest.approx(0.75)
    assert teacher_weight(40, 40) == 0.0 and teacher_weight(55, 40) == 0.0
    assert teacher_weight(20, 40, start=0.5) == pytest.approx(0.25)
    assert teacher_weight(0, 40, 0.3, anneal=False) == teacher_weight(39, 40, 0.3, anneal=False) == 0.3
    # A resumed run sets the step it restored: lambda is where the interrupted run left it.
    d = Distiller(total_steps=40)
    d.step = 10
    assert d.lam == teacher_weight(10, 40)


# -- cached targets line up with the training batches -------------------------------------------
def _student_and_distiller(tmp_path: Path, **training):
    """A fresh student, the same model saved as every task's teacher, and the distiller built from it."""
    cfg = _run_config(tmp_path, **training)
    sources, specs = build_sources(cfg)
    torch.manual_seed(0)
    model = build_model(cfg, specs, "cpu")
    model.save(tmp_path / "self")
    cfg.training.distill_teachers = {t: str(tmp_path / "self") for t in specs}
    distiller = build_distiller(cfg, sources, specs, model, total_steps=10, say=lambda m: None)
    accelerator = SimpleNamespace(num_processes=1, process_index=0, device=torch.device("cpu"))
    stream = BatchStream(sources, specs, model.encoder.tokenizer, cfg.encoder.max_length, cfg.training.seed, accelerator)
    stream.start_epoch(0, [])
    batches = [stream.next(s.name) for s in sources for _ in range(stream.num_batches[s.name])]
    return cfg, model, distiller, batches


def test_cached_teacher_logits_equal_the_students_at_step_zero_when_the_teacher_is_the_student(tmp_path):
    _, model, distiller, batches = _student_and_distiller(tmp_path)
    model.eval()
    split_words = truncated = 0
    with torch.no_grad():
        for batch in batches:
            index = batch["index"]
            if batch["pairs"]:
                head = model.heads["sts"]
                a, b = head(model.encoder(**batch["a"])), head(model.encoder(**batch["b"]))
                ta, tb = (t[index].float() for t in distiller.pairs["sts"])
                torch.testing.assert_close(a, ta, atol=2e-3, rtol=0)  # cached as fp16
                torch.testing.assert_close(b, tb, atol=2e-3, rtol=0)
                continue
            feats = model.encoder(**batch["inputs"])
            for task, labels in batch["labels"].items():
                logits = model.heads[task](feats)
                mask = labels != -100
                if task == "topic":
                    teacher = distiller.logits[("topic", "topic")][index][mask]
                else:
                    flat, offsets = distiller.tokens[("ner", "ner")]
                    teacher = torch.cat([flat[offsets[i] : offsets[i + 1]] for i in index.tolist()])
                    for row, firsts in enumerate(batch["firsts"]):
                        split_words += any(b - a > 1 for a, b in itertools.pairwise(firsts) if a >= 0 and b >= 0)
                        truncated += -1 in firsts
                torch.testing.assert_close(logits[mask], teacher, atol=1e-5, rtol=1e-4)
    assert split_words and truncated  # the alignment was tested where it can go wrong
    # The losses at lambda 1 read these targets: a student equal to its teacher has the teacher's entropy.
    distiller.step = 0
    batch = next(b for b in batches if "ner" in b.get("labels", {}))
    labels = batch["labels"]["ner"]
    with torch.no_grad():
        logits = model.heads["ner"](model.encoder(**batch["inputs"]))
        loss = distiller.text_loss(batch, "ner", model.heads["ner"], logits, labels)
    p = logits[labels != -100].softmax(-1)
    assert loss.item() == pytest.approx(-(p * p.log()).sum(-1).mean().item(), rel=1e-4)


def test_anchor_loss_is_zero_at_the_start_and_grows_with_training(tmp_path):
    cfg = _run_config(tmp_path, anchor_weight=1.0)
    sources, specs = build_sources(cfg)
    model = build_model(cfg, specs, "cpu")
    distiller = build_distiller(cfg, sources, specs, model, total_steps=10, say=lambda m: None)
    assert set(distiller.anchors) == {"topic", "ner", "sts"} and len(distiller.anchors["sts"]) == 2
    accelerator = SimpleNamespace(num_processes=1, process_index=0, device=torch.device("cpu"))
    stream = BatchStream(sources, specs, model.encoder.tokenizer, cfg.encoder.max_length, cfg.training.seed, accelerator)
    stream.start_epoch(0, [])
    batches = [stream.next(name) for name in ("topic", "sts", "ner", "topic")]

    def anchor(batch) -> float:
        model.eval()
        with torch.no_grad():
            sides = ["a", "b"] if batch["pairs"] else ["inputs"]
            return distiller.anchor_loss(batch, [model.encoder(**batch[s])["pooled"] for s in sides]).item()

    assert all(anchor(b) < 1e-5 for b in batches)  # the student is the original (fp16 cache rounding only)
    objective = Objective(model, make_weighting(cfg, list(specs)), distiller)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model.train()
    for batch in batches[:3] * 2:
        total, losses = objective(batch)
        assert set(losses) <= set(specs)  # the anchor is no task: the weighting never sees it
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert all(anchor(b) > 1e-4 for b in batches)


def _source(name: str, examples: list) -> Source:
    return Source(name=name, pairs=examples[0].pair is not None, tasks=[name], columns={}, cfg=None,  # type: ignore[arg-type]
                  batch_size=4, max_length=32, splits={"train": examples})


def test_anchor_shares_divide_each_text_by_the_sources_that_have_it():
    # Written out with its own spacing, a token task's sentence is still the same text.
    texts = _source("texts", [Example(0, text="Anna lives in Paris."), Example(1, text="only here"), Example(2, text="a cat  sits")])
    words = _source("words", [Example(0, words=["Anna", "lives", "in", "Paris", "."]), Example(1, words=["also", "only", "here"])])
    pairs = _source("pairs", [Example(0, pair=("a cat sits", "a dog runs"), labels={"pairs": 1.0})])
    alone = _source("alone", [Example(0, text="nobody else")])
    shares, n_shared = anchor_shares([texts, words, pairs, alone])
    assert n_shared == 2  # the NER sentence written out, and one side of the pair
    assert set(shares) == {"texts", "words", "pairs"}  # a source sharing nothing keeps the plain anchor
    assert shares["texts"][0].tolist() == [0.5, 1.0, 0.5]
    assert shares["words"][0].tolist() == [0.5, 1.0]
    assert [side.tolist() for side in shares["pairs"]] == [[0.5], [1.0]]
    # A text twice in one source is still one source's text.
    twice = _source("twice", [Example(0, text="x"), Example(1, text="x")])
    assert anchor_shares([twice, alone]) == ({}, 0)


@pytest.mark.parametrize("target", ["vectors", "similarities"])
def test_a_texts_anchor_term_scales_with_its_share(target):
    torch.manual_seed(0)
    start = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    now = start + 0.3 * torch.randn(4, 8)
    batch = {"source": "s", "index": torch.tensor([0, 1, 2, 3])}
    plain = Distiller(10, anchor_weight=2.0, anchor_target=target, anchors={"s": (start,)})
    halved = Distiller(10, anchor_weight=2.0, anchor_target=target, anchors={"s": (start,)},
                       anchor_shares={"s": (torch.full((4,), 0.5),)})
    full = plain.anchor_loss(batch, [now])
    assert full.item() > 0
    assert halved.anchor_loss(batch, [now]).item() == pytest.approx(0.5 * full.item(), rel=1e-6)
    if target == "vectors":  # per text: only the shared texts' terms are halved
        mixed = Distiller(10, anchor_weight=2.0, anchors={"s": (start,)}, anchor_shares={"s": (torch.tensor([0.5, 1.0, 1.0, 1.0]),)})
        d = (torch.nn.functional.normalize(now, dim=-1) - start).pow(2).sum(-1)
        assert mixed.anchor_loss(batch, [now]).item() == pytest.approx(2.0 * (0.5 * d[0] + d[1:].sum()).item() / 4, rel=1e-5)


def test_once_holds_the_texts_two_tasks_share_once_and_says_so(tmp_path):
    # A sentence-level task on the NER sentences (written out), as entity types derived from NER labels are.
    rows = [{"text": " ".join(words), "label": "loc" if "B-LOC" in tags else "none"} for _ in range(4) for words, tags in NER_WORDS]
    types = tmp_path / "types.jsonl"
    types.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    path = _config_file(tmp_path, ["topic", "ner"])
    data = yaml.safe_load(path.read_text())
    data["tasks"].append({"name": "types", "kind": "classification", "train": str(types)})
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    for mode in ("once", "per_source"):
        cfg = load_config(path, ["training.anchor_weight=1.0", f"training.anchor_shared_texts={mode}"])
        sources, specs = build_sources(cfg)
        model = build_model(cfg, specs, "cpu")
        said: list[str] = []
        distiller = build_distiller(cfg, sources, specs, model, total_steps=10, say=said.append)
        if mode == "once":
            assert set(distiller.anchor_shares) == {"ner", "types"}
            assert all(bool((w == 0.5).all()) for sides in distiller.anchor_shares.values() for w in sides)
            assert "anchor weight 1, 4 texts that several sources share held once" in said[0]
        else:
            assert distiller.anchor_shares == {} and "share" not in said[0]


# -- end to end ---------------------------------------------------------------------------------
def test_joint_run_with_teachers_and_anchor_trains_and_saves_no_teacher_state(teachers, tmp_path):
    root = teachers
    rel = os.path.relpath(root / "teachers", root)  # relative to the config's folder, like init_from
    cfg = _run_config(root, f"training.distill_teachers={{topic: {rel}/topic, ner: {rel}/ner, sts: {rel}/sts}}",
                      "training.anchor_weight=0.5", "training.keep_checkpoints=true", epochs=2)
    said: list[str] = []
    result = train(cfg, tmp_path / "joint", progress=False, log=said.append)
    assert result.global_step == 32 and set(result.dev) == {"topic", "ner", "sts"}
    assert any(m.startswith("distillation: teachers for topic, ner, sts (lambda 1 -> 0); anchor weight 0.5") for m in said)
    curves = (tmp_path / "joint" / "training" / "curves.csv").read_text().splitlines()
    anchors = [float(r.split(",")[4]) for r in curves if r.startswith("anchor,")]
    assert anchors and all(a >= 0 for a in anchors) and max(anchors) > 0
    # The saved model is the student alone: the same tensors as a model built from the config.
    saved = load(tmp_path / "joint")
    assert set(saved.tasks) == {"topic", "ner", "sts"}
    fresh = build_model(cfg, saved.tasks, "cpu")
    assert set(saved.state_dict()) == set(fresh.state_dict())
    assert sorted(p.name for p in (tmp_path / "joint" / "heads").iterdir()) == ["ner.safetensors", "sts.safetensors", "topic.safetensors"]
    ckpt = tmp_path / "joint" / "checkpoints" / (tmp_path / "joint" / "checkpoints" / "latest").read_text().strip()
    keys = {k for f in ckpt.rglob("*.safetensors") for k in load_file(str(f))}
    assert not any("teacher" in k for k in keys)
    assert json.loads((ckpt / "run.json").read_text())["teachers"].keys() == {"topic", "ner", "sts"}


def test_the_anchor_keeps_the_encoder_closer_to_where_it_started(tmp_path):
    def drift(anchor_weight: float) -> float:
        cfg = _run_config(tmp_path, f"training.anchor_weight={anchor_weight}", epochs=1)
        out = train(cfg, tmp_path / f"a{anchor_weight}", progress=False).output_dir
        sources, specs = build_sources(cfg)
        start = build_model(cfg, specs, "cpu")
        texts = [e.text for e in sources[0].splits["train"]]
        return float(((load(out).encode(texts) - start.encode(texts)) ** 2).sum(-1).mean())

    assert drift(50.0) < 0.5 * drift(0.0)


# -- errors, before any training ------------------------------------------------------------------
def _error(cfg, out: Path) -> str:
    with pytest.raises(PolyheadError) as err:
        train(cfg, out, progress=False)
    message = str(err.value)
    assert "\n" not in message
    assert not (out / "polyhead.json").exists() and not (out / "checkpoints").exists()  # nothing was trained
    return message


def test_bad_teachers_are_one_line_errors_before_training(teachers, tmp_path):
    root = teachers
    t = root / "teachers"
    message = _error(_run_config(root, f"training.distill_teachers={{topic: {tmp_path / 'nowhere'}}}"), tmp_path / "o1")
    assert "training.distill_teachers.topic" in message and "not a polyhead model folder" in message
    message = _error(_run_config(root, f"training.distill_teachers={{ner: {t / 'topic'}}}"), tmp_path / "o2")
    assert str(t / "topic") in message and "has no task 'ner' (it has topic)" in message
    message = _error(_run_config(root, f"training.distill_teachers={{nope: {t / 'topic'}}}"), tmp_path / "o3")
    assert "unknown task 'nope'" in message
    # Same task, other label order (logit i would mean another label); same name, another kind.
    other = MultiTaskModel(make_tiny_encoder(), [TaskSpec("topic", "classification", ["tech", "sports"]), TaskSpec("ner", "similarity")])
    other.save(tmp_path / "other")
    message = _error(_run_config(root, f"training.distill_teachers={{topic: {tmp_path / 'other'}}}"), tmp_path / "o4")
    assert str(tmp_path / "other") in message and "labels for 'topic' are [tech, sports], this run's [sports, tech]" in message
    message = _error(_run_config(root, f"training.distill_teachers={{ner: {tmp_path / 'other'}}}"), tmp_path / "o5")
    assert "the teacher's task 'ner' is similarity, this run's is token" in message


def test_a_teacher_with_another_vocabulary_is_refused(tmp_path):
    teacher = MultiTaskModel(make_tiny_encoder(), [TaskSpec("topic", "classification", ["sports", "tech"])])
    tokenizer = copy.deepcopy(teacher.tokenizer)
    check_teacher(teacher, "topic", teacher.tasks["topic"], tokenizer, 32, "where")  # the same: accepted
    tokenizer.add_tokens(["zzqxj"])
    with pytest.raises(PolyheadError, match=r"^where: the teacher's tokenizer vocabulary differs .*1 differ\)$"):
        check_teacher(teacher, "topic", teacher.tasks["topic"], tokenizer, 32, "where")
    with pytest.raises(PolyheadError, match="at most 128 positions, this run's max_length is 256"):
        check_teacher(teacher, "topic", teacher.tasks["topic"], teacher.tokenizer, 256, "where")


def test_distillation_with_a_frozen_encoder_is_refused(tmp_path):
    for overrides in (["freeze.encoder=true", "training.anchor_weight=0.1"], ["freeze.all=true", "training.distill_teachers={topic: x}"]):
        message = _error(_run_config(tmp_path, *overrides), tmp_path / "out")
        assert message.startswith("training.distill_teachers and training.anchor_weight apply only when the encoder trains")
    with pytest.raises(PolyheadError, match="training.anchor_weight: expected a number >= 0.0"):
        _run_config(tmp_path, "training.anchor_weight=-1")
    with pytest.raises(PolyheadError, match=r"training.distill_lambda: expected a number in \[0.0, 1.0\]"):
        _run_config(tmp_path, "training.distill_lambda=2")


# -- resume -------------------------------------------------------------------------------------
def _cli(*args: str, kill_at: int | None = None) -> subprocess.CompletedProcess:
    command = [KILL, str(kill_at)] if kill_at is not None else ["-m", "polyhead.cli"]
    return subprocess.run([sys.executable, *command, *args], check=False, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": SRC})


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    out = {f"encoder.{k}": v for k, v in load_file(str(folder / "encoder" / "model.safetensors")).items()}
    for f in (folder / "heads").glob("*.safetensors"):
        out.update({f"{f.stem}.{k}": v for k, v in load_file(str(f)).items()})
    return out


@pytest.mark.slow  # `make test-slow` (and CI) runs it
def test_an_interrupted_distillation_run_resumes_to_the_uninterrupted_result(teachers, tmp_path):
    import shutil

    root = Path(shutil.copytree(teachers, tmp_path / "root"))  # its own teachers: this test retrains one
    config = _config_file(root, epochs=2, checkpoint_every=5, keep_checkpoints=True, anchor_weight=0.5,
                          distill_teachers={t: f"teachers/{t}" for t in ("topic", "ner", "sts")})
    full = _cli("train", str(config), "--output", str(tmp_path / "full"), "--no-progress")
    assert full.returncode == 0, full.stderr[-3000:]
    killed = _cli("train", str(config), "--output", str(tmp_path / "part"), "--no-progress", kill_at=15)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    resumed = _cli("train", str(config), "--output", str(tmp_path / "part"), "--resume", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from step 15" in resumed.stderr and "distillation: teachers" in resumed.stderr
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "part")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # lambda and targets resumed exactly
    # A teacher retrained since the interruption would change the targets: resume refuses it.
    train(load_config(_config_file(root, ["topic"], epochs=1, seed=8)), root / "teachers" / "topic", progress=False, overwrite=True)
    again = _cli("train", str(config), "--output", str(tmp_path / "part"), "--resume", "--no-progress", "--set", "training.epochs=3")
    assert again.returncode == 1 and "run.teachers.topic" in again.stderr, again.stderr[-2000:]


# -- teachers on the other tasks' texts -------------------------------------------------------------
def test_teachers_label_the_other_tasks_texts_at_word_starts(tmp_path):
    cfg, model, distiller, batches = _student_and_distiller(tmp_path, distill_other_texts=2.0)
    # Every classification/token teacher on every source that lacks its labels (both sides of a pair).
    assert set(distiller.others) == {("topic", "ner", 0), ("sts", "ner", 0), ("sts", "ner", 1),
                                     ("ner", "topic", 0), ("sts", "topic", 0), ("sts", "topic", 1)}
    tok = model.encoder.tokenizer
    sources, _ = build_sources(cfg)
    topic = next(s for s in sources if s.name == "topic")
    flat, positions, offsets = distiller.others[("topic", "ner", 0)]
    assert len(offsets) == len(topic.splits["train"]) + 1 and flat.shape == (len(positions), len(model.tasks["ner"].labels))
    for i, ex in enumerate(topic.splits["train"]):
        ids = tok(ex.text, truncation=True, max_length=cfg.encoder.max_length)["input_ids"]
        pos = positions[offsets[i]:offsets[i + 1]].tolist()
        pieces = tok.convert_ids_to_tokens([ids[p] for p in pos])
        assert pos == sorted(pos) and not any(p.startswith("##") or p in tok.all_special_tokens for p in pieces)
        starts = [p for p, t in enumerate(tok.convert_ids_to_tokens(ids)) if t not in tok.all_special_tokens and not t.startswith("##")]
        assert pos == starts  # one position per word, the first of its pieces
    # The student is its own teacher here: the term is the weight times the mean entropy of its softmax.
    model.eval()
    batch = next(b for b in batches if b.get("source") == "topic")
    with torch.no_grad():
        feats = [model.encoder(**batch["inputs"])]
        loss = distiller.other_texts_loss(batch, model.heads, feats)
        logits = model.heads["ner"](feats[0])
    rows = [(b, i) for b, i in enumerate(batch["index"].tolist())]
    picked = torch.cat([logits[b, positions[offsets[i]:offsets[i + 1]].long()] for b, i in rows]).softmax(-1)
    entropy = -(picked * picked.log()).sum(-1).mean()
    assert loss.item() == pytest.approx(2.0 * entropy.item(), rel=1e-4)  # one term: topic's own teacher is not "other"
    assert distiller.last_other is not None
    # A batch whose source no teacher labels as "other" has no term, and logs none (not the last batch's).
    lone = dict(batch, source="nowhere")
    with torch.no_grad():
        assert distiller.other_texts_loss(lone, model.heads, feats) is None
    assert distiller.last_other is None


def test_word_starts_are_the_words_prediction_reads_not_the_tokenizers_own_split():
    """BERT's pre-tokenizer splits "U.S." into four words and "don't" into three; prediction reads a
    token head at one position for each, so distillation on other texts does too."""
    from polyhead.kinds.tagging import first_subtokens, split_words

    tok = make_tiny_encoder().tokenizer
    text = "The U.S. team doesn't play in 北京."
    starts = word_starts(tok, [text, text], 64)
    enc = tok(text, return_offsets_mapping=True)
    pieces = tok.convert_ids_to_tokens(enc["input_ids"])
    assert starts[0] == starts[1] == first_subtokens(enc["offset_mapping"], split_words(text))
    assert [pieces[p] for p in starts[0]] == ["the", "u", "team", "doesn", "play", "in", "北", "京", "."]
    assert len({w for w in enc.word_ids() if w is not None}) > len(starts[0])  # the tokenizer's own split has more
    cut = word_starts(tok, [text], 6)[0]  # [CLS] the u . s [SEP]: the words after are cut off
    assert cut == starts[0][:2]


def test_the_other_texts_term_pulls_the_student_toward_its_teacher_there(teachers, tmp_path):
    root = teachers
    rel = os.path.relpath(root / "teachers", root)

    def gap(weight: float) -> float:
        # (without the refit stage, which would replace the distilled head by one fit on gold labels alone)
        cfg = _run_config(root, f"training.distill_teachers={{ner: {rel}/ner}}", f"training.distill_other_texts={weight}",
                          "training.lr=0.003", "training.refit_heads=false", epochs=2)
        said: list[str] = []
        out = train(cfg, tmp_path / f"w{weight}", progress=False, log=said.append).output_dir
        rows = [r for r in (out / "training" / "curves.csv").read_text().splitlines() if r.startswith("distill-other,")]
        if weight:
            assert any("on the other tasks' texts too, weight" in m for m in said)
            assert rows and all(float(r.split(",")[4]) >= 0 for r in rows)
        else:
            assert not rows
        student, teacher = load(out), load(root / "teachers" / "ner")
        sources, specs = build_sources(cfg)
        texts = [e.text for s in sources if s.name == "topic" for e in s.splits["train"]]
        enc = student.encoder.tokenizer(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
        mask = enc["attention_mask"].bool()
        with torch.no_grad():
            p = student.heads["ner"](student.encoder(**enc)).log_softmax(-1)[mask]
            q = teacher.heads["ner"](teacher.encoder(**enc)).log_softmax(-1)[mask]
        return float((q.exp() * (q - p)).sum(-1).mean())  # KL(teacher || student) on texts with no NER labels

    assert gap(5.0) < 0.5 * gap(0.0)


def test_other_texts_without_teachers_is_refused(tmp_path):
    cfg = _run_config(tmp_path, "training.distill_other_texts=1.0", epochs=1)
    assert "training.distill_other_texts needs training.distill_teachers" in _error(cfg, tmp_path / "out")


def test_other_texts_with_only_a_similarity_teacher_is_refused(teachers, tmp_path):
    rel = os.path.relpath(teachers / "teachers", teachers)
    cfg = _run_config(teachers, f"training.distill_teachers={{sts: {rel}/sts}}", "training.distill_other_texts=1.0", epochs=1)
    assert "applies to teachers of per-text tasks" in _error(cfg, tmp_path / "out")


# -- auto teachers: polyhead train trains the single-task teacher first -----------------------------
def test_an_auto_teacher_is_trained_first_into_the_run_folder_then_teaches(tmp_path):
    cfg = _run_config(tmp_path, "training.distill_teachers={topic: auto}", "training.distill_other_texts=1", epochs=1)
    said: list[str] = []
    result = train(cfg, tmp_path / "run", progress=False, log=said.append)
    teacher = tmp_path / "run" / "teachers" / "topic"
    assert set(load(teacher).tasks) == {"topic"}  # a single-task model of that task
    first = next(i for i, m in enumerate(said) if m.startswith("teacher for topic: training a single-task topic model first"))
    taught = next(i for i, m in enumerate(said) if m.startswith("distillation: teachers for topic (lambda 1 -> 0; on the other tasks' texts too, weight 1)"))
    assert first < taught and set(result.dev) == {"topic", "ner", "sts"}
    assert any(m.startswith("[teacher topic] done in") for m in said)  # its own lines say whose they are
    assert not any("[teacher topic] warning: the sentence embedding" in m for m in said)  # never served
    saved = yaml.safe_load((tmp_path / "run" / "training" / "config.yaml").read_text())["training"]
    assert saved["distill_teachers"] == {"topic": str(teacher.resolve())}
    # Its config: the topic task alone, no teachers, no anchor.
    taught_cfg = yaml.safe_load((teacher / "training" / "config.yaml").read_text())
    assert [t["name"] for t in taught_cfg["tasks"]] == ["topic"]
    assert taught_cfg["training"]["distill_teachers"] == {} and taught_cfg["training"]["anchor_weight"] == 0.0


def test_resume_reuses_a_finished_auto_teacher(tmp_path):
    """A run stopped after its teacher finished (no joint checkpoint yet) continues with --resume from it."""
    from polyhead.training.teachers import teacher_config

    cfg = _run_config(tmp_path, "training.distill_teachers={topic: auto}", epochs=1)
    teacher = tmp_path / "run" / "teachers" / "topic"
    train(teacher_config(cfg, "topic"), teacher, progress=False)
    before = (teacher / "heads" / "topic.safetensors").read_bytes()
    said: list[str] = []
    train(cfg, tmp_path / "run", resume=True, progress=False, log=said.append)
    assert any(m.startswith("teacher for topic: the single-task model already trained in") for m in said)
    assert not any("training a single-task" in m for m in said)
    assert (teacher / "heads" / "topic.safetensors").read_bytes() == before
    assert (tmp_path / "run" / "polyhead.json").is_file()
