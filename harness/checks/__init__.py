"""Checkers: pure functions from a trace to verdicts tagged with requirement IDs.

Each module holds one family of rules (SNAP, EPOCH, WD...); `registry.CHECKS`
maps every requirement ID to its checker. A checker reads only the trace it
is given, so a pcap from a real device, converted to a trace, is checked the
same way as a harness run.
"""
