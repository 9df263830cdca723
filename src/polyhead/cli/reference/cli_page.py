"""docs/reference/cli.md: every `polyhead` command and option, read from the argument parser
(options.build_parser). The parser's actions are walked directly rather than formatting its help,
so the page does not depend on the terminal's width."""
from __future__ import annotations

import argparse
from collections.abc import Iterator

from ..options import build_parser
from .markdown import code, generated_line, link, prose, sentences, table

SOURCE = "src/polyhead/cli/options.py"
# argparse's own titles for the groups every parser has
_DEFAULT_GROUPS = ("positional arguments", "options", "optional arguments")


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each subcommand, in the order they were added; hidden ones
    (help=argparse.SUPPRESS) are left out."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                if name in helps:
                    yield name, helps[name], sub


def _help(action: argparse.Action, parser: argparse.ArgumentParser) -> str:
    """The help text with argparse's %-placeholders filled in, as `--help` would show it."""
    text = action.help or ""
    params = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
    params["prog"] = parser.prog
    if params.get("choices") is not None:
        params["choices"] = ", ".join(str(c) for c in params["choices"])
    try:
        return text % params
    except (KeyError, TypeError, ValueError):
        return text.replace("%%", "%")


def _value(action: argparse.Action) -> str:
    """What an option takes: nothing (a flag), one of its choices, or a value named by its metavar."""
    if action.nargs == 0:
        return ""
    if action.choices is not None:
        value = ", ".join(code(c) for c in action.choices)
    else:
        name = action.metavar or (action.type.__name__.upper() if action.type in (int, float) else action.dest.upper())
        value = code(name)
    if action.nargs == "?":
        value = f"optional: {value}" + (f" (alone: {code(action.const)})" if action.const is not None else "")
    elif action.nargs in ("*", "+"):
        value = f"{value} …"
    if isinstance(action, argparse._AppendAction):
        value += " (repeatable)"
    return value


def _default(action: argparse.Action) -> str:
    if action.required:
        return "required"
    default = action.default
    if default is None or default is argparse.SUPPRESS or action.nargs == 0 or default == []:
        return ""
    return code(" ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default))


def _usage(path: str, parser: argparse.ArgumentParser) -> str:
    parts = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            parts.append(f"{action.metavar or 'COMMAND'} …")
        elif not action.option_strings:
            name = action.metavar or action.dest.upper()
            parts.append({"?": f"[{name}]", "*": f"[{name} …]", "+": f"{name} [{name} …]"}.get(action.nargs, name))
        elif action.required:
            parts.append(f"{action.option_strings[-1]} {action.metavar or action.dest.upper()}")
    if any(a.option_strings and not a.required and not isinstance(a, argparse._HelpAction) for a in parser._actions):
        parts.append("[options]")
    return code(" ".join(parts))


def _exclusive(parser: argparse.ArgumentParser) -> dict[argparse.Action, list[str]]:
    """Each option of a mutually exclusive group -> the options it cannot be given with."""
    out: dict[argparse.Action, list[str]] = {}
    for group in parser._mutually_exclusive_groups:
        for action in group._group_actions:
            out[action] = [o.option_strings[-1] for o in group._group_actions if o is not action]
    return out


def _tables(parser: argparse.ArgumentParser) -> list[str]:
    """Arguments, options, and each titled option group, as tables."""
    lines: list[str] = []
    exclusive = _exclusive(parser)
    positionals = [a for a in parser._actions if not a.option_strings and not isinstance(a, argparse._SubParsersAction)]
    if positionals:
        rows = [[code(a.metavar or a.dest.upper()), _value_count(a), prose(_help(a, parser))] for a in positionals]
        lines += ["**Arguments**", "", *table(("Argument", "Count", "Description"), rows), ""]
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.option_strings and not isinstance(a, argparse._HelpAction)]
        if not actions:
            continue
        rows = []
        for a in actions:
            text = prose(_help(a, parser))
            if a in exclusive:
                text = sentences([text, "Not with " + ", ".join(code(o) for o in exclusive[a]) + "."])
            rows.append([", ".join(code(o) for o in a.option_strings), _value(a), _default(a), text])
        title = "Options" if group.title in _DEFAULT_GROUPS else prose(group.title or "")
        lines += [f"**{title}**", ""]
        if group.description:
            lines += [prose(group.description), ""]
        lines += [*table(("Option", "Value", "Default", "Description"), rows), ""]
    return lines


def _value_count(action: argparse.Action) -> str:
    return {"?": "optional", "*": "any number", "+": "one or more"}.get(action.nargs, "one")  # type: ignore[arg-type]


def _command(path: str, help_line: str, parser: argparse.ArgumentParser, level: int) -> list[str]:
    lines = [f"{'#' * level} `{path}`", ""]
    if help_line:
        lines += [prose(help_line[:1].upper() + help_line[1:]) + ("" if help_line.endswith(".") else "."), ""]
    if parser.description and parser.description != help_line:
        lines += [prose(parser.description), ""]
    lines += [f"Usage: {_usage(path, parser)}", "", *_tables(parser)]
    for name, sub_help, sub in _subcommands(parser):
        lines += _command(f"{path} {name}", sub_help, sub, level + 1)
    return lines


def _anchor(path: str) -> str:
    return path.lower().replace(" ", "-")


def cli_page(parser: argparse.ArgumentParser | None = None) -> str:
    """The command-line reference page for a parser (default: the `polyhead` parser)."""
    parser = parser or build_parser()
    prog = parser.prog
    toc, body = [], []
    for name, help_line, sub in _subcommands(parser):
        path = f"{prog} {name}"
        toc.append(f"| [{code(path)}](#{_anchor(path)}) | {prose(help_line)} |")
        body += _command(path, help_line, sub, 2)
    top = [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]
    head = [
        generated_line(link(SOURCE)),
        "",
        "# Command-line reference",
        "",
        prose(parser.description or ""),
        "",
        f"Every command takes `-h`/`--help`. Options of `{prog}` itself: "
        + "; ".join(f"{', '.join(code(o) for o in a.option_strings)} ({prose(_help(a, parser) or a.dest)})" for a in top)
        + f". The run config that `{prog} train` reads is described key by key in [config.md](config.md).",
        "",
        "| Command | What it does |",
        "|---|---|",
        *toc,
        "",
    ]
    return "\n".join(head + body).rstrip("\n") + "\n"
