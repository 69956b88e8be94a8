"""The `harness` command: one subcommand per module in `harness.commands`.

Subcommand modules are imported only when chosen, so `harness requirements`
does not pay for PyAV or scapy start-up; `harness --help` reads its one-line
descriptions from the table below for the same reason.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Collection, Sequence
from importlib import metadata
from types import ModuleType

from harness.commands.failures import CommandFailed

DISTRIBUTION = "lvs-harness"


# name -> one-line summary; the code is the module harness.commands.<name>, with
# configure(parser) and run(args). The summaries live here so that `harness --help`
# imports no subcommand.
SUBCOMMANDS: dict[str, str] = {
    "run": "Run the scenario suite against peers behind fault injectors.",
    "check": "Judge a stored run, trace or capture with today's monitors.",
    "requirements": "Print the requirement catalogue and each ID's scenarios.",
    "primary": "Run the reference Primary (streams real H.264).",
    "viewer": "Run the reference Viewer (decode, audit, telemetry).",
    "toxiproxy": "Run the embedded Toxiproxy 2.x API server.",
    "doctor": "List the fault backends this machine offers, and why not.",
    "completion": "Print a shell completion script (bash, zsh, tcsh).",
    "soak": "Hours of seeded chaos, judged window by window.",
    "certify": "Certify a third-party Viewer or Primary, or compare them.",
}


class _HelpFormatter(argparse.HelpFormatter):
    """Room for the longest subcommand name, so each description stays on one line.

    argparse measures subcommand names one indent shallower than it prints them
    (subcommands sit at two indents), so a long name pushes its description to the
    next line; reserving the width up front keeps every description beside its name.
    """

    def __init__(self, prog: str) -> None:
        super().__init__(prog)
        self._action_max_length = 2 * 2 + max(map(len, SUBCOMMANDS))


def version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"harness.commands.{name}")


def build_parser(configured: Collection[str]) -> argparse.ArgumentParser:
    """The whole command line; only the subcommands in `configured` get their options."""
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Chaos and conformance harness for the LVS live video protocol.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, summary in SUBCOMMANDS.items():
        if name in configured:
            sp = sub.add_parser(name, help=summary, description=summary)
            _load(name).configure(sp)
        else:
            sub.add_parser(name, help=summary, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in args_list if not a.startswith("-")), None)
    parser = build_parser({chosen} if chosen in SUBCOMMANDS else set())
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return 2
    module = _load(args.command)
    try:
        result: int = module.run(args)
        sys.stdout.flush()
    except CommandFailed as exc:
        print(f"harness {args.command}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`harness completion bash | head`): not an error of ours.
        # Point stdout at /dev/null so the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
