"""The model card: a README.md in every model folder, in the Hugging Face model-card format.

`MultiTaskModel.save()`, `polyhead train` (each time it writes training/metrics.json, so also
after a frozen-encoder run) and `polyhead add-head` write the card with `write_card(folder)`.
`render_card(folder)` is a pure function of the folder's files, so a card can always be
re-rendered (`polyhead info MODEL_DIR --card` prints it, rendering it when the folder has none):

- polyhead.json: the encoder (name, dimension, pooling) and every task with its labels;
- training/metrics.json (when `polyhead train` made the folder): the dev and test scores;
- training/config.yaml: the data file names (names only, never their local paths), epochs, lr,
  freezing, the head solver; training/curves.csv: which solver fitted frozen heads.

The card opens with YAML front matter (`library_name: polyhead`, `base_model` when the encoder
is a Hub model id, `pipeline_tag: sentence-similarity`, tags from the head kinds, and a
`model-index` with the headline dev/test metric of each task), then says what the tasks and
labels are, what the model was trained on and how, its scores, and how to load, predict with,
serve and export it. It sets no `license`: the weights inherit terms from the base model and
from the training data, which polyhead cannot know; the card says so, and asks the publisher
to add one.

Never lose work: every card polyhead writes holds `MARKER`. README.md is written only when it
is missing or holds the marker. A README.md of the user's own (no marker; deleting the marker
line from a card makes it the user's) is left as it is and the card goes to MODEL_CARD.md
instead (again only when that is missing or polyhead's), with one line on stderr saying so.
Loading a model never reads either file.
"""
from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from ..console import say
from ..errors import PolyheadError
from ..io import read_json, write_text_atomic
from ..kinds import KINDS, Kind, canonical

CARD_FILE = "README.md"
FALLBACK_CARD_FILE = "MODEL_CARD.md"
MARKER_PREFIX = "<!-- polyhead model card:"
MARKER = f"{MARKER_PREFIX} rewritten on save; delete this line to keep your own edits -->"
TRAINING_DIR = "training"  # as written by polyhead.training (read here as files, never imported)

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TOLD: set[str] = set()


# -- reading the folder -------------------------------------------------------------------------
def _optional(path: Path, parse: Any) -> tuple[Any, str | None]:
    """(parsed content, None), (None, None) when the file is missing, (None, why) when unreadable."""
    if not path.is_file():
        return None, None
    try:
        return parse(path.read_text(encoding="utf-8")), None
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        return None, f"{path.parent.name}/{path.name} could not be read ({type(exc).__name__})"


def _solvers(text: str) -> dict[str, str]:
    """task -> the head solver named in curves.csv (frozen-encoder runs only write that column)."""
    out: dict[str, str] = {}
    for row in csv.DictReader(text.splitlines()):
        if row.get("solver") and row.get("task"):
            out[row["task"]] = row["solver"]
    return out


def read_folder(folder: str | os.PathLike) -> dict[str, Any]:
    """Everything a card is made from: polyhead.json, and the training files when present."""
    folder = Path(folder)
    model = read_json(folder / "polyhead.json")
    training = folder / TRAINING_DIR
    metrics, bad_metrics = _optional(training / "metrics.json", json.loads)
    config, bad_config = _optional(training / "config.yaml", yaml.safe_load)
    solvers, _ = _optional(training / "curves.csv", _solvers)
    return {
        "name": folder.resolve().name,
        "model": model,
        "metrics": metrics if isinstance(metrics, dict) else None,
        "config": config if isinstance(config, dict) else None,
        "solvers": solvers or {},
        "problems": [p for p in (bad_metrics, bad_config) if p],
    }


# -- small pieces -------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _score(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "–"


def _file_name(path: Any) -> str | None:
    """A data file's name without its local folders (a card is made to be shared)."""
    return Path(str(path)).name if path else None


def _tasks(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in data["model"].get("tasks", []) if isinstance(t, dict) and "name" in t and "kind" in t]


def hub_base_model(name: Any) -> str | None:
    """The encoder's name when it is a Hub model id (owner/name), else None (a local folder)."""
    if not isinstance(name, str) or not _HUB_ID.match(name) or name.startswith(".") or Path(name).exists():
        return None
    return name


def _split_metrics(data: dict[str, Any], split: str) -> dict[str, dict[str, float]]:
    metrics = (data["metrics"] or {}).get(split)
    return {t: m for t, m in metrics.items() if isinstance(m, dict)} if isinstance(metrics, dict) else {}


def _headline(data: dict[str, Any], task: dict[str, Any]) -> str:
    named = (data["metrics"] or {}).get("headline_metrics") or {}
    kind = _kind(task)
    return str(named.get(task["name"]) or (kind.metric if kind else ""))


def _kind(task: dict[str, Any]) -> type[Kind] | None:
    """The kind of a saved task entry (None for a kind this version does not know)."""
    return KINDS.get(canonical(task.get("kind", "")))


def _hub_task(task: dict[str, Any]) -> str:
    kind = _kind(task)
    return kind.hub_task if kind else str(task.get("kind"))


def _data_files(config: dict[str, Any] | None) -> dict[str, dict[str, str]]:
    """task -> {split: file name} from a training config (a task's own files, or the datasets that label it)."""
    out: dict[str, dict[str, str]] = {}
    if not config:
        return out
    for t in config.get("tasks") or []:
        if isinstance(t, dict) and t.get("name"):
            files = {s: _file_name(t.get(s)) for s in ("train", "dev", "test")}
            out[str(t["name"])] = {s: f for s, f in files.items() if f}
    for ds in config.get("datasets") or []:
        if not isinstance(ds, dict):
            continue
        for task in ds.get("labels") or {}:
            entry = out.setdefault(str(task), {})
            for split in ("train", "dev", "test"):
                name = _file_name(ds.get(split))
                if name:
                    entry[split] = ", ".join(x for x in (entry.get(split), name) if x)
    return out


def retention_line(retention: dict[str, Any]) -> str:
    """How far training moved the sentence embedding, in one line (training/retention.py measures it):
    `cosine 0.962, rank agreement 0.941, 10-NN overlap 0.78 (500 dev texts)` (+ similarity tasks)."""
    if retention.get("encoder_frozen"):
        return "unchanged (the encoder was frozen)"
    line = (f"cosine {retention['cosine']:.3f}, rank agreement {retention['rank_agreement']:.3f}, "
            f"10-NN overlap {retention['neighbours']:.2f} ({retention['texts']} {retention.get('split', 'dev')} texts)")
    for task, s in (retention.get("similarity") or {}).items():
        line += f"; {task} Spearman {s['before']:.3f} -> {s['after']:.3f}"
    return line


def _retention(data: dict[str, Any]) -> dict[str, Any] | None:
    value = (data["metrics"] or {}).get("retention")
    return value if isinstance(value, dict) and value else None


# -- the YAML header ----------------------------------------------------------------------------
def front_matter(data: dict[str, Any]) -> dict[str, Any]:
    """The Hugging Face model-card metadata."""
    tasks = _tasks(data)
    hub_tasks = list(dict.fromkeys(_hub_task(t) for t in tasks))
    header: dict[str, Any] = {"library_name": "polyhead"}
    base = hub_base_model((data["model"].get("encoder") or {}).get("name_or_path"))
    if base:
        header["base_model"] = base
    header["pipeline_tag"] = "sentence-similarity"
    header["tags"] = ["polyhead", "multi-task", "sentence-embeddings"] + [
        h for h in hub_tasks if h != header["pipeline_tag"]
    ]
    files = _data_files(data["config"])
    results = []
    for task in tasks:
        metric = _headline(data, task)
        for split in ("dev", "test"):
            value = _split_metrics(data, split).get(task["name"], {}).get(metric)
            if not isinstance(value, (int, float)):
                continue
            dataset = files.get(task["name"], {}).get(split) or task["name"]
            results.append({
                "task": {"type": _hub_task(task), "name": task["name"]},
                "dataset": {"type": dataset, "name": dataset, "split": split},
                "metrics": [{"type": metric, "value": round(float(value), 4), "name": f"{split} {metric}"}],
            })
    if results:
        header["metrics"] = sorted({r["metrics"][0]["type"] for r in results})
        header["model-index"] = [{"name": data["name"], "results": results}]
    retention = _retention(data)
    if retention is not None:  # how far the served embedding moved from the base encoder's
        header["embedding_retention"] = {k: v for k, v in retention.items() if k != "split"}
    return header


# -- the body -----------------------------------------------------------------------------------
def _labels(task: dict[str, Any]) -> str:
    kind = _kind(task)
    text = kind.describe_labels(task) if kind else ", ".join(str(x) for x in task.get("labels") or []) or "–"
    return text + (f" (inputs prefixed with the prompt `{task['prompt']}`)" if task.get("prompt") else "")


def _encoder_lines(data: dict[str, Any]) -> list[str]:
    enc = data["model"].get("encoder") or {}
    name = enc.get("name_or_path")
    base = hub_base_model(name)
    where = f"[{base}](https://huggingface.co/{base})" if base else f"a local encoder folder (`{_file_name(name)}`)"
    norm = "normalised" if enc.get("normalize") else "not normalised"
    return [
        f"- base encoder: {where}; its weights here are in `encoder/`",
        (f"- {enc.get('dim', '?')}-dimensional sentence embeddings, {enc.get('pooling', '?')} pooling, {norm}, "
         f"at most {enc.get('max_length', '?')} tokens per text"),
    ]


def _training_lines(data: dict[str, Any]) -> list[str]:
    cfg, metrics = data["config"] or {}, data["metrics"] or {}
    if not cfg and not metrics:
        return [("Not trained by `polyhead train` (the folder has no training/ record): the heads are as "
                 "they were saved from Python or `polyhead new`, possibly untrained.")]
    tr = cfg.get("training") or {}
    fr = cfg.get("freeze") or {}
    lines = []
    if tr:
        how = [f"{tr.get('epochs')} epoch(s)" + (f" (at most {tr['max_steps']} steps)" if tr.get("max_steps") else ""),
               f"batch size {tr.get('batch_size')}", f"learning rate {tr.get('lr')}"]
        if tr.get("head_lr"):
            how.append(f"head learning rate {tr['head_lr']}")
        how += [f"{tr.get('scheduler')} schedule", f"{tr.get('precision')} precision", f"seed {tr.get('seed')}",
                f"task sampling {tr.get('sampling')}", f"loss weighting {tr.get('weighting')}"]
        lines.append("- `polyhead train`: " + ", ".join(str(x) for x in how))
    frozen = []
    if fr.get("all"):
        frozen.append("everything but the trainable heads")
    elif fr.get("encoder"):
        frozen.append("the whole encoder")
    else:
        if fr.get("embeddings"):
            frozen.append("the embeddings")
        if fr.get("layers"):
            frozen.append(f"the lowest {fr['layers']} layer(s)")
    if fr.get("heads"):
        frozen.append(f"heads {', '.join(map(str, fr['heads']))}")
    if fr.get("gradual_unfreezing"):
        frozen.append(f"gradual unfreezing every {fr['gradual_unfreezing']} {fr.get('gradual_unit', 'epoch')}(s)")
    if frozen or fr:
        lines.append(f"- frozen: {'; '.join(frozen) or 'nothing (the encoder was fine-tuned with the heads)'}")
    if data["solvers"]:
        used = ", ".join(f"{t} {s}" for t, s in data["solvers"].items())
        l2 = tr.get("head_l2")
        lines.append(f"- heads fit on cached encoder features (head_solver {tr.get('head_solver', 'auto')}: {used}"
                     f"{'' if l2 is None else f'; l2 {l2}'})")
    if metrics:
        facts = []
        if metrics.get("global_step"):
            facts.append(f"best dev score at step {metrics.get('best_step')} of {metrics['global_step']}")
        if metrics.get("stopped_early"):
            facts.append("stopped early")
        if isinstance(metrics.get("seconds"), (int, float)):
            facts.append(f"{metrics['seconds']:.0f} s")
        if isinstance(metrics.get("trainable_params"), int):
            facts.append(f"{metrics['trainable_params']:,} trainable parameters")
        if facts:
            lines.append("- " + ", ".join(facts))
    retention = _retention(data)
    if retention is not None:
        anchor = retention.get("anchor_weight")
        held = f"; anchor weight {anchor:g}" if isinstance(anchor, (int, float)) and not retention.get("encoder_frozen") else ""
        lines.append(f"- the sentence embedding against the base encoder's: {retention_line(retention)}{held}")
    lines.append("- the full record is in `training/` (metrics.json, curves.csv, config.yaml)")
    return lines


def _data_section(data: dict[str, Any]) -> list[str]:
    if not data["config"]:
        return []
    files = _data_files(data["config"])
    rows = ["| task | train | dev | test |", "|---|---|---|---|"]
    for task in _tasks(data):
        f = files.get(task["name"])
        if f is None:
            rows.append(f"| {task['name']} | not in this training run (added later, e.g. by `polyhead add-head`) | | |")
            continue
        rows.append(f"| {task['name']} | " + " | ".join(_cell(f.get(s, "–")) for s in ("train", "dev", "test")) + " |")
    return ["## Training data", "", "File names from `training/config.yaml`:", "", *rows, ""]


def _scores_section(data: dict[str, Any]) -> list[str]:
    dev, test = _split_metrics(data, "dev"), _split_metrics(data, "test")
    if not dev and not test:
        return []
    rows = ["| task | metric | dev | test |", "|---|---|---:|---:|"]
    for task in _tasks(data):
        name = task["name"]
        if name not in dev and name not in test:
            rows.append(f"| {name} | – | – | – |")
            continue
        kind = _kind(task)
        names = list(kind.summary_metrics if kind else ())
        headline = _headline(data, task)
        names = [headline] + [m for m in names if m != headline]
        for metric in names:
            d, t = dev.get(name, {}).get(metric), test.get(name, {}).get(metric)
            if d is None and t is None:
                continue
            shown = f"**{metric}**" if metric == headline else metric
            rows.append(f"| {name} | {shown} | {_score(d)} | {_score(t)} |")
    intro = ("Of the kept model (the best on dev), from `training/metrics.json`; the headline "
             "metric of each task is in bold.")
    return ["## Scores", "", intro, "", *rows, ""]


def _usage(data: dict[str, Any]) -> list[str]:
    name = data["name"]
    per_text = [t["name"] for t in _tasks(data) if (_kind(t) is None or _kind(t).per_text)]
    pairs = [t["name"] for t in _tasks(data) if _kind(t) is not None and _kind(t).pairs]
    return [
        "## Use", "", "```python", "import polyhead", "",
        f'model = polyhead.load("{name}")  # this folder',
        'model.encode(["A sentence to embed."])  # embeddings',
        'model.predict(["A sentence to label."])  # the embedding and every head\'s prediction'
        + (f" ({', '.join(per_text)})" if per_text else ""),
        'model.similarity(["a text"], ["another text"])  # cosine similarity of pairs',
        *([f'model.predict_pairs([("a text", "another text")])  # every pair head ({", ".join(pairs)})'] if pairs else []),
        "```", "",
        "From the command line:", "", "```bash",
        f'polyhead predict {name} "A sentence to label."',
        *([f"polyhead predict {name} --pairs pairs.jsonl  # sentence1/sentence2 per line"] if pairs else []),
        f"polyhead serve {name}  # HTTP: /v1/embeddings, /predict, /similarity, /info",
        f"polyhead export {name}  # ONNX into {name}/onnx (needs: pip install 'polyhead[onnx]')",
        f"polyhead serve {name} --backend onnx  # serve the ONNX export",
        f"polyhead export {name} --format openvino --quantize int8  # OpenVINO int8, the fastest on CPUs (pip install 'polyhead[openvino]')",
        f"polyhead serve {name} --backend auto  # the fastest backend installed here, measured once",
        f"polyhead info {name}", "```", "",
    ]


def render_card(folder: str | os.PathLike) -> str:
    """The model card of a saved model folder, as Markdown with YAML front matter."""
    data = read_folder(folder)
    tasks = _tasks(data)
    header = yaml.safe_dump(front_matter(data), sort_keys=False, allow_unicode=True, default_flow_style=False)
    task_rows = ["| task | kind | labels |", "|---|---|---|"] + [
        f"| {t['name']} | {t['kind']} | {_cell(_labels(t))} |" for t in tasks
    ]
    base = hub_base_model((data["model"].get("encoder") or {}).get("name_or_path"))
    license_note = (
        "No license is set here: these weights derive from the base encoder "
        + (f"({base}; its own license applies) " if base else "")
        + "and from the training data, whose terms polyhead cannot know. Add a `license:` line to the header "
        "before publishing (delete the marker line first, or polyhead rewrites this file on the next save)."
    )
    lines = [
        "---", header.rstrip("\n"), "---", MARKER, "", f"# {data['name']}", "",
        (f"A multi-task sentence-transformer model made with polyhead: one shared encoder and {len(tasks)} "
         "task head(s), all computed in a single forward pass."), "",
        "## Tasks", "", *task_rows, "",
        "## Encoder", "", *_encoder_lines(data), "",
        *_data_section(data),
        "## Training", "", *_training_lines(data), "",
        *_scores_section(data),
        *_usage(data),
        "## License", "", license_note, "",
    ]
    if data["problems"]:
        lines += ["Note: " + "; ".join(data["problems"]) + ".", ""]
    model = data["model"]
    lines.append(f"Written by polyhead {model.get('polyhead_version', '?')} (model saved {model.get('saved_at', '?')}).")
    return "\n".join(lines) + "\n"


# -- finding and writing ------------------------------------------------------------------------
def is_polyhead_card(path: str | os.PathLike) -> bool:
    """Whether `path` is a card polyhead wrote (it holds the marker)."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        return MARKER_PREFIX in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def card_path(folder: str | os.PathLike) -> Path | None:
    """Where the folder's polyhead-written card is (README.md, else MODEL_CARD.md), or None."""
    for name in (CARD_FILE, FALLBACK_CARD_FILE):
        if is_polyhead_card(Path(folder) / name):
            return Path(folder) / name
    return None


def write_card(folder: str | os.PathLike) -> Path | None:
    """(Re)write the card of a saved model folder; the file written, or None.

    Never replaces a file polyhead did not write (see the module docstring). A card is a
    courtesy: failing to write one is a warning on stderr, never an error for the save.
    """
    folder = Path(folder)
    key = str(folder.resolve())
    try:
        text = render_card(folder)
        for name in (CARD_FILE, FALLBACK_CARD_FILE):
            path = folder / name
            if not os.path.lexists(path) or is_polyhead_card(path):
                write_text_atomic(path, text)
                if name != CARD_FILE and key not in _TOLD:
                    _TOLD.add(key)
                    say(f"{folder / CARD_FILE} is not a polyhead model card: left it as it is and wrote the card to {path}")
                return path
        if key not in _TOLD:
            _TOLD.add(key)
            say(f"{folder} has its own {CARD_FILE} and {FALLBACK_CARD_FILE}: left both as they are (no model card written)")
    except (OSError, PolyheadError) as exc:
        say(f"warning: could not write the model card in {folder} ({exc})")
    return None
