"""docs/reference/config.md: every key of a run config, read from the declarations in
training/config.py. A key's type and default come from its dataclass field, its allowed values from
the field's `opt(...)` metadata (choices, ge/gt/le/lt, length, single_char), and its meaning from
the comment lines directly above the field and the comment at the end of its line, read from the
source with `tokenize`. A field added to a section appears here with nothing else to change."""
from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
import sys
import tokenize
import types
import typing
from functools import cache
from typing import Any

import yaml

from ...errors import PolyheadError
from .markdown import code, generated_line, link, prose, sentences, table

CONFIG_MODULE = "polyhead.training.config"
SOURCE = "src/polyhead/training/config.py"


# -- comments in the source ---------------------------------------------------------------------
@cache
def _comments(path: str) -> tuple[dict[int, tuple[str, bool]], ast.Module]:
    """Line -> (comment text, alone on its line) for every comment of a source file, and its AST."""
    comments: dict[int, tuple[str, bool]] = {}
    with open(path, encoding="utf-8") as fh:
        source = fh.read()
    for tok in tokenize.generate_tokens(iter(source.splitlines(keepends=True)).__next__):
        if tok.type == tokenize.COMMENT:
            alone = not tok.line[: tok.start[1]].strip()
            comments[tok.start[0]] = (tok.string.lstrip("#").strip(), alone)
    return comments, ast.parse(source)


def _around(path: str, first: int, last: int) -> str:
    """The comment block directly above line `first` and the comments ending lines first..last."""
    comments, _ = _comments(path)
    above: list[str] = []
    line = first - 1
    while line in comments and comments[line][1]:
        above.insert(0, comments[line][0])
        line -= 1
    trailing = [comments[n][0] for n in range(first, last + 1) if n in comments and not comments[n][1]]
    return sentences([" ".join(above), *trailing])


def field_comment(cls: type, name: str) -> str:
    """What the source says about field `name` of dataclass `cls` (found in the class that declares it)."""
    for klass in cls.__mro__:
        if name not in inspect.get_annotations(klass):
            continue
        path = inspect.getsourcefile(klass)
        if path is None:
            return ""
        _, tree = _comments(path)
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name == klass.__name__:
                for stmt in node.body:
                    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.target.id == name:
                        return _for_yaml(_around(path, stmt.lineno, stmt.end_lineno or stmt.lineno), klass)
        return ""
    return ""


def alias_comment(module: types.ModuleType, old: str) -> str:
    """The comment on the line of `old` in the module's ALIASES table (what the old values become)."""
    path = inspect.getsourcefile(module)
    if path is None:
        return ""
    comments, tree = _comments(path)
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id == "ALIASES" and node.value is not None:
            for sub in ast.walk(node.value):
                if isinstance(sub, ast.Constant) and sub.value == old and sub.lineno in comments:
                    text, alone = comments[sub.lineno]
                    return "" if alone else text
    return ""


_CONSTANT = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")


def _for_yaml(text: str, klass: type) -> str:
    """A comment as a config's reader needs it: Python's None is YAML's null, and a module constant
    that is a number (HEAD_LR_RATIO) is its value."""
    names = vars(sys.modules[klass.__module__])

    def value(match: re.Match) -> str:
        found = names.get(match.group(0))
        if isinstance(found, (int, float)) and not isinstance(found, bool):
            return _number(found)
        return match.group(0)

    return _CONSTANT.sub(value, re.sub(r"\bNone\b", "null", text))


# -- types, defaults, allowed values ----------------------------------------------------------------
_WORDS = {int: "integer", float: "number", bool: "boolean", str: "string", Any: "any value"}


def type_words(tp: Any) -> str:
    """A field's type as a YAML user reads it: 'integer or null', 'list of strings'."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        words = " or ".join(type_words(a) for a in args if a is not type(None))
        return words + (" or null" if type(None) in args else "")
    if origin is list:
        (item,) = typing.get_args(tp)
        word = type_words(item)
        return "list of " + (word + "s" if item in (int, float, bool, str) else word)
    if origin is dict:
        key, value = typing.get_args(tp)
        return f"mapping of {type_words(key)} to {type_words(value)}"
    return _WORDS.get(tp, getattr(tp, "__name__", str(tp)))


def yaml_value(value: Any) -> str:
    """A value as it is written in a YAML config."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    return text.removesuffix("...").strip()


def default_of(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return code(yaml_value(f.default))
    if f.default_factory is not dataclasses.MISSING:
        return code(yaml_value(f.default_factory()))
    return "required"


def _number(x: float) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def allowed(meta: typing.Mapping[str, Any]) -> str:
    """The allowed values a field's opt(...) metadata declares, in words."""
    parts = []
    choices = meta.get("choices")
    if choices is not None:
        parts.append("one of " + ", ".join(code(c) for c in (choices() if callable(choices) else choices)))
    for key, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
        if meta.get(key) is not None:
            parts.append(f"{sign} {_number(meta[key])}")
    if meta.get("length"):
        parts.append(f"exactly {meta['length']} items")
    if meta.get("single_char"):
        parts.append("a single character")
    return ", ".join(parts)


# -- the page ---------------------------------------------------------------------------------------
def _title(cls: type) -> str:
    """DataOptions -> 'Data options'."""
    words = "".join(f" {c.lower()}" if c.isupper() else c for c in cls.__name__).split()
    return " ".join(words).capitalize()


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading."""
    kept = "".join(c for c in heading.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def _doc(cls: type) -> str:
    return prose(inspect.getdoc(cls) or "")


def config_keys(module: types.ModuleType) -> list[str]:
    """The RunConfig fields a YAML config may hold: those config_from_dict does not refuse as an
    unknown section (the others, such as `data`, exist in Python only)."""
    keys = []
    for f in dataclasses.fields(module.RunConfig):
        try:
            module.config_from_dict({f.name: None})
        except PolyheadError as exc:
            if "unknown section" in str(exc):
                continue
        keys.append(f.name)
    return keys


def _resumable() -> dict[str, str]:
    from ...training.checkpoint import SAFE_TO_CHANGE

    return SAFE_TO_CHANGE


def _rows(cls: type, names: list[str], path: str) -> list[list[str]]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    rows = []
    for name in names:
        f = fields[name]
        meaning = prose(field_comment(cls, name))
        if f"{path}.{name}" in _resumable():
            meaning = sentences([meaning, "*May change when a run is resumed.*"])
        rows.append([code(name), type_words(hints[name]), default_of(f), allowed(f.metadata), meaning])
    return rows


HEADER = ("Key", "Type", "Default", "Allowed", "Meaning")


def _section_lines(module: types.ModuleType, cls: type, path: str, shared: dict[type, list[str]]) -> list[str]:
    """The table of a section's own keys, a pointer to the shared groups it takes, its old keys."""
    own, inherited = [], {}
    for f in dataclasses.fields(cls):
        owner = next(k for k in cls.__mro__ if f.name in inspect.get_annotations(k))
        if owner is cls:
            own.append(f.name)
        else:
            inherited.setdefault(owner, []).append(f.name)
    lines = [*table(HEADER, _rows(cls, own, path)), ""]
    for owner, names in inherited.items():
        shared.setdefault(owner, names)
        heading = _title(owner)
        lines += [f"It also takes the [{heading.lower()}](#{_anchor(heading)}).", ""]
    for old, (new, _) in getattr(module, "ALIASES", {}).get(cls, {}).items():
        note = alias_comment(module, old)
        lines += [f"Deprecated: {code(old)} is still read, as {code(new)}; write {code(new)} instead"
                  + (f" ({prose(note)})." if note else "."), ""]
    return lines


def config_page(module: types.ModuleType | None = None) -> str:
    """The config reference page for a config module (default: polyhead.training.config)."""
    module = module or importlib.import_module(CONFIG_MODULE)
    run = module.RunConfig
    hints = typing.get_type_hints(run)
    keys = config_keys(module)
    fields = {f.name: f for f in dataclasses.fields(run)}
    body: list[str] = []
    toc: list[str] = []
    shared: dict[type, list[str]] = {}
    for name in keys:
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            heading, cls, path = f"`{name}`", tp, name
        elif typing.get_origin(tp) is list and dataclasses.is_dataclass(typing.get_args(tp)[0]):
            heading, cls, path = f"`{name}[]`", typing.get_args(tp)[0], f"{name}[]"
        else:
            heading, cls, path = f"`{name}`", None, name
        toc.append(f"- [{heading}](#{_anchor(heading)})")
        body += [f"## {heading}", ""]
        if cls is None:  # a section holding one value (a mapping), not keys of its own
            meaning = prose(field_comment(run, name))
            if name in _resumable():
                meaning = sentences([meaning, "*May change when a run is resumed.*"])
            body += [meaning, "", *table(("Type", "Default"), [[type_words(tp), default_of(fields[name])]]), ""]
            continue
        what = "a list of mappings, one per entry" if path.endswith("[]") else "a mapping"
        body += [f"{_doc(cls)} The section is {what}.", ""]
        body += _section_lines(module, cls, path, shared)
    for owner, names in shared.items():
        heading = _title(owner)
        toc.append(f"- [{heading}](#{_anchor(heading)})")
        body += [f"## {heading}", "", _doc(owner), ""]
        body += [*table(HEADER, _rows(owner, names, _title(owner))), ""]
    python_only = [n for n in fields if n not in keys]
    if python_only:
        body += ["## Not config keys", "",
                 "A `RunConfig` made in Python also has these attributes, which a config file does not hold:", ""]
        body += [f"- {code(n)}: {prose(field_comment(run, n))}" for n in python_only] + [""]
    sections = ", ".join(code(k) for k in keys)
    head = [
        generated_line(link(SOURCE)),
        "",
        "# Config reference",
        "",
        (f"A run config is one YAML file (`polyhead train CONFIG`, `polyhead.train(...)`) with the sections {sections}; "
         "only `tasks` is required. Every value is checked against the declarations below when the config loads, so "
         "an unknown key or a value out of bounds is a one-line error with its key path. Any key can be set on the "
         "command line with `--set section.key=value`, a list entry by its position or its name "
         "(`--set tasks.ner.dropout=0.2`). The command line is in [cli.md](cli.md); how the keys work "
         f"together, with an annotated example, is in {link('docs/training.md')}."),
        "",
        *toc,
        "",
    ]
    return "\n".join(head + body).rstrip("\n") + "\n"
