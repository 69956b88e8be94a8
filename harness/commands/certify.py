"""`harness certify viewer|primary --command CMD`: certify a third-party peer (docs/certify.md).

`harness certify matrix DIR...` compares certificates side by side (harness/certify/matrix.py).

Every scenario that offers the role runs with the testee in it (no file copied or
edited), the testee alone is judged on every rule of its role, and the run ends with
a grade and `certificate.json` in the report directory. Exit status: 0 CONFORMANT or
CONFORMANT WITH WARNINGS, 1 NOT CONFORMANT, 3 INCONCLUSIVE, 4 usage error, 5 nothing run.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from harness.certify.grade import EXIT_NOTHING_RUN, EXIT_USAGE, Grade, exit_status

ROLES = ("viewer", "primary")
MATRIX = "matrix"
GRADE_COLOURS = {
    Grade.CONFORMANT: "green",
    Grade.CONFORMANT_WITH_WARNINGS: "yellow",
    Grade.NOT_CONFORMANT: "red",
    Grade.INCONCLUSIVE: "yellow",
}
STATUS_COLOURS = {
    "PASS": "green",
    "FAIL": "red",
    "INCONCLUSIVE": "yellow",
    "NOT_OBSERVED": "dim",
    "NOT_APPLICABLE": "dim",
}


def configure(parser: argparse.ArgumentParser) -> None:
    roles = parser.add_subparsers(dest="role", metavar="ROLE", title="roles", required=True)
    for role in ROLES:
        sub = roles.add_parser(
            role,
            help=f"certify a {role.capitalize()} given by its command line",
            description=f"Certify a {role.capitalize()}: every scenario that offers the {role} "
            "role runs with it, and it alone is judged (docs/certify.md).",
        )
        _options(sub, role)
    from harness.certify import matrix

    matrix.configure(
        roles.add_parser(
            MATRIX,
            help="compare certificates side by side in one index.html",
            description="Compare certificates side by side (implementations x requirements) "
            "in one index.html.",
        )
    )


def _options(parser: argparse.ArgumentParser, role: str) -> None:
    parser.add_argument(
        "--command",
        dest="testee_command",
        required=True,
        help="the testee's command line, with placeholders such as {host} {port} {secret}"
        + (" {telemetry} {viewer_id}" if role == "viewer" else " {control}")
        + " (docs/certify.md lists them all)",
    )
    parser.add_argument(
        "--control",
        default=None,
        metavar="URL",
        help="base URL of the testee's test-control interface (PROTOCOL.md 15), when it "
        "serves one at a fixed address (otherwise use {control} in --command)",
    )
    parser.add_argument(
        "--listen",
        default=None,
        metavar="HOST[:PORT]",
        help="where the testee-facing listeners bind (a device on the network); a fixed "
        "port runs one scenario at a time",
    )
    parser.add_argument(
        "--advertise",
        default=None,
        metavar="HOST",
        help="the address put in {host} and printed for the device (default: the listen host)",
    )
    if role == "viewer":
        parser.add_argument(
            "--telemetry-port",
            default=None,
            metavar="PORT",
            help="a fixed port for {telemetry_url} (a device keeps one setting)",
        )
    else:
        parser.add_argument(
            "--primary-address",
            default=None,
            metavar="HOST:PORT",
            help="a Primary already listening there (a device): the harness connects to it",
        )
    parser.add_argument(
        "--operator",
        action="store_true",
        help="without a test-control interface, ask a person at the console to carry out "
        "each action, and continue when the wire shows it",
    )
    parser.add_argument(
        "--operator-deadline",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long the operator has for each action (default 60)",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="scenario files or folders (default: ./scenarios, else the packaged suite)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="GLOB",
        help="requirement IDs to judge (e.g. 'EPOCH-*'); only scenarios covering them run",
    )
    parser.add_argument(
        "--exclude", action="append", default=[], metavar="GLOB", help="requirement IDs not judged"
    )
    parser.add_argument("-k", dest="keyword", default=None, help="only scenarios matching EXPR")
    parser.add_argument(
        "-n",
        dest="workers",
        default="auto",
        help="parallel workers (default auto: one per CPU core, 0 for none)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for every random fault")
    parser.add_argument("--report-dir", type=Path, default=None, help="default reports/<run-id>")
    parser.add_argument(
        "--strict", action="store_true", help="a failed SHOULD makes the testee NOT CONFORMANT"
    )
    parser.add_argument(
        "--known-issues",
        type=Path,
        default=None,
        metavar="FILE",
        help="YAML list of {id, scenario, reason, expires}: expected failures",
    )
    parser.add_argument(
        "--testee-version", default=None, metavar="STR", help="the version the certificate names"
    )
    parser.set_defaults(junit=None, json=False, schedule="longest-first")


def _usage(problem: str) -> int:
    print(f"harness certify: {problem}", file=sys.stderr)
    return EXIT_USAGE


def _command_problem(command: str, role: str) -> str | None:
    """Why the testee command cannot run at all, checked before any scenario starts."""
    from harness.certify.substitute import CommandError, check_command

    try:
        check_command(command, role)
        argv = shlex.split(command)
    except (CommandError, ValueError) as exc:
        return str(exc)
    program = argv[0]
    if "{" in program:
        return None  # the program itself comes from a placeholder: known only when it starts
    if shutil.which(program) is None:
        return f"testee command not found: {program!r} (from --command {command!r})"
    return None


class _PlacementError(ValueError):
    """A network or operator option cannot be used (one line)."""


def _placement(args: argparse.Namespace) -> list[str]:
    """Put the network and operator options where every scenario reads them (the
    environment, which xdist workers inherit); return why scenarios must take turns
    (one device, one operator, one fixed port), empty when they need not."""
    from harness.scenarios.network import Network, NetworkError
    from harness.scenarios.operator import ControlPlan

    try:
        network = Network.from_options(
            args.listen,
            args.advertise,
            getattr(args, "primary_address", None),
            getattr(args, "telemetry_port", None),
        )
    except NetworkError as exc:
        raise _PlacementError(str(exc)) from None
    if args.operator_deadline <= 0:
        raise _PlacementError("--operator-deadline must be a positive number of seconds")
    plan = ControlPlan(operator=args.operator, deadline=args.operator_deadline)
    os.environ.update(network.to_environment() | plan.to_environment())
    turns = (
        ("--operator", args.operator),
        ("a fixed --listen port", network.listen_port != 0),
        ("a fixed --telemetry-port", network.telemetry_port != 0),
        ("--primary-address", network.primary_address is not None),
    )
    return [why for why, applies in turns if applies]


def run(args: argparse.Namespace) -> int:
    from harness.certify.run import CertifyOptions
    from harness.commands.run import scenario_paths

    role: str = args.role
    if role == MATRIX:
        from harness.certify import matrix

        return matrix.run(args)
    problem = _command_problem(args.testee_command, role)
    if problem is not None:
        return _usage(problem)
    options = CertifyOptions(
        role=role,
        command=args.testee_command,
        control=getattr(args, "control", None),
        only=tuple(args.only),
        exclude=tuple(args.exclude),
    )
    judged = options.judged_ids()
    if not judged:
        return _usage(f"--only/--exclude leave none of the {role}'s requirement IDs to judge")
    issues: list[Any] = []
    if args.known_issues is not None:
        from harness.certify.known_issues import KnownIssuesError, load_known_issues

        try:
            issues = load_known_issues(args.known_issues)
        except KnownIssuesError as exc:
            return _usage(str(exc))
    try:
        turns = _placement(args)
    except _PlacementError as exc:
        return _usage(str(exc))
    files, problem = scenario_paths(list(args.paths))
    if problem is not None:
        print(f"harness certify: {problem}", file=sys.stderr)
        return EXIT_USAGE if args.paths else EXIT_NOTHING_RUN
    if args.workers == "auto":
        # One scenario per core: each runs a testee process beside encoding and decoding
        # reference peers, and a starved reference peer is a harness fault (INCONCLUSIVE).
        args.workers = str(max(1, min(len(files), os.cpu_count() or 1)))
    if turns and args.workers != "0":
        print(f"harness certify: {', '.join(turns)}: scenarios run one at a time", file=sys.stderr)
        args.workers = "0"
    extra = ["--lvs-certify", role, "--lvs-certify-command", args.testee_command]
    if options.control:
        extra += ["--lvs-certify-control", options.control]
    for glob in options.only:
        extra += ["--lvs-certify-only", glob]
    for glob in options.exclude:
        extra += ["--lvs-certify-exclude", glob]
    started = time.time()

    def finish(console: Any, report: dict[str, Any], run_dir: Path) -> int:
        return _finish(console, report, run_dir, args, options, judged, issues, started)

    from harness.scenarios.suite import run_suite

    return run_suite(args, files, extra_args=extra, title=f"harness certify {role}", finish=finish)


def _finish(
    console: Any,
    report: dict[str, Any],
    run_dir: Path,
    args: argparse.Namespace,
    options: Any,
    judged: list[str],
    issues: list[Any],
    started: float,
) -> int:
    from harness.certify.assemble import RunFacts, Testee, build_certificate, write_certificate
    from harness.certify.run import gather
    from harness.cli import version

    entries = gather(run_dir)
    certificate = build_certificate(
        entries,
        Testee(options.role, options.command, None, args.testee_version),
        RunFacts(
            id=str(report["run"]["id"]),
            seed=int(report["run"]["seed"]),
            report_dir=run_dir,
            duration=time.time() - started,
            strict=bool(args.strict),
        ),
        judged,
        known_issues=issues,
        report=report,
        harness_version=version(),
    )
    path = write_certificate(certificate, run_dir)
    print_certificate(console, certificate, report)
    ran = int(certificate["run"]["scenarios_run"])
    grade = Grade(certificate["grade"])
    console.print(f"certificate: {path}", soft_wrap=True)
    if ran == 0:
        why = (
            "no scenario offers this role with this command (see the reasons above)"
            if certificate["scenarios"]
            else f"no scenario matched (-k {args.keyword!r})"
            if args.keyword
            else "no scenario collected"
        )
        console.print(f"[red]nothing run[/]: {why}", soft_wrap=True)
    if report["run"]["interrupted"]:
        console.print("[red]the run was interrupted: the certificate covers only what finished[/]")
        return 2
    return exit_status(grade, scenarios_run=ran)


def print_certificate(console: Any, certificate: dict[str, Any], report: dict[str, Any]) -> None:
    from rich.table import Table

    scenarios = Table(title="Scenarios")
    scenarios.add_column("Scenario", style="bold")
    scenarios.add_column("Verdict")
    scenarios.add_column("Why / duration", overflow="fold")
    for s in certificate["scenarios"]:
        colour = STATUS_COLOURS.get(s["verdict"], "red")
        detail = s["reason"] if not s["applicable"] else f"{s['duration']:.1f} s"
        for fault in s["harness_faults"]:
            detail += f"\nharness fault: {fault}"
        for problem in s["problems"]:
            detail += f"\n{problem.splitlines()[0]}"
        scenarios.add_row(s["name"], f"[{colour}]{s['verdict']}[/]", detail)
    console.print(scenarios)
    requirements = Table(title=f"Requirements ({certificate['testee']['role']})")
    requirements.add_column("ID", style="bold")
    requirements.add_column("Level")
    requirements.add_column("Status")
    requirements.add_column("Scenarios", overflow="fold")
    for r in certificate["requirements"]:
        colour = STATUS_COLOURS.get(r["status"], "red")
        status = f"[{colour}]{r['status']}[/]" + (" (expected)" if r["expected_failure"] else "")
        failing = [s["name"] for s in r["scenarios"] if s["status"] == "FAIL"]
        where = f"FAIL in {', '.join(failing)}" if failing else f"{len(r['scenarios'])} judged"
        requirements.add_row(r["id"], r["level"], status, where)
    console.print(requirements)
    for r in certificate["requirements"]:
        for s in r["scenarios"]:
            if s["status"] == "FAIL":
                console.print(f"[red]{r['id']}[/] in {s['name']}: {s['summary']}", soft_wrap=True)
    issues = certificate["known_issues"]
    for key, label in (("no_longer_occurring", "no longer occurring"), ("expired", "expired")):
        for issue in issues.get(key, []):
            console.print(
                f"[yellow]known issue {label}[/]: {issue['id']} {issue.get('scenario') or ''} "
                f"({issue['reason']})",
                soft_wrap=True,
            )
    grade = Grade(certificate["grade"])
    run = certificate["run"]
    console.print(
        f"[bold]grade: [{GRADE_COLOURS[grade]}]{grade.value}[/][/] "
        f"({certificate['testee']['role']}, {run['scenarios_run']} scenario(s) run, "
        f"{run['scenarios_not_applicable']} not applicable, seed {run['seed']})",
        soft_wrap=True,
    )
