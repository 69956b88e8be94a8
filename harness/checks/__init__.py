"""Checkers: one online monitor per requirement ID, fed a trace record by record.

`monitors/` holds one module per catalogue group (VER, AUTH, SNAP...), `engine`
feeds them in wire order, `registry.run_checks` is the batch form. A monitor reads
only the trace it is given, so a capture from a real device, turned into a trace
(`harness.wire.capture_trace`), is checked the same way as a harness run.
"""
