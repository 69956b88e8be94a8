"""report.html from a hand-written run directory: content, escaping, bad traces, speed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from harness.report.html import read_trace_digest, write_html

HOSTILE = "<script>alert('pwned')</script>"
T0 = 5000.0


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":")) + "\n"


def _viewer(t: float, viewer: str, state: str, epoch: int | None) -> dict[str, Any]:
    return {
        "t": T0 + t,
        "event": "state",
        "viewer": viewer,
        "state": state,
        "previous": "?",
        "epoch": epoch,
        "kind": "telemetry",
    }


def _primary(t: float, state: str, epoch: int) -> dict[str, Any]:
    return {"t": T0 + t, "kind": "primary", "what": "state", "stream_state": state, "epoch": epoch}


def _frame(t: float, direction: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "t": T0 + t,
        "kind": "frame",
        "tap": "viewer_side:v1",
        "conn": "c1",
        "dir": direction,
        "type": kind,
        "flags": 0,
        "key": False,
        "epoch": 1,
        "seq": 9,
        "ts": 0,
        "len": 900,
        **fields,
    }


def _fault(t: float, source: str, fault: str, **fields: Any) -> dict[str, Any]:
    return {"t": T0 + t, "kind": "fault", "source": source, "fault": fault, **fields}


def _trace(path: Path) -> None:
    records: list[dict[str, Any] | str] = [
        _primary(0.0, "RECONFIGURING", 1),
        {"t": T0 + 0.1, "kind": "action", "action": "join", "viewer": "v1"},
        _viewer(0.2, "v1", "SOCKET_CONNECTED", None),
        _viewer(0.3, "v1", "AUTHENTICATING", None),
        _primary(0.5, "ACTIVE", 1),
        _viewer(0.6, "v1", "STREAMING", 1),
        {
            "t": T0 + 0.7,
            "event": "rendered",
            "viewer": "v1",
            "epoch": 1,
            "frame": 3,
            "stream_epoch": 1,
            "kind": "telemetry",
        },
        "{this line is not json\n",
        _frame(0.8, "p2v", "VIDEO"),
        _fault(1.0, "toxiproxy", "latency", type="latency", stream="downstream", name="lag"),
        _fault(1.1, "frame_proxy", "stale_epoch", fault_id=1, action="added", id=HOSTILE),
        _fault(1.2, "frame_proxy", "stale_epoch", fault_id=1, action="injected"),
        {"t": T0 + 1.3, "kind": "action", "action": "reconfigure", "note": HOSTILE},
        _frame(1.35, "v2p", "CONTROL", msg="REQ_KEYFRAME 1"),
        _primary(1.4, "RECONFIGURING", 2),
        _viewer(1.5, HOSTILE, HOSTILE, 7),
        _viewer(1.6, "v1", "RECONFIGURING", 2),
        _fault(2.0, "toxiproxy", "removed", name="lag"),
        _fault(2.1, "frame_proxy", "stale_epoch", fault_id=1, action="removed"),
        {"t": T0 + 2.5, "kind": "note", "text": HOSTILE},
        '{"t":5003.0,"kind":"frame","tap":"viewer_side:v1","conn":"c1","dir":"p2v","ty',
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for record in records:
            out.write(record if isinstance(record, str) else _line(record))


def _scenario(run_dir: Path, name: str, verdict: str, trace: Path | None) -> dict[str, Any]:
    return {
        "name": name,
        "path": str(run_dir / f"{name}.yaml"),
        "covers": ["EPOCH-3", "STATE-3"],
        "seed": 42,
        "verdict": verdict,
        "duration": 2.6,
        "problems": [HOSTILE] if verdict == "FAIL" else [],
        "failures": [],
        "trace": None if trace is None else str(trace),
        "pcap": str(run_dir / "scenarios" / name / "wire.pcapng"),
        "backends": {"primary": "software"},
        "timeline": [{"t": 0.1, "step": "do join v1", "line": 7, "waited": 0.4}],
        "requirements": [
            {
                "requirement": "EPOCH-3",
                "status": verdict,
                "summary": f"summary {HOSTILE}",
                "evidence": [{"t": T0 + 1.45, "what": f"stale frame {HOSTILE}", "where": "v1"}],
                "rule": "stale frames are dropped",
            },
            {
                "requirement": "STATE-3",
                "status": "NOT_OBSERVED",
                "summary": "no STREAMING seen",
                "evidence": [],
                "rule": "rule",
            },
        ],
    }


def _report(scenarios: list[dict[str, Any]], seed: int = 1234567) -> dict[str, Any]:
    return {
        "run": {
            "id": "run-7",
            "seed": seed,
            "started": "2026-01-01T00:00:00",
            "duration": 12.5,
            "versions": {"python": "3.11", "toxiproxy": HOSTILE},
            "codec_backends": ["software"],
        },
        "totals": {"scenarios": len(scenarios) + 1, "passed": 1, "failed": len(scenarios)},
        "broken_files": [{"file": "bad.yaml", "error": f"line 3: {HOSTILE}"}],
        "scenarios": scenarios,
        "requirements": {
            "EPOCH-3": {
                "rule": "stale frames are dropped",
                "verdict": "FAIL",
                "scenarios": [
                    {"scenario": s["name"], "status": s["verdict"], "summary": "", "evidence": []}
                    for s in scenarios
                ],
            },
            "STATE-3": {"rule": "streaming predicate", "verdict": "NOT_OBSERVED", "scenarios": []},
            "WD-1": {"rule": f"watchdog {HOSTILE}", "verdict": "NOT_COVERED", "scenarios": []},
        },
    }


def test_report_shows_the_run(tmp_path: Path) -> None:
    good = tmp_path / "scenarios" / "reconfigure" / "trace.jsonl"
    _trace(good)
    scenarios = [
        _scenario(tmp_path, "reconfigure", "FAIL", good),
        _scenario(tmp_path, "lost-trace", "PASS", tmp_path / "scenarios" / "gone" / "trace.jsonl"),
        _scenario(tmp_path, "no-trace", "PASS", None),
    ]
    path = write_html(tmp_path, _report(scenarios))

    assert path == tmp_path / "report.html"
    page = path.read_text(encoding="utf-8")
    for name in ("reconfigure", "lost-trace", "no-trace"):
        assert name in page
    for req in ("EPOCH-3", "STATE-3", "WD-1"):
        assert req in page
    assert "<svg" in page
    assert "1234567" in page and "harness run --seed 1234567" in page
    assert 'href="scenarios/reconfigure/trace.jsonl"' in page
    assert "2 malformed line(s) skipped (line 8, 21)" in page
    assert "trace not readable" in page  # the missing trace is reported, not raised
    assert "no trace recorded" in page
    # The only script element is the page's own; the data's arrives escaped.
    assert page.count("<script") == 1
    assert "&lt;script&gt;" in page
    assert "alert(" not in page.replace("alert(&#x27;", "")
    # Failed scenarios open, passed ones closed.
    assert re.search(r'<details class="sc" id="s-0" open>', page)
    assert re.search(r'<details class="sc" id="s-1">', page)


def test_trace_digest(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    _trace(path)
    digest = read_trace_digest(path)

    assert digest.problem is None
    assert digest.malformed == [8, 21]  # a bad JSON line, a frame cut short
    assert digest.frames == 2
    assert digest.end == 2.5
    v1 = digest.viewers["v1"]
    assert [s for _, s, _ in v1.states.changes] == [
        "SOCKET_CONNECTED",
        "AUTHENTICATING",
        "STREAMING",
        "RECONFIGURING",
    ]
    assert len(v1.rendered) == 1 and len(v1.keyframe_requests) == 1
    assert [(s, e) for _, s, e in digest.primary.changes] == [
        ("RECONFIGURING", 1),
        ("ACTIVE", 1),
        ("RECONFIGURING", 2),
    ]
    spans = {f.label: f for f in digest.faults}
    assert spans["lag"].stop is not None and abs(spans["lag"].stop - 2.0) < 1e-9
    assert len(spans[HOSTILE].applied) == 1
    assert [a for _, a, _ in digest.actions] == ["join", "reconfigure"]


def _big_trace(path: Path, records: int, index: int) -> None:
    """A cheap trace: mostly media frames, a state change and a fault now and then."""
    frame = (
        '{{"t":{t:.6f},"kind":"frame","tap":"viewer_side:v{v}","conn":"c1","dir":"p2v",'
        '"type":"VIDEO","flags":0,"key":false,"epoch":{e},"seq":{n},"ts":0,"len":1200}}\n'
    )
    states = ("SOCKET_CONNECTED", "AUTHENTICATING", "NEGOTIATING", "STREAMING", "RECOVERING")
    lines = []
    for n in range(records):
        t = 100.0 + n * 0.001
        if n % 500 == 0:
            lines.append(
                f'{{"t":{t:.6f},"event":"state","viewer":"v{n % 3}",'
                f'"state":"{states[n // 500 % 5]}","previous":"DISCONNECTED",'
                f'"epoch":{n // 4000},"kind":"telemetry"}}\n'
            )
        elif n % 50 == 0:
            lines.append(
                f'{{"t":{t:.6f},"event":"rendered","viewer":"v{n % 3}","epoch":1,"frame":{n},'
                f'"stream_epoch":1,"kind":"telemetry"}}\n'
            )
        elif n % 2000 == 1:
            lines.append(
                f'{{"t":{t:.6f},"kind":"primary","what":"state","stream_state":"ACTIVE",'
                f'"epoch":{n // 4000}}}\n'
            )
        elif n % 5000 == 7:
            lines.append(
                f'{{"t":{t:.6f},"kind":"fault","source":"toxiproxy","fault":"latency",'
                f'"name":"lag{index}","stream":"downstream"}}\n'
            )
        else:
            lines.append(frame.format(t=t, v=n % 3, e=n // 4000, n=n))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines))


def test_thirty_large_scenarios_render_into_a_bounded_page(tmp_path: Path) -> None:
    # Its speed is benchmarks/report_render.py's: timed unit tests fail on a loaded host.
    scenarios = []
    for i in range(30):
        trace = tmp_path / "scenarios" / f"s{i}" / "trace.jsonl"
        _big_trace(trace, 20_000, i)
        scenarios.append(_scenario(tmp_path, f"s{i}", "FAIL" if i % 4 == 0 else "PASS", trace))

    path = write_html(tmp_path, _report(scenarios))
    page = path.read_text(encoding="utf-8")
    assert page.count("<svg") == 30
    assert len(page) < 5_000_000
