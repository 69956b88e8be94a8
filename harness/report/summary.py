"""Aggregate the per-scenario results of one run into report.json."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

from reference.protocol.requirements import CATALOGUE


def versions() -> dict[str, str]:
    import shutil

    import av
    import scapy

    from harness.toxiproxy.launcher import BINARY_NAME

    return {
        "python": platform.python_version(),
        "harness": _harness_version(),
        "pyav": av.__version__,
        "ffmpeg": ".".join(map(str, av.library_versions.get("libavcodec", ()))) or "?",
        "scapy": scapy.VERSION,
        "toxiproxy": "binary on PATH" if shutil.which(BINARY_NAME) else "embedded",
        "platform": platform.platform(),
    }


def _harness_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lvs-harness")
    except PackageNotFoundError:
        return "source"


def collect_results(run_dir: Path) -> list[dict[str, Any]]:
    results = []
    for path in sorted((run_dir / "scenarios").glob("*/result.json")):
        results.append(json.loads(path.read_text()))
    return results


def requirement_matrix(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Requirement ID -> its worst verdict over the run, and each scenario's verdict."""
    order = {"FAIL": 0, "PASS": 1, "NOT_OBSERVED": 2}
    matrix: dict[str, dict[str, Any]] = {}
    for r in CATALOGUE:
        matrix[r.id] = {"rule": r.rule, "verdict": "NOT_COVERED", "scenarios": []}
    for result in results:
        for verdict in result["requirements"]:
            entry = matrix.get(verdict["requirement"])
            if entry is None:
                continue
            entry["scenarios"].append(
                {
                    "scenario": result["name"],
                    "status": verdict["status"],
                    "summary": verdict["summary"],
                    "evidence": verdict["evidence"],
                }
            )
            current = entry["verdict"]
            if current == "NOT_COVERED" or order[verdict["status"]] < order.get(current, 3):
                entry["verdict"] = verdict["status"]
    return matrix


def write_report(
    run_dir: Path, *, run_id: str, seed: int, started: float, broken: list[dict[str, Any]]
) -> dict[str, Any]:
    results = collect_results(run_dir)
    backends = sorted({b for r in results for b in r.get("backends", {}).values() if b})
    report = {
        "run": {
            "id": run_id,
            "seed": seed,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
            "duration": round(time.time() - started, 2),
            "versions": versions(),
            "codec_backends": backends,
        },
        "totals": {
            "scenarios": len(results) + len(broken),
            "passed": sum(1 for r in results if r["verdict"] == "PASS"),
            "failed": sum(1 for r in results if r["verdict"] == "FAIL") + len(broken),
        },
        "broken_files": broken,
        "scenarios": results,
        "requirements": requirement_matrix(results),
    }
    (run_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report
