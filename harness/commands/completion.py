"""`harness completion SHELL`: a completion script generated from the full parser (shtab)."""

from __future__ import annotations

import argparse
from pathlib import Path

SHELLS = ("bash", "zsh", "tcsh")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "shell",
        choices=SHELLS,
        help="the shell to complete for; e.g. `harness completion bash > "
        "/etc/bash_completion.d/harness`, or `eval \"$(harness completion bash)\"`",
    )


def run(args: argparse.Namespace) -> int:
    import shtab

    from harness.cli import SUBCOMMANDS, build_parser

    # Completion needs every subcommand's options, so here (only) all modules are loaded.
    parser = build_parser(SUBCOMMANDS)
    for action in _all_actions(parser):
        if action.type is Path:
            action.complete = shtab.FILE  # type: ignore[attr-defined]  # shtab reads it
    print(shtab.complete(parser, shell=args.shell))
    return 0


def _all_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    found = list(parser._actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _all_actions(sub)
    return found
