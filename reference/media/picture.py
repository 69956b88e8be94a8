"""A decoded picture's luma plane as plain bytes: what the render audit reads."""

from __future__ import annotations

from dataclasses import dataclass

import av

# Formats whose first plane is 8-bit luma, one byte per pixel: what the
# software decoder and every hardware download path in reference.codecs give.
_EIGHT_BIT_LUMA_FIRST = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "gray"}
)


@dataclass(frozen=True, slots=True)
class LumaPlane:
    """Row-major 8-bit luma; row `y` starts at byte `y * stride`."""

    width: int
    height: int
    stride: int
    data: bytes

    def __post_init__(self) -> None:
        if self.stride < self.width or len(self.data) < self.stride * self.height:
            raise ValueError(
                f"{len(self.data)} bytes cannot hold {self.width}x{self.height} "
                f"luma with stride {self.stride}"
            )

    @classmethod
    def from_frame(cls, frame: av.VideoFrame) -> LumaPlane:
        if frame.format.name not in _EIGHT_BIT_LUMA_FIRST:
            raise ValueError(f"no 8-bit luma plane in pixel format {frame.format.name!r}")
        plane = frame.planes[0]
        return cls(frame.width, frame.height, plane.line_size, bytes(plane))

    def region_mean(self, left: int, top: int, right: int, bottom: int) -> float:
        """Mean luma over columns [left, right) and rows [top, bottom)."""
        total = 0
        for y in range(top, bottom):
            offset = y * self.stride
            total += sum(self.data[offset + left : offset + right])
        return total / ((right - left) * (bottom - top))
