"""Without a packet backend, packet-level scenarios are skipped, and the reason is shown."""

from __future__ import annotations


def test_packet_scenarios_skip_with_the_reason(tmp_path: object) -> None:
    """No usable backend: the scenario is reported skipped, and the reason says why."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-rs",
            "-q",
            str(root / "scenarios" / "packet-loss-1.yaml"),
            "--lvs-run-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "LVS_PACKET_BACKEND": "no-such-backend"},
        check=False,
    )
    assert "1 skipped" in done.stdout
    assert "packet-level scenario: packet backend no-such-backend" in done.stdout
