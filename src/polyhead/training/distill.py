"""Distillation for the joint loop: single-task teachers (with teacher annealing) and an anchor to
the starting encoder's embedding space. docs/training.md, "Distillation", says when to use which.

Teachers. A teacher is a saved polyhead model trained on one task alone (`training.distill_teachers`:
task -> folder). Before training, each teacher runs once, in eval mode, over that task's training
examples, batched by the same `collate` as training (same tokenizer, same max_length, so the
labelled sub-token positions are the same ones). Kept per example: a classification head's logits;
a token head's logits at the labelled positions only (row-major, the order of `labels != -100`);
a similarity task's normalised pooled vectors of both sides. During training the target mixes the
teacher and the gold label, the teacher's share lambda falling linearly from `distill_lambda` (1) to
0 over the run: "teacher annealing" from Clark et al., 2019, "BAM! Born-Again Multi-Task Networks
for Natural Language Understanding" (ACL). Early on the student copies its teachers; by the end it
learns from gold labels only, so it can outgrow them.

    classification, token: cross-entropy against  lambda * softmax(teacher) + (1 - lambda) * onehot(gold)
    similarity:            (1 - lambda) * gold loss + lambda * distill_weight * mean ||s - t||^2 (both sides)

Anchor. `training.anchor_weight` > 0 holds the shared embedding space in place: for every batch
(text and pair) it adds anchor_weight * mean ||s - o||^2, s the student's normalised pooled vector
of each text, o the same text's vector from the encoder the run started from, computed once before
the first update. The term is added to the total after loss weighting (it is no task: weightings
only know task names) and logged as curves.csv rows of type "anchor". With
`training.anchor_shared_texts: once`, a text that k training sources share (the same sentences
labelled for two tasks in two files) weighs 1/k in each source's term, so every distinct text is
held as much as a text that one source has.

Other tasks' texts. With `training.distill_other_texts` w > 0, a classification or token teacher
also runs over every *other* training source's texts (both sides of a pair), where its task has no
gold label, and the student's head learns w * cross-entropy against the teacher's softmax there,
constant over the run (no gold to hand over to). A token teacher's targets sit at the first
sub-token of each word, as the tokenizer splits words. This carries the teacher's behaviour on
text it was not trained on (e.g. names in movie reviews and news headlines, for an NER teacher)
into the shared encoder; the term is added after loss weighting, like the anchor, and logged
(unweighted) as curves.csv rows of type "distill-other".

Targets are a pure function of the config, the data and the teacher folders, computed in
`build_run` before a checkpoint is restored: a resumed run recomputes the same ones from the same
starting encoder (the configured encoder, or init_from's), never from the half-trained model.
Lambda is a function of the optimiser step, so it also resumes where it was. Teachers are freed
once their targets are cached; nothing of them is trained, checkpointed or saved.
"""
from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from ..errors import PolyheadError
from ..modeling.encoder import autocast_context, resolve_precision
from ..kinds import kind_of
from ..kinds.classification import soft_cross_entropy
from ..kinds.tagging import first_subtokens, split_words
from ..modeling.model import CONFIG_FILE, MultiTaskModel, load
from ..modeling.tasks import TaskSpec
from .config import RunConfig
from .anchor import anchor_shares
from .data import Source, collated_batches
from .evaluation import to_device

__all__ = ["Distiller", "build_distiller", "check_config", "check_teacher", "mean_sq_distance", "soft_cross_entropy",
           "teacher_weight"]

CACHE_DTYPE = torch.float16  # cached embeddings (logits stay float32: they are few)


# -- the math -----------------------------------------------------------------------------------
def teacher_weight(step: int, total_steps: int, start: float = 1.0, anneal: bool = True) -> float:
    """Lambda, the teacher's share of the target at optimiser step `step`: start -> 0 linearly, or constant."""
    if not anneal:
        return float(start)
    return float(start) * max(0.0, 1.0 - step / max(1, total_steps))


def mean_sq_distance(x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over rows of the squared L2 distance between paired rows (2 - 2 cos for unit vectors),
    each row's distance times its weight where weights are given."""
    d = (x.float() - y.float()).pow(2).sum(-1)
    return (d if weights is None else d * weights.to(d.device)).mean()


def similarity_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the pairwise cosines of x's rows and those of y's (unit rows),
    over distinct pairs: 0 whenever x is y turned by any rotation."""
    n = len(x)
    if n < 2:
        return x.sum() * 0.0
    off = ~torch.eye(n, dtype=torch.bool, device=x.device)
    return (x @ x.T - y @ y.T)[off].pow(2).mean()


# -- checks -------------------------------------------------------------------------------------
# A teacher folder that `polyhead benchmark` fills in: its single-task model of the task, same seed.
SINGLE_TEACHER = "{single}"
# A teacher `polyhead train` trains itself first (training/teachers.py).
AUTO_TEACHER = "auto"


def enabled(cfg: RunConfig) -> bool:
    """Whether the run distils from teachers or anchors the encoder."""
    return bool(cfg.training.distill_teachers) or cfg.anchor_weight > 0


def check_config(cfg: RunConfig) -> None:
    """Before any work: no frozen encoder, teachers only for known tasks, each a model folder."""
    tr = cfg.training
    if tr.distill_other_texts and not tr.distill_teachers:
        raise PolyheadError("training.distill_other_texts needs training.distill_teachers: it is the teachers' term on the other tasks' texts")
    if not enabled(cfg):
        return
    if cfg.freeze.encoder or cfg.freeze.all:
        raise PolyheadError(
            "training.distill_teachers and training.anchor_weight apply only when the encoder trains; "
            "drop them or freeze.encoder/freeze.all"
        )
    names = [t.name for t in cfg.tasks]
    for task, folder in tr.distill_teachers.items():
        if task not in names:
            raise PolyheadError(f"training.distill_teachers names unknown task {task!r}; tasks are {', '.join(names)}")
        if folder == AUTO_TEACHER:
            continue  # train() trains it first (teachers.py)
        if folder == SINGLE_TEACHER:
            raise PolyheadError(
                f"training.distill_teachers.{task} is {SINGLE_TEACHER}, which only polyhead benchmark fills in (with its "
                f"single-task {task} model of the same seed); to train this config directly give a trained model folder "
                f"(--set training.distill_teachers.{task}=PATH) or train without teachers "
                "(--set 'training.distill_teachers={}' --set training.distill_other_texts=0)")
        path = cfg.resolve(folder)
        if path is None or not (path / CONFIG_FILE).is_file():
            raise PolyheadError(f"training.distill_teachers.{task}: {path} is not a polyhead model folder (no {CONFIG_FILE})")
    kinds = {t.name: kind_of(t.kind) for t in cfg.tasks}
    if tr.distill_other_texts and not any(kinds[t].per_text for t in tr.distill_teachers):
        raise PolyheadError("training.distill_other_texts applies to teachers of per-text tasks (classification, token, ...); "
                            f"this run's teachers ({', '.join(tr.distill_teachers)}) all score pairs of texts")


def _short(values: list[str]) -> str:
    text = ", ".join(map(str, values))
    return f"[{text if len(text) <= 80 else text[:77] + '...'}]"


def check_teacher(teacher: MultiTaskModel, task: str, spec: TaskSpec, tokenizer: Any, max_length: int, where: str) -> None:
    """A one-line PolyheadError naming `where` unless `teacher` can teach this run's `task`."""
    if task not in teacher.tasks:
        raise PolyheadError(f"{where}: the teacher has no task {task!r} (it has {', '.join(teacher.tasks) or 'none'})")
    mine = teacher.tasks[task]
    if mine.kind != spec.kind:
        raise PolyheadError(f"{where}: the teacher's task {task!r} is {mine.kind}, this run's is {spec.kind}")
    if kind_of(spec.kind).has_labels and list(mine.labels) != list(spec.labels):
        raise PolyheadError(f"{where}: the teacher's labels for {task!r} are {_short(mine.labels)}, this run's {_short(spec.labels)} "
                            "(same labels in the same order needed)")
    theirs, ours = teacher.tokenizer.get_vocab(), tokenizer.get_vocab()
    if theirs != ours:
        differ = sum(1 for k, v in ours.items() if theirs.get(k) != v) + sum(1 for k in theirs if k not in ours)
        raise PolyheadError(f"{where}: the teacher's tokenizer vocabulary differs from this run's encoder's "
                            f"({len(theirs)} vs {len(ours)} entries, {differ} differ)")
    positions = getattr(teacher.encoder.backbone.config, "max_position_embeddings", None)
    if positions and max_length > positions:
        raise PolyheadError(f"{where}: the teacher reads at most {positions} positions, this run's max_length is {max_length}")


def fingerprint(folder: Path) -> str:
    """A short hash of a model folder's config and weights: resume refuses a teacher changed since."""
    digest = hashlib.sha256()
    for path in [folder / CONFIG_FILE, *sorted(folder.glob("encoder/*.safetensors")), *sorted(folder.glob("heads/*.safetensors"))]:
        digest.update(str(path.relative_to(folder)).encode())
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


# -- the cached targets and the losses ----------------------------------------------------------
@dataclass
class Distiller:
    """Cached targets, keyed by training source (and task), and the losses that read them.

    Not an nn.Module on purpose: nothing here trains, and nothing here goes into a checkpoint or
    a saved model. `step` is set by the loop before each batch (lambda follows the optimiser step).
    """

    total_steps: int
    start: float = 1.0  # training.distill_lambda
    anneal: bool = True
    weight: float = 1.0  # training.distill_weight
    anchor_weight: float = 0.0
    anchor_target: str = "vectors"  # training.anchor_target
    step: int = 0
    logits: dict[tuple[str, str], torch.Tensor] = field(default_factory=dict)  # (source, task): [N, C]
    tokens: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)  # flat [P, C], offsets [N + 1]
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)  # source: teacher a, b [N, D]
    anchors: dict[str, tuple[torch.Tensor, ...]] = field(default_factory=dict)  # source: (texts,) or (a, b) [N, D]
    # source: per side, each text's share of the anchor [N] (1/k for a text k sources have); only
    # for sources with a shared text, under anchor_shared_texts: once
    anchor_shares: dict[str, tuple[torch.Tensor, ...]] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)  # task: teacher folder hash
    other_weight: float = 0.0  # training.distill_other_texts
    # (source, task, side) -> teacher logits on texts without that task's labels: [N, C] for a
    # classification teacher; (flat [P, C], word-start positions [P], offsets [N + 1]) for a token one.
    others: dict[tuple[str, str, int], Any] = field(default_factory=dict)
    last_anchor: torch.Tensor | None = None  # the last batch's anchor distance (for curves.csv)
    last_other: torch.Tensor | None = None  # the last batch's other-texts cross-entropy, when it had one

    @property
    def lam(self) -> float:
        """The teacher's share of the target at the current step."""
        return teacher_weight(self.step, self.total_steps, self.start, self.anneal)

    def text_loss(self, batch: dict[str, Any], task: str, head: nn.Module, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """A per-text head's loss: its kind's distillation loss where a teacher is cached (soft-target
        cross-entropy for classification and token heads)."""
        key = (batch["source"], task)
        lam = self.lam
        if lam == 0.0 or (key not in self.logits and key not in self.tokens):
            return head.loss(logits, labels)
        mask = head.labelled(labels)
        index = batch["index"].cpu()
        if key in self.logits:
            teacher = self.logits[key][index].to(logits.device)[mask]
        else:
            flat, offsets = self.tokens[key]
            teacher = torch.cat([flat[offsets[i] : offsets[i + 1]] for i in index.tolist()]).to(logits.device)
        student = logits[mask]
        if teacher.shape != student.shape:  # a bug, not a user error: the positions must line up
            raise RuntimeError(f"distillation: cached teacher targets {tuple(teacher.shape)} do not match {tuple(student.shape)} "
                               f"labelled positions of {key}")
        return kind_of(head.kind).distill_loss(student, teacher, labels[mask], lam)

    def pair_loss(self, batch: dict[str, Any], head: nn.Module, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """A similarity head's loss: (1 - lambda) gold + lambda * weight * MSE to the teacher's vectors."""
        gold = head.loss(a, b, batch["labels"][batch["task"]])
        lam = self.lam
        if lam == 0.0 or batch["source"] not in self.pairs:
            return gold
        index = batch["index"].cpu()
        ta, tb = (t[index].to(a.device) for t in self.pairs[batch["source"]])
        distance = (mean_sq_distance(a, ta) + mean_sq_distance(b, tb)) / 2
        return (1.0 - lam) * gold + lam * self.weight * distance

    def other_texts_loss(self, batch: dict[str, Any], heads: Any, features: list[dict[str, torch.Tensor]]) -> torch.Tensor | None:
        """other_weight * mean cross-entropy of the student's heads against teachers' softmax on this
        batch's texts, for every teacher whose task labels none of them (None when there is none)."""
        if not self.other_weight:
            return None
        self.last_other = None  # a batch without the term must not log the previous batch's value
        index = batch["index"].cpu()
        terms = []
        for (source, task, side), cached in self.others.items():
            if source != batch["source"]:
                continue
            out = heads[task](features[side])
            if isinstance(cached, tuple):
                flat, positions, offsets = cached
                rows = [(b, offsets[i], offsets[i + 1]) for b, i in enumerate(index.tolist())]
                row = torch.cat([torch.full((int(hi - lo),), b, dtype=torch.long) for b, lo, hi in rows])
                col = torch.cat([positions[lo:hi] for _, lo, hi in rows]).long()
                teacher = torch.cat([flat[lo:hi] for _, lo, hi in rows]).to(out.device)
                student = out[row.to(out.device), col.to(out.device)]
            else:
                teacher, student = cached[index].to(out.device), out
            if len(student):
                terms.append(kind_of(heads[task].kind).distill_loss(student, teacher, None, 1.0))
        if not terms:
            return None
        term = torch.stack(terms).mean()
        self.last_other = term.detach()
        return self.other_weight * term

    def anchor_loss(self, batch: dict[str, Any], pooled: list[torch.Tensor]) -> torch.Tensor | None:
        """anchor_weight * mean squared distance of the batch's normalised pooled vectors to the starting ones."""
        if not self.anchor_weight:
            return None
        index = batch["index"].cpu()
        sides = self.anchors[batch["source"]]
        now = [nn.functional.normalize(p.float(), dim=-1) for p in pooled]
        then = [t[index].to(p.device) for p, t in zip(pooled, sides)]
        shares = [w[index] for w in self.anchor_shares[batch["source"]]] if batch["source"] in self.anchor_shares else None
        if self.anchor_target == "similarities":
            distance = similarity_distance(torch.cat(now), torch.cat(then))
            if shares is not None:  # a pair of texts weighs the mean of their shares, on average
                distance = distance * torch.cat(shares).mean().to(distance.device)
        else:
            distance = sum(mean_sq_distance(s, t, None if shares is None else shares[i])
                           for i, (s, t) in enumerate(zip(now, then))) / len(sides)
        self.last_anchor = distance.detach()
        return self.anchor_weight * distance


# -- computing the targets ----------------------------------------------------------------------
def build_distiller(cfg: RunConfig, sources: list[Source], specs: dict[str, TaskSpec], model: MultiTaskModel,
                    total_steps: int, say: Callable[[str], None]) -> Distiller | None:
    """Check every teacher, then cache teacher and anchor targets (None when the run uses neither).

    `model` must be the student as built, before any update or restored checkpoint: the anchor is
    its encoder. Each process computes every target (they are small next to training).
    """
    if not enabled(cfg):
        return None
    tr = cfg.training
    started = time.time()
    device = model.device
    precision = resolve_precision(tr.precision, device)
    tokenizer, max_length = model.encoder.tokenizer, model.encoder.max_length
    distiller = Distiller(total_steps, tr.distill_lambda, tr.distill_anneal, tr.distill_weight, cfg.anchor_weight,
                          anchor_target=tr.anchor_target, other_weight=tr.distill_other_texts)
    folders: dict[Path, list[str]] = {}
    for task, folder in tr.distill_teachers.items():
        folders.setdefault(cfg.resolve(folder), []).append(task)  # type: ignore[arg-type]
    teachers: dict[Path, MultiTaskModel] = {}
    with torch.random.fork_rng(devices=[]):  # loading builds heads from random weights first: keep training's RNG stream
        for folder, tasks in folders.items():
            try:
                teachers[folder] = load(folder, device=device)
            except PolyheadError as exc:
                raise PolyheadError(f"training.distill_teachers.{tasks[0]}: {exc}") from None
            for task in tasks:
                where = f"training.distill_teachers.{task} ({folder})"
                check_teacher(teachers[folder], task, specs[task], tokenizer, max_length, where)
                distiller.fingerprints[task] = fingerprint(folder)
    texts = 0
    for folder, teacher in list(teachers.items()):
        for src in sources:
            mine = [t for t in src.tasks if t in folders[folder]]
            if mine:
                _teacher_targets(distiller, teacher, src, mine, specs, tokenizer, max_length, tr.eval_batch_size, precision)
                texts += len(src.splits["train"]) * (2 if src.pairs else 1)
            other = [t for t in folders[folder] if t not in src.tasks and kind_of(specs[t].kind).per_text]
            if other and tr.distill_other_texts:
                _other_text_targets(distiller, teacher, src, other, specs, tokenizer, max_length, tr.eval_batch_size, precision)
                texts += len(src.splits["train"]) * (2 if src.pairs else 1)
        del teachers[folder], teacher
    if cfg.anchor_weight:
        for src in sources:
            distiller.anchors[src.name] = _anchor_targets(model, src, specs, tokenizer, max_length, tr.eval_batch_size, precision)
            texts += len(src.splits["train"]) * (2 if src.pairs else 1)
        shared, n_shared = anchor_shares(sources) if tr.anchor_shared_texts == "once" else ({}, 0)
        distiller.anchor_shares.update(shared)
    schedule = f"lambda {tr.distill_lambda:g}{' -> 0' if tr.distill_anneal else ', constant'}"
    if tr.distill_other_texts:
        schedule += f"; on the other tasks' texts too, weight {tr.distill_other_texts:g}"
    parts = [f"teachers for {', '.join(tr.distill_teachers)} ({schedule})"] if tr.distill_teachers else []
    if cfg.anchor_weight:
        anchor = f"anchor weight {cfg.anchor_weight:g}" + (" on similarities" if tr.anchor_target == "similarities" else "")
        if n_shared:
            anchor += f", {n_shared:,} text{'s' if n_shared > 1 else ''} that several sources share held once"
        parts.append(anchor)
    say(f"distillation: {'; '.join(parts)}; targets for {texts:,} texts cached in {time.time() - started:.1f}s")
    return distiller


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.train(mode)


def _batches(src: Source, specs: dict[str, TaskSpec], tokenizer: Any, max_length: int, batch_size: int,
             device: torch.device) -> Iterator[tuple[list[int], dict[str, Any]]]:
    """The training examples of `src`, longest first (less padding), collated exactly as training does."""
    for idx, _, batch in collated_batches(src, "train", specs, tokenizer, max_length, batch_size):
        yield idx, to_device(batch, device)


@torch.inference_mode()
def _teacher_targets(distiller: Distiller, teacher: MultiTaskModel, src: Source, tasks: list[str], specs: dict[str, TaskSpec],
                     tokenizer: Any, max_length: int, batch_size: int, precision: str) -> None:
    n = len(src.splits["train"])
    device = teacher.device
    with _eval_mode(teacher), autocast_context(precision, device):
        if src.pairs:
            task = src.tasks[0]
            head = teacher.heads[task]
            a = torch.empty(n, teacher.encoder.dim, dtype=CACHE_DTYPE)
            b = torch.empty_like(a)
            for idx, batch in _batches(src, specs, tokenizer, max_length, batch_size, device):
                a[idx] = head(teacher.encoder(**batch["a"])).float().cpu().to(CACHE_DTYPE)
                b[idx] = head(teacher.encoder(**batch["b"])).float().cpu().to(CACHE_DTYPE)
            distiller.pairs[src.name] = (a, b)
            return
        logits: dict[str, torch.Tensor] = {}
        rows: dict[str, list[torch.Tensor | None]] = {t: [None] * n for t in tasks if kind_of(specs[t].kind).token_level}
        for t in tasks:
            if t not in rows:  # one row of outputs per text
                logits[t] = torch.empty(n, specs[t].num_labels, dtype=torch.float32)
        for idx, batch in _batches(src, specs, tokenizer, max_length, batch_size, device):
            feats = teacher.encoder(**batch["inputs"])
            for t in tasks:
                out = teacher.heads[t](feats).float().cpu()
                if t in logits:
                    logits[t][idx] = out
                    continue
                labelled = teacher.heads[t].labelled(batch["labels"][t]).cpu()
                for row, i in enumerate(idx):
                    rows[t][i] = out[row][labelled[row]]
    for t, table in logits.items():
        distiller.logits[(src.name, t)] = table
    for t, per_example in rows.items():
        sizes = torch.tensor([0] + [len(r) for r in per_example])  # type: ignore[arg-type]
        distiller.tokens[(src.name, t)] = (torch.cat(per_example), torch.cumsum(sizes, 0))  # type: ignore[arg-type]


def word_starts(tokenizer: Any, texts: list[str], limit: int) -> list[list[int]]:
    """Each text's first sub-token position of every word, after truncation to `limit` tokens:
    where a token head is read on text that has no word labels. Words are split as prediction
    splits raw text (`split_words`), not by the tokenizer's own pre-tokenizer, so the positions
    are the ones the head is read at when predicting, whatever the tokenizer family. Words with
    no sub-token of their own (cut off, or inside a piece begun by the word before) have none."""
    enc = tokenizer(texts, truncation=True, max_length=limit, return_offsets_mapping=True)
    return [[t for t in first_subtokens([tuple(o) for o in offsets], split_words(text)) if t >= 0]
            for text, offsets in zip(texts, enc["offset_mapping"])]


@torch.inference_mode()
def _other_text_targets(distiller: Distiller, teacher: MultiTaskModel, src: Source, tasks: list[str], specs: dict[str, TaskSpec],
                        tokenizer: Any, max_length: int, batch_size: int, precision: str) -> None:
    """Teacher logits for `tasks` on `src`'s training texts, which carry no labels for them."""
    n = len(src.splits["train"])
    device = teacher.device
    keys = ("a", "b") if src.pairs else ("inputs",)
    limit = src.max_length or max_length
    tables: dict[tuple[str, int], Any] = {}
    for t in tasks:
        for side in range(len(keys)):
            tables[(t, side)] = (torch.empty(n, specs[t].num_labels, dtype=torch.float32) if not kind_of(specs[t].kind).token_level
                                 else [None] * n)
    with _eval_mode(teacher), autocast_context(precision, device):
        for idx, chunk, batch in collated_batches(src, "train", specs, tokenizer, max_length, batch_size):
            batch = to_device(batch, device)
            for side, key in enumerate(keys):
                feats = teacher.encoder(**batch[key])
                starts = None
                for t in tasks:
                    out = teacher.heads[t](feats).float().cpu()
                    table = tables[(t, side)]
                    if isinstance(table, torch.Tensor):
                        table[idx] = out
                        continue
                    if starts is None:
                        texts = [e.pair[side] if src.pairs else e.text for e in chunk]
                        starts = word_starts(tokenizer, texts, limit)
                    for row, i in enumerate(idx):
                        pos = torch.tensor(starts[row], dtype=torch.long)
                        table[i] = (out[row][pos], pos)
    for (t, side), table in tables.items():
        if isinstance(table, torch.Tensor):
            distiller.others[(src.name, t, side)] = table
            continue
        sizes = torch.tensor([0] + [len(p) for _, p in table])
        flat = torch.cat([x for x, _ in table]) if n else torch.empty(0, specs[t].num_labels)
        positions = torch.cat([p for _, p in table]).to(torch.int32) if n else torch.empty(0, dtype=torch.int32)
        distiller.others[(src.name, t, side)] = (flat, positions, torch.cumsum(sizes, 0))


@torch.inference_mode()
def _anchor_targets(model: MultiTaskModel, src: Source, specs: dict[str, TaskSpec], tokenizer: Any, max_length: int,
                    batch_size: int, precision: str) -> tuple[torch.Tensor, ...]:
    n = len(src.splits["train"])
    device = model.device
    keys = ("a", "b") if src.pairs else ("inputs",)
    out = tuple(torch.empty(n, model.encoder.dim, dtype=CACHE_DTYPE) for _ in keys)
    with _eval_mode(model), autocast_context(precision, device):
        for idx, batch in _batches(src, specs, tokenizer, max_length, batch_size, device):
            for side, key in zip(out, keys):
                pooled = model.encoder(**batch[key])["pooled"].float()
                side[idx] = nn.functional.normalize(pooled, dim=-1).cpu().to(CACHE_DTYPE)
    return out
