"""A hyperparameter search space: KEY=SPEC entries (`training.lr=log:1e-5:1e-3`), parsed and
checked without Optuna, so a config's `search:` section is checked when the config loads.
`polyhead tune` (tune.py) samples them."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import yaml

from ..errors import PolyheadError

DISTRIBUTIONS = ("float", "log", "int", "choice")


@dataclass
class Param:
    """One key of the search space."""

    key: str
    dist: str
    low: float = 0.0
    high: float = 0.0
    choices: list[Any] = field(default_factory=list)

    def suggest(self, trial: Any) -> Any:
        if self.dist == "choice":
            return trial.suggest_categorical(self.key, self.choices)
        if self.dist == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high))
        return trial.suggest_float(self.key, self.low, self.high, log=self.dist == "log")

    def ends(self) -> list[Any]:
        """The values that bound the space (checked against the config before any trial)."""
        if self.dist == "choice":
            return list(self.choices)
        return [int(self.low), int(self.high)] if self.dist == "int" else [self.low, self.high]


def parse_space(space: dict[str, Any] | Sequence[str]) -> list[Param]:
    """The search space from {KEY: SPEC or list} or ["KEY=SPEC", ...]; one line for any bad entry."""
    items = list(space.items()) if isinstance(space, dict) else entries(space)
    if not items:
        raise PolyheadError("the search space is empty: give the config a search: section or --space KEY=SPEC "
                            "(e.g. training.lr=log:1e-5:1e-3)")
    return [_param(str(key), spec) for key, spec in items]


def entries(space: Sequence[str]) -> list[tuple[str, str]]:
    """["KEY=SPEC", ...] (the command line's --space) as (key, spec) pairs."""
    out = []
    for entry in space:
        key, sep, spec = str(entry).partition("=")
        if not sep or not key:
            raise PolyheadError(f"--space {entry!r}: expected KEY=SPEC, e.g. training.lr=log:1e-5:1e-3")
        out.append((key, spec))
    return out


def _param(key: str, spec: Any) -> Param:
    where = f"search space {key}"
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise PolyheadError(f"{where}: an empty list of choices")
        return Param(key, "choice", choices=list(spec))
    dist, sep, rest = str(spec).partition(":")
    if not sep or dist not in DISTRIBUTIONS:
        raise PolyheadError(f"{where}: {spec!r} is not float:LOW:HIGH, log:LOW:HIGH, int:LOW:HIGH or choice:A,B,...")
    if dist == "choice":
        choices = [yaml.safe_load(v) for v in rest.split(",") if v.strip()]
        if not choices:
            raise PolyheadError(f"{where}: no choices in {spec!r}")
        return Param(key, dist, choices=choices)
    try:
        low, high = (float(v) for v in rest.split(":"))
    except ValueError:
        raise PolyheadError(f"{where}: {spec!r} needs two numbers, {dist}:LOW:HIGH") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise PolyheadError(f"{where}: the range [{low:g}, {high:g}] is empty; LOW must be below HIGH")
    if dist == "log" and low <= 0:
        raise PolyheadError(f"{where}: a log range must be above 0, got [{low:g}, {high:g}]")
    if dist == "int" and (low != int(low) or high != int(high)):
        raise PolyheadError(f"{where}: int ranges take whole numbers, got [{low:g}, {high:g}]")
    return Param(key, dist, low, high)


def override(key: str, value: Any) -> str:
    """A KEY=VALUE override (apply_overrides' syntax) for a sampled value."""
    return f"{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"


