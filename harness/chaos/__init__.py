"""Frame-level chaos: a proxy that decodes LVS frames and drops, delays, reorders,
duplicates, corrupts, truncates, stalls or replays them on the way (docs/frame-faults.md).
"""

from harness.chaos.faults import FAULTS, Fault, FaultSpecError, make_fault
from harness.chaos.proxy import FrameProxy, FrameProxyThread

__all__ = ["FAULTS", "Fault", "FaultSpecError", "FrameProxy", "FrameProxyThread", "make_fault"]
