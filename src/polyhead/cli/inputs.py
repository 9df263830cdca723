"""Reading what the commands take besides plain texts: pairs of texts for the pair heads."""
from __future__ import annotations

import json
import sys

from ..errors import PolyheadError
from ..io import read_text


def read_pairs(path: str) -> list[tuple[str, str]]:
    """Pairs of texts from a file: JSON lines with "sentence1"/"sentence2" (a .jsonl name, or lines
    starting with '{'), else two tab-separated columns; bad lines are one-line errors with their number."""
    lines = read_text(path).split("\n") if path != "-" else sys.stdin.read().split("\n")
    where = "standard input" if path == "-" else path
    pairs: list[tuple[str, str]] = []
    as_json = path.endswith((".jsonl", ".json")) or next((ln.lstrip().startswith("{") for ln in lines if ln.strip()), False)
    for no, line in enumerate(lines, 1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        if as_json:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PolyheadError(f"{where}:{no}: invalid JSON ({exc.msg})") from None
            a, b = (rec.get("sentence1"), rec.get("sentence2")) if isinstance(rec, dict) else (None, None)
        else:
            cols = line.split("\t")
            a, b = (cols[0], cols[1]) if len(cols) == 2 else (None, None)
        if not isinstance(a, str) or not isinstance(b, str):
            what = '"sentence1" and "sentence2" strings' if as_json else "two tab-separated texts"
            raise PolyheadError(f"{where}:{no}: expected {what}")
        pairs.append((a, b))
    if not pairs:
        raise PolyheadError(f"{where}: no pairs")
    return pairs
