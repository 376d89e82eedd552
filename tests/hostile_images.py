"""Hostile and huge image files, made in memory: decompression bombs, animations, EXIF tricks, and
the 40-megapixel photo of a 7 from issue 26. Used by test_hostile_images.py and `make load`
(bench/load.py), which posts them to a running `kerasml try`."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw

PHOTO_SIZE = (6000, 6600)        # issue 26: a 6000x6600 JPEG of a 7 on paper, about 0.7 MB


def encoded(picture: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=format, **options)
    return buffer.getvalue()


def seven_on_paper(size: tuple[int, int] = PHOTO_SIZE, grain: float = 1.0, seed: int = 7) -> Image.Image:
    """A dark 7 drawn on warm, unevenly lit paper with a faint grain (RGB). The paper is made at 1/8
    size and enlarged, so a 40-megapixel one takes about a second and 0.5 GB to make."""
    width, height = size
    small_w, small_h = max(1, width // 8), max(1, height // 8)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:small_h, 0:small_w]
    light = 1.0 - 0.12 * (0.7 * xx / small_w + 0.3 * yy / small_h)
    paper = np.array([236.0, 230.0, 214.0]) * light[..., None] + rng.normal(0.0, grain, (small_h, small_w, 1))
    picture = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8)).resize(size, Image.Resampling.BILINEAR)
    corners = [(0.28 * width, 0.25 * height), (0.72 * width, 0.25 * height), (0.45 * width, 0.78 * height)]
    ImageDraw.Draw(picture).line(corners, fill=(40, 42, 60), width=max(2, width // 40), joint="curve")
    return picture


def seven_jpeg(size: tuple[int, int] = PHOTO_SIZE, quality: int = 68, grain: float = 1.0, noise: float = 0.0,
               **options) -> bytes:
    """Issue 26's photo: at the default size and quality about 0.7 MB. `noise`: a sensor's noise per
    pixel (its standard deviation in grey levels), which JPEG cannot squeeze: 4.5 at quality 91 makes
    the 40-megapixel photo about 9 MB."""
    picture = seven_on_paper(size, grain)
    if noise:
        from PIL import ImageChops

        picture = ImageChops.add(picture, Image.effect_noise(size, noise).convert("RGB"), 1.0, -128)
    return encoded(picture, "JPEG", quality=quality, **options)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(width: int, height: int, color_type: int = 0, rows: bytes | None = None, channels: int = 1) -> bytes:
    """A PNG (8-bit; color type 0 gray, 2 RGB, 6 RGBA) whose pixels are all zero unless `rows`
    (the raw filtered scanlines) is given: 40 MP of zeros compress to about 40 kB."""
    if rows is None:
        compressor = zlib.compressobj(9)
        line = b"\0" * (1 + width * channels)
        body = b"".join(compressor.compress(line) for _ in range(height)) + compressor.flush()
    else:
        body = zlib.compress(rows, 9)
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but whose data is one scanline: a header bomb."""
    return png(width, height, rows=b"\0" * (1 + width))


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG with its frame header (SOF0) rewritten to claim width x height."""
    data = bytearray(encoded(Image.new("L", (16, 16), 200), "JPEG"))
    at = data.index(b"\xff\xc0")
    data[at + 5:at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_frames(count: int, side: int = 1) -> bytes:
    """An animated GIF of `count` frames (tiny: about 20 bytes a frame at side 1)."""
    frames = [Image.new("P", (side, side), i % 2) for i in range(count)]
    return encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=10, optimize=False)


def apng_frames(count: int, side: int = 8) -> bytes:
    frames = [Image.new("L", (side, side), (37 * i) % 256) for i in range(count)]
    return encoded(frames[0], "PNG", save_all=True, append_images=frames[1:])


def webp_frames(count: int, side: int = 8) -> bytes:
    frames = [Image.new("RGB", (side, side), ((37 * i) % 256, 0, 0)) for i in range(count)]
    return encoded(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)


def tiff_pages(count: int, side: int = 8) -> bytes:
    frames = [Image.new("L", (side, side), i % 256) for i in range(count)]
    return encoded(frames[0], "TIFF", save_all=True, append_images=frames[1:])


def with_orientation(picture: Image.Image, orientation, format: str = "JPEG") -> bytes:
    """The picture saved with an EXIF Orientation tag of any value (valid ones are 1-8)."""
    import warnings

    exif = Image.Exif()
    exif[0x0112] = orientation
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # Pillow's writer warns about odd values: they are the point
        return encoded(picture, format, exif=exif.tobytes())


def hostile_cases() -> dict[str, bytes]:
    """Name -> bytes of files every reader must refuse in one line, or read in bounded memory."""
    small = seven_on_paper((120, 132))
    jpeg = encoded(small, "JPEG", quality=85)
    return {
        "png header claims 100000x100000": png_claiming(100_000, 100_000),
        "png header claims 7000x7000 (49 MP)": png_claiming(7000, 7000),
        "jpeg header claims 65000x65000": jpeg_claiming(65_000, 65_000),
        "jpeg header claims 8000x6000 (48 MP)": jpeg_claiming(8000, 6000),
        "gif of 5000 frames": gif_frames(5000),
        "apng of 300 frames": apng_frames(300),
        "webp of 100 frames": webp_frames(100),
        "tiff of 2000 pages": tiff_pages(2000),
        "exif orientation 9 (invalid)": with_orientation(small, 9),
        "exif orientation 6 (turned)": with_orientation(small, 6),
        "exif orientation of two values": with_orientation(small, (6, 8)),
        "exif orientation 65535": with_orientation(small, 65535),
        "exif block cut short": jpeg[:2] + b"\xff\xe1\x00\x40Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00" + jpeg[2:],
        "jpeg cut in half": jpeg[:len(jpeg) // 2],
        "png cut in half": encoded(small, "PNG")[:len(encoded(small, "PNG")) // 2],
    }


def small_bombs() -> dict[str, bytes]:
    """Tiny files (tens of kB) that decode to 40 megapixels, just under the limit: read, in bounded memory."""
    return {
        "png 6000x6600 gray, 40 kB": png(6000, 6600),
        "png 6000x6600 rgba, 80 kB": png(6000, 6600, color_type=6, channels=4),
    }
