"""A small RGB raster canvas and a PNG writer, standard library only (zlib + struct).

Enough to draw charts: filled rectangles, lines of any thickness, dotted lines and text
in a built-in 5x8 bitmap font (printable ASCII; the 8th row holds descenders), scaled
by whole pixels.

>>> c = Canvas(200, 100)
>>> c.line(10, 90, 190, 10, (200, 0, 0), width=2)
>>> c.text(10, 10, "p99 12.5 ms", (0, 0, 0), scale=2)
>>> Path("out.png").write_bytes(c.to_png())
"""

from __future__ import annotations

import struct
import zlib

__all__ = ["FONT_HEIGHT", "FONT_WIDTH", "Canvas", "Color", "encode_png", "glyph_rows"]

#: An RGB colour, each component 0..255.
Color = tuple[int, int, int]

#: Glyph cell size of the built-in font, in unscaled pixels (one pixel of spacing follows).
FONT_WIDTH = 5
FONT_HEIGHT = 8

# ASCII 32..126, 8 rows of 5 bits per glyph (bit 4 = leftmost pixel), two hex digits a row;
# the last row is for descenders (g, j, p, q, y, comma).
_FONT_HEX = (
    "000000000000000004040404040004000a0a0a00000000000a0a1f0a1f0a0a00040f140e051e0400"
    "18190204081303000c12140815120d00040408000000000002040808080402000804020202040800"
    "0004150e150400000004041f0404000000000000000c04080000001f0000000000000000000c0c00"
    "00010204081000000e11131519110e00040c040404040e000e11010204081f001f02040201110e00"
    "02060a121f0202001f101e0101110e000608101e11110e001f010204080808000e11110e11110e00"
    "0e11110f01020c00000c0c000c0c000000000c0c000c0408020408100804020000001f001f000000"
    "08040201020408000e110102040004000e11010d15150e000e11111f111111001e11111e11111e00"
    "0e11101010110e001c12111111121c001f10101e10101f001f10101e101010000e11101711110f00"
    "1111111f111111000e04040404040e000702020202120c0011121418141211001010101010101f00"
    "111b15151111110011111915131111000e11111111110e001e11111e101010000e11111115120d00"
    "1e11111e141211000f10100e01011e001f040404040404001111111111110e0011111111110a0400"
    "1111111515150a0011110a040a11110011110a04040404001f01020408101f000e08080808080e00"
    "00100804020100000e02020202020e00040a1100000000000000000000001f000804020000000000"
    "00000e010f110f001010161911111e0000000e1010110e0001010d1311110f0000000e111f100e00"
    "0609081c0808080000000f11110f010e101016191111110004000c0404040e00020006020202120c"
    "10101214181412000c04040404040e0000001a1515111100000016191111110000000e1111110e00"
    "00001e11111e101000000f11110f0101000016191010100000000e100e011e0008081c0808090600"
    "0000111111130d0000001111110a04000000111115150a000000110a040a110000001111110f010e"
    "00001f0204081f000204040804040200040404040404040008040402040408000000081502000000"
)
_FIRST, _LAST = 32, 126
_UNKNOWN = "?"


def glyph_rows(char: str) -> tuple[int, ...]:
    """The 8 row bitmasks of ``char`` in the built-in font (``?`` for unknown characters)."""
    code = ord(char) if len(char) == 1 else -1
    if not _FIRST <= code <= _LAST:
        code = ord(_UNKNOWN)
    start = (code - _FIRST) * FONT_HEIGHT * 2
    chunk = _FONT_HEX[start : start + FONT_HEIGHT * 2]
    return tuple(int(chunk[i : i + 2], 16) for i in range(0, len(chunk), 2))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(width: int, height: int, rgb: bytes | bytearray) -> bytes:
    """A PNG file (8-bit truecolour, no interlace) of ``rgb``: ``height`` rows of
    ``width * 3`` bytes."""
    if width < 1 or height < 1:
        raise ValueError("a PNG needs at least one pixel")
    stride = width * 3
    if len(rgb) != stride * height:
        raise ValueError(f"expected {stride * height} bytes of RGB, got {len(rgb)}")
    raw = bytearray()
    view = memoryview(rgb)
    for y in range(height):
        raw.append(0)  # filter type 0 (None): flat-colour charts compress well without one
        raw += view[y * stride : (y + 1) * stride]
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + _chunk(b"IEND", b"")
    )


class Canvas:
    """A ``width`` x ``height`` RGB image, origin at the top left, filled with ``background``."""

    def __init__(self, width: int, height: int, background: Color = (255, 255, 255)) -> None:
        if width < 1 or height < 1:
            raise ValueError("a canvas needs at least one pixel")
        self.width = width
        self.height = height
        self.pixels = bytearray(bytes(background) * (width * height))

    def pixel(self, x: int, y: int) -> Color:
        """The colour at (x, y)."""
        i = (y * self.width + x) * 3
        return (self.pixels[i], self.pixels[i + 1], self.pixels[i + 2])

    def set(self, x: int, y: int, color: Color) -> None:
        """Paint one pixel (ignored outside the canvas)."""
        if 0 <= x < self.width and 0 <= y < self.height:
            i = (y * self.width + x) * 3
            self.pixels[i : i + 3] = bytes(color)

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        """Fill the rectangle with corners (x0, y0) and (x1, y1), both included."""
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        if x0 >= self.width or x1 < 0 or y0 >= self.height or y1 < 0:
            return
        xa, xb = max(0, x0), min(self.width - 1, x1)
        ya, yb = max(0, y0), min(self.height - 1, y1)
        row = bytes(color) * (xb - xa + 1)
        for y in range(ya, yb + 1):
            i = (y * self.width + xa) * 3
            self.pixels[i : i + len(row)] = row

    def line(
        self, x0: int, y0: int, x1: int, y1: int, color: Color, *, width: int = 1, dot: int = 0
    ) -> None:
        """A straight line (Bresenham) with a square pen of ``width`` pixels; with
        ``dot`` > 0 only every other run of ``dot`` pixels is drawn (a dotted line)."""
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err = dx + dy
        lo, hi = -((width - 1) // 2), width // 2
        step = 0
        while True:
            if dot <= 0 or (step // dot) % 2 == 0:
                if width == 1:
                    self.set(x0, y0, color)
                else:
                    self.rect(x0 + lo, y0 + lo, x0 + hi, y0 + hi, color)
            if x0 == x1 and y0 == y1:
                return
            step += 1
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy

    @staticmethod
    def text_size(text: str, scale: int = 1) -> tuple[int, int]:
        """Width and height in pixels of ``text`` drawn at ``scale``."""
        if not text:
            return (0, FONT_HEIGHT * scale)
        return ((len(text) * (FONT_WIDTH + 1) - 1) * scale, FONT_HEIGHT * scale)

    def text(
        self,
        x: int,
        y: int,
        text: str,
        color: Color,
        *,
        scale: int = 1,
        anchor: str = "left",
        vertical: bool = False,
    ) -> None:
        """Draw ``text`` with its top-left corner at (x, y). ``anchor`` ``"center"`` or
        ``"right"`` aligns on x instead. ``vertical`` draws it rotated 90 degrees
        counter-clockwise (reading bottom to top), centred on (x, y)."""
        w, h = self.text_size(text, scale)
        if vertical:
            self._text_vertical(x - h // 2, y + w // 2, text, color, scale)
            return
        if anchor == "center":
            x -= w // 2
        elif anchor == "right":
            x -= w
        for n, char in enumerate(text):
            left = x + n * (FONT_WIDTH + 1) * scale
            for row, bits in enumerate(glyph_rows(char)):
                for col in range(FONT_WIDTH):
                    if bits & (1 << (FONT_WIDTH - 1 - col)):
                        px, py = left + col * scale, y + row * scale
                        self.rect(px, py, px + scale - 1, py + scale - 1, color)

    def _text_vertical(self, x: int, y: int, text: str, color: Color, scale: int) -> None:
        # (x, y) is the bottom-left corner of the rotated text box.
        for n, char in enumerate(text):
            base = y - n * (FONT_WIDTH + 1) * scale
            for row, bits in enumerate(glyph_rows(char)):
                for col in range(FONT_WIDTH):
                    if bits & (1 << (FONT_WIDTH - 1 - col)):
                        px, py = x + row * scale, base - (col + 1) * scale + 1
                        self.rect(px, py, px + scale - 1, py + scale - 1, color)

    def to_png(self) -> bytes:
        """The canvas as PNG bytes."""
        return encode_png(self.width, self.height, self.pixels)
