"""The `harness` command: one subcommand per module in `harness.commands`.

Subcommand modules are imported only when chosen, so `harness requirements`
does not pay for PyAV or scapy start-up.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

# name -> module under harness.commands; each module has HELP, configure(parser), run(args).
SUBCOMMANDS: dict[str, str] = {
    "run": "run",
    "check": "check",
    "requirements": "requirements",
    "primary": "primary",
    "viewer": "viewer",
    "toxiproxy": "toxiproxy",
    "soak": "soak",
}


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"harness.commands.{SUBCOMMANDS[name]}")


def build_parser(chosen: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Chaos and conformance harness for the LVS live video protocol.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        if name == chosen:
            module = _load(name)
            sp = sub.add_parser(name, help=module.HELP, description=module.HELP)
            module.configure(sp)
        else:
            sub.add_parser(name, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in args_list if not a.startswith("-")), None)
    if chosen not in SUBCOMMANDS:
        chosen = None
    parser = build_parser(chosen)
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return 2
    module = _load(args.command)
    result: int = module.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
