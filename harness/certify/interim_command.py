"""`harness certify` with only its `matrix` subcommand, until harness/commands/certify.py.

Temporary: harness/cli.py loads this module for `harness certify` only while
harness.commands.certify does not exist. The full command registers matrix.py's
configure/run pair as its `matrix` subcommand itself, and this file goes.
"""

from __future__ import annotations

import argparse

from harness.certify import matrix


def configure(parser: argparse.ArgumentParser) -> None:
    roles = parser.add_subparsers(dest="role", metavar="ROLE", required=True)
    matrix.configure(
        roles.add_parser(
            "matrix",
            help="compare certificates side by side in one index.html",
            description="Compare certificates side by side (implementations x requirements) "
            "in one index.html.",
        )
    )


def run(args: argparse.Namespace) -> int:
    return matrix.run(args)
