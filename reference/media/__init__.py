"""Media for the reference peers: the synthetic camera and the render audit."""

from .picture import LumaPlane
from .source import (
    AuditResult,
    MarkerLayout,
    MarkerUnreadable,
    SyntheticSource,
    audit_picture,
    read_marker,
)

__all__ = [
    "AuditResult",
    "LumaPlane",
    "MarkerLayout",
    "MarkerUnreadable",
    "SyntheticSource",
    "audit_picture",
    "read_marker",
]
