"""Certify the independent peers with each planted bug and tabulate what the harness said.

Needs a checkout with `harness certify` (run from its root, so that its `harness` is
imported). For each bug, the scenarios where the broken rule shows run with the buggy peer,
and every rule of the role is judged there, so that both misses and wrong-ID blames show:

    python /path/to/tests/independent/certify_bugs.py viewer --out /tmp/bugs [--bug NAME ...]
    python /path/to/tests/independent/certify_bugs.py summary /tmp/bugs

The summary prints, per bug, the expected ID's status and every FAIL with its scenario and
first evidence line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable

VIEWER_CMD = (f"{PY} {HERE / 'lvs_viewer.py'} --connect {{host}}:{{port}} --secret {{secret}} "
              "--telemetry {telemetry} --viewer-id {viewer_id} --protocol-version {version}")
PRIMARY_CMD = (f"{PY} {HERE / 'lvs_primary.py'} --listen {{host}}:{{port}} --secret {{secret}} "
               "--width {width} --height {height} --fps {fps} --bitrate {bitrate} --gop {gop} "
               "--control {control} --protocol-version {version}")

# bug -> (expected ID, scenarios where the situation arises)
VIEWER_BUGS: dict[str, tuple[str, list[str]]] = {
    "ignores_snapshot": ("EVT-1", ["snapshot-without-events", "first-connect"]),
    "flap": ("STATE-6", ["keyframes-mid-stream", "first-connect"]),
    "recover_while_paused": ("STATE-6", ["stall-while-paused", "pause-resume"]),
    "early_keyframe_request": ("NEG-4", ["first-connect", "viewer-unknown-messages"]),
    "no_keyframe_retry": ("WD-2", ["keyframe-retries-exhausted", "frame-loss-recovery"]),
    "no_backoff": ("RECON-1", ["proxy-disabled", "primary-restart", "reset-peer"]),
    "decode_stale_epoch": ("EPOCH-3", ["stale-epoch-injection", "reconfigure-mid-stream"]),
    "hello_not_first": ("VER-1", ["first-connect"]),
    "no_flush": ("STATE-4", ["reconfigure-mid-stream", "stale-epoch-injection"]),
    "apply_stale_state": ("EPOCH-4", ["reorder-accept-after-reconfigure", "reorder-accept-vs-state",
                                      "stale-epoch-injection"]),
    "slow_heartbeat": ("HB-1", ["first-connect", "pause-resume"]),
    "reconnect_on_pause": ("STATE-5", ["pause-resume", "stall-while-paused"]),
    "streaming_without_keyframe": ("STATE-3", ["first-connect", "reconfigure-mid-stream"]),
    "keeps_decoder": ("STATE-7", ["primary-restart", "proxy-disabled",
                                  "keyframe-retries-exhausted"]),
    "late_watchdog": ("WD-1", ["frame-loss-recovery", "keyframe-retries-exhausted"]),
    "no_liveness": ("HB-2", ["primary-silent", "heartbeat-loss"]),
    "silent_close": ("FRAME-2", ["viewer-malformed-frames"]),
    "accept_rolls_back": ("NEG-2", ["reorder-accept-after-reconfigure", "reorder-accept-vs-state"]),
}
PRIMARY_BUGS: dict[str, tuple[str, list[str]]] = {
    "active_before_key_on_resume": ("KEY-1", ["pause-resume", "stall-while-paused"]),
    "accept_wrong_hmac": ("AUTH-2", ["wrong-secret", "replayed-answer"]),
    "state_as_event": ("STATE-8", ["reconfigure-mid-stream", "pause-resume"]),
    "delta_before_key": ("KEY-4", ["late-join-mid-stream", "many-late-joiners"]),
    "media_before_accept": ("NEG-1", ["first-connect", "late-join-mid-stream"]),
    "reused_nonce": ("AUTH-1", ["wrong-secret", "proxy-disabled", "primary-restart"]),
    "no_proto": ("VER-2", ["first-connect"]),
    "restart_keeps_epoch": ("EPOCH-1", ["reconfigure-mid-stream", "late-join-mid-reconfiguration"]),
    "slow_heartbeat": ("HB-1", ["first-connect", "pause-resume"]),
    "error_on_unknown": ("VER-3", ["unknown-messages"]),
    "silent_reject": ("NEG-3", ["unsatisfiable-request"]),
    "late_join_no_key": ("KEY-3", ["late-join-mid-stream", "many-late-joiners"]),
    "no_auth_timeout": ("AUTH-3", ["half-open-sockets"]),
    "ignore_keyframe_request": ("KEY-2", ["frame-loss-recovery", "keyframe-retries-exhausted"]),
    "act_before_auth": ("AUTH-4", ["half-open-sockets"]),
    "state_to_v1": ("LEGACY-2", ["legacy-viewer"]),
    "snapshot_after_accept": ("SNAP-1", ["first-connect", "late-join-mid-stream"]),
}


def run(role: str, out: Path, bugs: list[str], workers: int, seed: int) -> None:
    table = VIEWER_BUGS if role == "viewer" else PRIMARY_BUGS
    base = VIEWER_CMD if role == "viewer" else PRIMARY_CMD
    for bug in bugs or list(table):
        expected, scenarios = table[bug]
        report = out / f"{role}-{bug}"
        command = [PY, "-m", "harness.cli", "certify", role, "--command", f"{base} --bug {bug}",
                   "-k", " or ".join(scenarios), "-n", str(workers), "--seed", str(seed),
                   "--report-dir", str(report)]
        print(f"== {role} {bug} (expect {expected}): {' '.join(scenarios)}", flush=True)
        done = subprocess.run(command, capture_output=True, text=True)
        (out / f"{role}-{bug}.log").write_text(done.stdout + done.stderr)
        print("   " + (done.stdout.strip().splitlines() or ["(no output)"])[-2], flush=True)


def summary(out: Path) -> None:
    for cert in sorted(out.glob("*/certificate.json")):
        role, _, bug = cert.parent.name.partition("-")
        table = VIEWER_BUGS if role == "viewer" else PRIMARY_BUGS
        expected = table.get(bug, ("?", []))[0] if bug else "-"
        data = json.loads(cert.read_text())
        statuses = {r["id"]: r["status"] for r in data["requirements"]}
        fails = [r for r in data["requirements"] if r["status"] == "FAIL"]
        print(f"{role:7} {bug or '(correct)':28} expect {expected:8} -> "
              f"{statuses.get(expected, 'n/a'):13} grade {data['grade']}")
        for r in fails:
            for s in r["scenarios"]:
                if s["status"] == "FAIL":
                    first = (s.get("evidence") or [""])[0]
                    print(f"        FAIL {r['id']:9} {s['name']}: {s['summary'][:110]}")
                    if first:
                        print(f"             {str(first)[:160]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("viewer", "primary", "summary"))
    parser.add_argument("dir", nargs="?", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--bug", action="append", default=[])
    parser.add_argument("-n", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.what == "summary":
        summary(args.dir or args.out)
        return 0
    if args.out is None:
        parser.error("--out is required")
    args.out.mkdir(parents=True, exist_ok=True)
    run(args.what, args.out, args.bug, args.n, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
