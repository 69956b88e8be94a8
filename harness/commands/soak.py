"""`harness soak`: hours of seeded chaos against the reference peers (or an external
Primary and external Viewers, the testees), judged online."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.scenarios.network import Network
    from harness.soak.testees import SoakTestees

HELP = "Soak the peers: a seeded nemesis, a churning Viewer population, verdicts per window."


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="smoke", help="smoke | nightly | mobile | FILE")
    parser.add_argument("--duration", default=None, help="e.g. 90s, 10m, 8h (default: profile)")
    parser.add_argument("--viewers", type=int, default=None, help="population size")
    parser.add_argument("--seed", type=int, default=1, help="seed of the nemesis and the faults")
    parser.add_argument("--report-dir", type=Path, default=None, help="default reports/soak-<time>")
    parser.add_argument("--keep-all", action="store_true", help="keep every trace segment")
    parser.add_argument("--history", type=Path, default=None,
                        help="append this run to DIR and render DIR/trend.html")
    parser.add_argument("--shrink", type=Path, default=None, metavar="RUN_DIR/FAIL_ID",
                        help="shrink a FAIL's reproduction to the smallest failing scenario")
    parser.add_argument("--attempts", type=int, default=1,
                        help="with --shrink: runs per candidate (a rare FAIL may need several)")
    parser.add_argument("--schedule", action="store_true",
                        help="print the nemesis schedule and exit without running")
    parser.add_argument("--quiet", action="store_true", help="no live dashboard")
    parser.add_argument("--fleet", choices=["local", "locust"], default="local",
                        help="local: a Viewer process; locust: Locust master and workers")
    parser.add_argument("--workers", type=int, default=1, help="with --fleet locust: workers")
    parser.add_argument(
        "--fleet-bind", default=None, metavar="ADDRESS",
        help="with --fleet locust: the address the Locust master and the fault path's entry "
        "listen on, so that workers on other hosts can join (default 127.0.0.1)")
    parser.add_argument("--fleet-master-port", type=int, default=None, metavar="PORT",
                        help="with --fleet locust: the master's port (default: a free one)")
    parser.add_argument(
        "--fleet-remote-workers", type=int, default=0, metavar="N",
        help="with --fleet locust: workers on other hosts the master waits for, beside the "
        "local --workers, before it starts the Viewers (default 0)")
    parser.add_argument(
        "--primary-command", default=None, metavar="CMD",
        help="run this external Primary (the testee) instead of the reference one; "
        "placeholders as in certify: {host} {port} {secret} {width} {height} {fps} {bitrate} "
        "{gop} {control} ...")
    parser.add_argument(
        "--primary-control", default=None, metavar="URL",
        help="base URL of the external Primary's test-control interface (PROTOCOL.md 15); "
        "without it or {control} in the command, the nemesis draws no reconfigure, "
        "restart_encoder, pause or stop_stream")
    parser.add_argument(
        "--viewer-command", default=None, metavar="CMD",
        help="add external Viewers (testees) to the population; placeholders as in certify: "
        "{host} {port} {secret} {telemetry} {viewer_id} {telemetry_url} ...")
    parser.add_argument("--external-viewers", type=int, default=None, metavar="N",
                        help="with --viewer-command: how many (default 1)")
    parser.add_argument(
        "--listen", default=None, metavar="HOST[:PORT]",
        help="with --viewer-command: where the external Viewers' taps and telemetry inlets "
        "listen (a device on the network); a fixed port needs --external-viewers 1, whose "
        "every incarnation gets it (default 127.0.0.1, a free port)")
    parser.add_argument(
        "--advertise", default=None, metavar="HOST",
        help="with --viewer-command: the address put in {host} and printed for a device "
        "(default: the listen host)")
    parser.add_argument(
        "--telemetry-port", default=None, metavar="PORT",
        help="with --viewer-command and --external-viewers 1: a fixed port for "
        "{telemetry_url} (a device keeps one setting)")
    parser.add_argument(
        "--primary-address", default=None, metavar="HOST:PORT",
        help="the external Primary listens there (a device): the harness connects to it; "
        "--primary-command, if given, starts it there (and again for restart_primary); "
        "without one it was started by hand and restart_primary is not drawn")


def run(args: argparse.Namespace) -> int:
    from harness.soak.profile import ProfileError, load_profile, parse_duration

    if args.shrink is not None:
        from harness.soak.shrink import shrink_command

        if args.attempts < 1:
            print("harness soak: --attempts must be at least 1", file=sys.stderr)
            return 2
        return shrink_command(args.shrink, args.attempts)
    fleet_workers = None
    if args.fleet == "locust":
        import importlib.util

        # Found, not imported: importing Locust monkey-patches this process for gevent.
        if importlib.util.find_spec("locust") is None:
            print("harness soak: --fleet locust needs Locust (pip install locust)",
                  file=sys.stderr)
            return 2
        if args.workers < 0 or args.fleet_remote_workers < 0:
            print("harness soak: --workers and --fleet-remote-workers cannot be negative",
                  file=sys.stderr)
            return 2
        if args.workers + args.fleet_remote_workers < 1:
            print("harness soak: --fleet locust needs a worker (--workers, "
                  "--fleet-remote-workers)", file=sys.stderr)
            return 2
        fleet_workers = args.workers
    elif args.fleet_bind is not None or args.fleet_master_port is not None or (
            args.fleet_remote_workers):
        print("harness soak: --fleet-bind, --fleet-master-port and --fleet-remote-workers "
              "need --fleet locust", file=sys.stderr)
        return 2
    if args.fleet_bind is not None:
        import socket

        try:
            socket.getaddrinfo(args.fleet_bind, None)
        except OSError as exc:
            print(f"harness soak: --fleet-bind {args.fleet_bind!r}: {exc}", file=sys.stderr)
            return 2
    from harness.soak.testees import SoakTestees

    if args.external_viewers is not None and args.viewer_command is None:
        print("harness soak: --external-viewers needs --viewer-command", file=sys.stderr)
        return 2
    testees = SoakTestees(
        primary_command=args.primary_command,
        primary_control=args.primary_control,
        viewer_command=args.viewer_command,
        external_viewers=(args.external_viewers if args.external_viewers is not None else 1)
        if args.viewer_command is not None else 0,
        primary_address=args.primary_address,
    )
    network, problem = _network(args, testees)
    if problem is not None:
        print(f"harness soak: {problem}", file=sys.stderr)
        return 2
    try:
        profile = load_profile(args.profile)
        if args.duration is not None:
            profile.duration = parse_duration(args.duration)
        if args.viewers is not None:
            if args.viewers < 1:
                raise ValueError("--viewers must be at least 1")
            profile.viewers = args.viewers
        testees.check(profile.stream, profile.primary_deviations)
    except (ProfileError, ValueError) as exc:  # CommandError is a ValueError
        print(f"harness soak: {exc}", file=sys.stderr)
        return 2
    if profile.duration <= 0:
        print("harness soak: the duration must be above 0", file=sys.stderr)
        return 2
    from harness.soak.report import write_reports
    from harness.soak.run import SoakRun

    directory = args.report_dir or Path("reports") / time.strftime("soak-%Y%m%d-%H%M%S")
    directory.mkdir(parents=True, exist_ok=True)
    dashboard = None
    if not args.quiet and not args.schedule:
        from harness.soak.console import Dashboard

        dashboard = Dashboard(profile)
    soak = SoakRun(profile, directory, args.seed, keep_all=args.keep_all, dashboard=dashboard,
                   fleet_workers=fleet_workers, fleet_bind=args.fleet_bind,
                   fleet_master_port=args.fleet_master_port,
                   fleet_remote_workers=args.fleet_remote_workers, testees=testees,
                   network=network)
    print(soak.schedule.describe())
    if args.schedule:
        return 0
    import asyncio
    import json

    (directory / "schedule.json").write_text(json.dumps(soak.schedule.as_dict(), indent=1))
    if dashboard is not None:
        with dashboard:
            result = asyncio.run(soak.soak())
    else:
        result = asyncio.run(soak.soak())
    paths = write_reports(result)
    if args.history is not None:
        from harness.soak.history import append_run

        trend = append_run(args.history, result)
        print(f"history: {trend}")
    from harness.soak.console import summary_lines

    for line in summary_lines(result, paths):
        print(line)
    return EXIT[result.verdict]


def _network(
    args: argparse.Namespace, testees: SoakTestees
) -> tuple[Network | None, str | None]:
    """The testee-facing addresses (certify's, harness/scenarios/network.py), or why
    they cannot be used (one line)."""
    from harness.scenarios.network import Network, NetworkError

    try:
        network = Network.from_options(
            args.listen, args.advertise, args.primary_address, args.telemetry_port)
    except NetworkError as exc:
        return None, str(exc)
    viewer_side = [f"--{o.replace('_', '-')}" for o in ("listen", "advertise", "telemetry_port")
                   if getattr(args, o) is not None]
    if viewer_side and not testees.viewers_external:
        return None, (f"{', '.join(viewer_side)}: where external Viewers connect; "
                      "needs --viewer-command")
    fixed = [what for what, port in (("--listen", network.listen_port),
                                     ("--telemetry-port", network.telemetry_port)) if port]
    if fixed and testees.external_viewers > 1:
        return None, (f"a fixed port ({', '.join(fixed)}) serves one external Viewer; "
                      f"--external-viewers is {testees.external_viewers}")
    return network, None


# PASS, FAIL, and INCONCLUSIVE (a reference peer FAILed beside a testee: certify's 3).
EXIT = {"PASS": 0, "FAIL": 1, "INCONCLUSIVE": 3}
