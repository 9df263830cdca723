"""`polyhead add-head MODEL_DIR CONFIG`: train new heads on a saved model's frozen encoder and add them.

Every check that can fail (the folder is a polyhead model, the names are new, the target is
writable, the config's encoder is the model's) runs before any training, so a refusal costs
nothing and changes nothing. The heads are fitted by `polyhead.training.frozen.fit_heads` on
cached features; `add_heads_to_folder` then writes only the new head files and polyhead.json:
the encoder and the old heads stay byte-identical. With --output the model is copied first
(into a temp folder renamed into place at the end, so a failure leaves no half copy).
"""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any, Sequence

from ..console import say
from ..errors import PolyheadError
from ..io import read_text, write_atomic_dir

# The encoder choices a CONFIG may repeat (they must then equal the model's): config key -> polyhead.json key.
ENCODER_KEYS = {"model": "name_or_path", "pooling": "pooling", "normalize": "normalize", "max_length": "max_length"}


def run_add_head(
    model_dir: str,
    config: str,
    output: str | None = None,
    overrides: Sequence[str] = (),
    device: str | None = None,
    progress: bool = True,
) -> int:
    """Fit the tasks of `config` as new heads on the model in `model_dir`; write them there or to `output`."""
    from ..modeling.model import add_heads_to_folder, check_heads_addable, load
    from ..training.config import load_config

    cfg = load_config(config, list(overrides))
    names = [t.name for t in cfg.tasks]
    saved = check_heads_addable(model_dir, names, writable=output is None)
    check_encoder_section(config, overrides, cfg, saved["encoder"], model_dir)
    solver, l2 = head_solver(cfg)
    if output is not None:
        check_output(Path(model_dir), Path(output))

    model = load(model_dir, device=device)
    enc = model.encoder  # the heads learn from the model's own encoder, whatever the config left out
    cfg.encoder.model, cfg.encoder.pooling = enc.name_or_path, enc.pooling.mode
    cfg.encoder.normalize, cfg.encoder.max_length = enc.normalize, enc.max_length
    from ..training.frozen import fit_heads

    say(f"fitting new head(s) {', '.join(names)} on the frozen encoder of {model_dir}")
    report = fit_heads(model, cfg, tasks=names, solver=solver, l2=l2, progress=progress)

    if output is None:
        target = Path(model_dir)
        add_heads_to_folder(target, model, names)
    else:
        target = Path(output)
        copy_and_add(Path(model_dir), target, lambda folder: add_heads_to_folder(folder, model, names))
    for name in names:
        say(f"{name}: {describe_fit(report, name)}")
    where = f"{target} (a copy of {model_dir})" if output is not None else str(target)
    say(f"added {', '.join(names)} to {where}; the encoder and existing heads are unchanged")
    for sub, manifest, fmt in (("onnx", "polyhead-onnx.json", "onnx"), ("openvino", "polyhead-openvino.json", "openvino")):
        stale = target / sub / manifest
        if stale.is_file():
            say(f"note: the {fmt} export in {stale.parent} predates the new heads; run polyhead export {target} "
                f"--format {fmt} again to include them (--backend auto skips it until then)")
    return 0


def describe_fit(report: Any, name: str) -> str:
    """One task's dev metrics and solver from a FitReport, e.g. 'dev accuracy 0.912, macro_f1 0.874 (lbfgs, l2=0.01)'."""
    fit = report.tasks.get(name) if hasattr(report, "tasks") else None
    dev = dict(getattr(fit, "dev", None) or report.dev.get(name) or {})
    dev = {k: v for k, v in dev.items() if k != "n" and not k.startswith("f1_")}  # the headline scores, not per class
    scores = ", ".join(f"{k} {v:.4f}" for k, v in dev.items()) if dev else "no dev data"
    how = []
    if fit is not None:
        how.append(str(fit.solver))
        if fit.l2 is not None:
            how.append(f"l2={fit.l2:g}")
        if fit.epochs is not None:
            how.append(f"{fit.epochs} epochs")
    text = f"dev {scores}" if dev else scores
    return f"{text} ({', '.join(how)})" if how else text


def head_solver(cfg: Any) -> tuple[str, Any]:
    """The head solver and L2 penalty the config asks for (add-head always fits on cached features)."""
    solver = getattr(cfg.training, "head_solver", "auto")
    if solver == "loop":
        raise PolyheadError(
            "training.head_solver: loop trains through the encoder; add-head fits new heads on its cached "
            "features: use auto, lbfgs or adamw"
        )
    return solver, getattr(cfg.training, "head_l2", None)


def check_encoder_section(config: str, overrides: Sequence[str], cfg: Any, saved: dict[str, Any], model_dir: str) -> None:
    """Refuse a config whose `encoder` section (as written, or set with --set) is not the model's encoder."""
    import yaml

    from ..modeling.backbone import is_default_name
    from ..training.config import apply_overrides

    raw = yaml.safe_load(read_text(config)) or {}  # load_config has parsed it already: only the keys given
    given = (apply_overrides(raw, list(overrides)).get("encoder") or {}) if isinstance(raw, dict) else {}
    for key, saved_key in ENCODER_KEYS.items():
        if key not in given or saved_key not in saved:
            continue
        wanted, have = getattr(cfg.encoder, key), saved[saved_key]
        same = same_encoder_name(wanted, have, cfg, is_default_name) if key == "model" else wanted == have
        if not same:
            raise PolyheadError(
                f"{config}: encoder.{key} is {wanted!r}, but the encoder of {model_dir} has {have!r}; new heads are "
                f"fitted on the model's own encoder: drop encoder.{key} from the config or make it {have!r}"
            )


def same_encoder_name(wanted: Any, have: Any, cfg: Any, is_default_name: Any) -> bool:
    """Whether a config's encoder.model names the encoder a model was trained from."""
    if is_default_name(wanted) or is_default_name(have):
        return is_default_name(wanted) and is_default_name(have)
    if str(wanted) == str(have):
        return True
    a, b = cfg.resolve(str(wanted)), Path(str(have)).expanduser()
    return a.exists() and b.exists() and a.resolve() == b.resolve()


def check_output(model_dir: Path, output: Path) -> None:
    """--output must be a missing or empty folder, outside MODEL_DIR, in a writable place."""
    if output.exists() and not output.is_dir():
        raise PolyheadError(f"--output {output} is a file; give a missing or empty folder")
    if output.is_dir() and any(output.iterdir()):
        raise PolyheadError(f"--output {output} is not empty; give a missing or empty folder (leave it out to add in place)")
    src, dst = model_dir.resolve(), output.resolve()
    if dst == src or src in dst.parents:
        raise PolyheadError(f"--output {output} is inside {model_dir}; give a folder outside it (leave it out to add in place)")
    parent = dst.parent
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PolyheadError(f"--output {output}: {parent} is not writable")


def copy_and_add(model_dir: Path, output: Path, add: Any) -> None:
    """Copy model_dir into a temp folder beside output, add the heads there, then rename it into place."""

    def fill(tmp: Path) -> None:
        shutil.copytree(model_dir, tmp, dirs_exist_ok=True)
        for folder in (tmp, tmp / "heads"):  # the copy is the user's to change, even if MODEL_DIR is read-only
            if folder.is_dir():
                folder.chmod(folder.stat().st_mode | stat.S_IWUSR | stat.S_IXUSR)
        add(tmp)

    write_atomic_dir(output, fill)
