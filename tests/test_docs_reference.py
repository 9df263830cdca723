"""The reference pages (docs/reference/config.md, cli.md) are what the code generates: a changed
config field or CLI option without `make docs-reference` fails here, and a new field or option
appears on the pages without anything else to change."""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import inspect
import re
import sys
import typing
from pathlib import Path

import pytest

from polyhead.cli.options import build_parser
from polyhead.cli.reference import PAGES, REGENERATE, main, render, stale_pages
from polyhead.cli.reference.cli_page import cli_page
from polyhead.cli.reference.config_page import config_keys, config_page, field_comment
from polyhead.training import config as config_module

ROOT = Path(__file__).resolve().parents[1]
CONFIG_PAGE, CLI_PAGE = PAGES


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return render()


def test_committed_pages_are_what_the_code_generates(pages):
    stale = stale_pages(ROOT, pages)
    assert not stale, f"{', '.join(stale)} stale: regenerate with `{REGENERATE}` (python -m polyhead.cli.reference)"


# -- the config page ----------------------------------------------------------------------------
def _sections() -> list[tuple[str, type]]:
    """(heading, dataclass) of every section of a run config that has keys of its own."""
    hints = typing.get_type_hints(config_module.RunConfig)
    out = []
    for name in config_keys(config_module):
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            out.append((f"`{name}`", tp))
        elif typing.get_origin(tp) is list and dataclasses.is_dataclass(typing.get_args(tp)[0]):
            out.append((f"`{name}[]`", typing.get_args(tp)[0]))
    return out


def _chunks(page: str) -> dict[str, str]:
    """Each '## heading' of a page -> the text under it."""
    parts = re.split(r"^## (.+)$", page, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def _owner(cls: type, name: str) -> type:
    return next(k for k in cls.__mro__ if name in inspect.get_annotations(k))


def _title(cls: type) -> str:
    return " ".join(re.findall(r"[A-Z][a-z0-9]*", cls.__name__)).capitalize()


def test_every_field_of_every_section_is_on_the_config_page(pages):
    chunks = _chunks(pages[CONFIG_PAGE])
    assert len(_sections()) >= 5  # encoder, tasks, datasets, training, freeze
    for heading, cls in _sections():
        for f in dataclasses.fields(cls):
            owner = _owner(cls, f.name)
            where = heading if owner is cls else _title(owner)
            assert where in chunks, f"no section {where!r} on {CONFIG_PAGE}"
            assert f"| `{f.name}` |" in chunks[where], f"{cls.__name__}.{f.name} is not under {where} on {CONFIG_PAGE}"
    for name in config_keys(config_module):  # and every section, with or without keys of its own
        assert f"`{name}`" in chunks or f"`{name}[]`" in chunks, f"no section for {name} on {CONFIG_PAGE}"


def test_every_field_says_what_it_means():
    """The page's meanings are the fields' comments: a field without one is a gap in the reference."""
    missing = [f"{cls.__name__}.{f.name}" for _, cls in _sections() for f in dataclasses.fields(cls)
               if not field_comment(cls, f.name)]
    assert not missing, ("add a comment above or at the end of these fields in src/polyhead/training/config.py "
                         f"(it is their meaning in {CONFIG_PAGE}): {', '.join(missing)}")


def test_deprecated_keys_are_listed_with_their_replacement(pages):
    for aliases in config_module.ALIASES.values():
        for old, (new, _) in aliases.items():
            assert f"Deprecated: `{old}` is still read, as `{new}`" in pages[CONFIG_PAGE]


def test_a_field_added_to_a_section_appears_with_its_declaration(tmp_path, monkeypatch, pages):
    """A copy of config.py with one more TrainingConfig field: the page shows its type, default,
    bounds and comment, and nothing in the generator names it."""
    source = Path(inspect.getsourcefile(config_module)).read_text(encoding="utf-8")
    anchor = "    @property\n    def effective_head_lr"
    assert source.count(anchor) == 1
    added = "    # Added by a test: how many knobs.\n    knobs: int | None = opt(None, ge=2, le=9)  # null: no knobs\n\n"
    path = tmp_path / "config_with_knobs.py"
    path.write_text(source.replace(anchor, added + anchor), encoding="utf-8")
    name = "polyhead.training.config_with_knobs"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    page = config_page(module)
    row = "| `knobs` | integer or null | `null` | ≥ 2, ≤ 9 | Added by a test: how many knobs. null: no knobs |\n"
    assert row in page.split("## `training`", 1)[1].split("\n## ", 1)[0]
    assert page.replace(row, "") == pages[CONFIG_PAGE]  # the rest of the page as before


# -- the CLI page -------------------------------------------------------------------------------
def _parsers(parser: argparse.ArgumentParser, path: str) -> list[tuple[str, argparse.ArgumentParser]]:
    out = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _parsers(sub, f"{path} {name}")
    return out


def test_every_command_and_option_is_on_the_cli_page(pages):
    chunks = _chunks(pages[CLI_PAGE].replace("\n### ", "\n## "))
    commands = _parsers(build_parser(), "polyhead")[1:]
    assert len(commands) >= 10
    for path, parser in commands:
        assert f"`{path}`" in chunks, f"no section for {path} on {CLI_PAGE}"
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            for option in action.option_strings:
                assert f"`{option}`" in chunks[f"`{path}`"], f"{path} {option} is not on {CLI_PAGE}"
            if not action.option_strings and not isinstance(action, argparse._SubParsersAction):
                assert f"`{action.metavar or action.dest.upper()}`" in chunks[f"`{path}`"]


def test_cli_page_does_not_depend_on_the_terminal_width(monkeypatch, pages):
    monkeypatch.setenv("COLUMNS", "40")
    assert cli_page() == pages[CLI_PAGE]


# -- both pages ---------------------------------------------------------------------------------
def test_pages_say_they_are_generated_and_link_relatively(pages):
    for path, text in pages.items():
        first = text.splitlines()[0]
        assert "Generated" in first and f"`{REGENERATE}`" in first, f"{path}: {first}"
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            assert not re.match(r"[a-z]+:|/", target), f"{path}: absolute link {target}"
            file = target.split("#")[0]
            if file:
                assert ((ROOT / path).parent / file).exists(), f"{path}: broken link {target}"


def test_check_names_the_stale_page_and_the_command(tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    assert main(["--check", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and CONFIG_PAGE in err and REGENERATE in err
    assert main(["--root", str(tmp_path)]) == 0
    assert main(["--check", "--root", str(tmp_path)]) == 0
    page = tmp_path / CLI_PAGE
    page.write_text(page.read_text(encoding="utf-8") + "edited by hand\n", encoding="utf-8")
    assert main(["--check", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert CLI_PAGE in err and CONFIG_PAGE not in err and REGENERATE in err
