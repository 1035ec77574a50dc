"""Turn whatever a Kaggle archive holds into uint8 HxWx3 RGB, or say clearly why it cannot.

Competition images come from phones (EXIF rotation), scanners (CMYK, 16-bit), the web (palettes with
transparency, animated GIFs) and broken downloads (truncated, zero-byte, HTML saved as .jpg). Every
stage decodes through this module, so a quirk is handled once and train and test agree on it.

An image may also be a row of a uint8 array file (`layout: pixels`, whose images are CSV pixel columns):
the index names it `<file>.npy#<row>` (row 0-based), and read_image_bytes hands out that row as an
uncompressed PGM/PPM, so every reader of bytes (hashing, the cache, duplicates, EDA) works unchanged and
no image file is ever written.
"""

from __future__ import annotations

import io
import re
import threading
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from podium.errors import PodiumError

WHITE = (255, 255, 255, 255)
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_RESAMPLE = Image.Resampling.BICUBIC

ImageSource = str | Path | bytes
PIXEL_REF = re.compile(r"^(?P<file>.+\.npy)#(?P<row>\d+)$")  # pixels/train.npy#17: row 17 of the array file


class ImageDecodeError(PodiumError):
    """An image file that cannot become pixels. `reason` is the short cause, for the index's error column."""

    def __init__(self, name: str, reason: str):
        self.name, self.reason = name, reason
        super().__init__(f"Cannot decode image {name}.",
                         expected="a complete image file (JPEG, PNG, BMP, GIF, TIFF, WebP)",
                         received=reason,
                         fix="re-download or delete the file; `make data` indexes it as ok=False so training "
                             "and prediction skip it")

    def __reduce__(self):  # survive pickling into/out of worker processes
        return type(self), (self.name, self.reason)


def decode_image(source: ImageSource, *, name: str | None = None) -> np.ndarray:
    """Fully decode `source` (a path or the file's bytes) to uint8 HxWx3 RGB, upright as a viewer shows it.
    `name` is the file to blame in errors when only its bytes are given."""
    return _decode(source, name or _source_name(source))


def probe_image(path: str | Path, data: bytes | None = None) -> tuple[int, int, bool, str]:
    """(width, height, ok, error) after a full decode, so a broken file is caught when indexing, never
    mid-epoch. Pass `data` when the bytes are already read (the index hashes them) to skip a second read.
    Width and height are the upright image's, as the model will see it."""
    try:
        pixels = decode_image(path if data is None else data, name=str(path))
    except ImageDecodeError as exc:
        return 0, 0, False, exc.reason
    height, width = pixels.shape[:2]
    return width, height, True, ""


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Squash to (size, size, 3) uint8 with Pillow's BICUBIC filter.

    This is the one resize used by the cache, training and prediction, so train and test images see
    identical geometry. Pillow widens the bicubic kernel by the scale factor when shrinking, so it is
    antialiased like an area filter on downscale (no moire from big photos) and smooth on upscale (32px
    CIFAR to 224px backbones): one filter is right in both directions. Squashing, not cropping, keeps every
    pixel of the object; the aspect change is the same for train and test.
    """
    check_image_size(size)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"resize_square needs uint8 HxWx3, got {image.dtype} {image.shape}")
    if image.shape[:2] == (size, size):
        return np.ascontiguousarray(image)
    resized = Image.fromarray(image).resize((size, size), _RESAMPLE)
    return np.asarray(resized, dtype=np.uint8)


def load_resized(path: ImageSource, size: int, *, name: str | None = None) -> np.ndarray:
    return resize_square(decode_image(path, name=name), size)


# ---- decoding ------------------------------------------------------------------------------------
def _decode(source: ImageSource, name: str) -> np.ndarray:
    raw = read_image_bytes(source, name)
    if not raw:
        raise ImageDecodeError(name, "an empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(raw)) as image:
            image.load()  # lazy by default: force the full decode so truncation raises here
            return _to_rgb_array(upright(image), name)
    except ImageDecodeError:
        raise
    except Image.UnidentifiedImageError:
        raise ImageDecodeError(name, f"not an image ({len(raw)} bytes starting {raw[:16]!r})") from None
    except MemoryError:
        raise
    except Exception as exc:  # Pillow's plugins raise OSError, ValueError, SyntaxError, struct.error, ...
        raise ImageDecodeError(name, _describe(exc)) from exc


def read_image_bytes(source: ImageSource, name: str | None = None) -> bytes:
    """The file's bytes (given bytes pass through); a missing or unreadable file is an ImageDecodeError."""
    name = name or _source_name(source)
    if isinstance(source, bytes):
        return source
    ref = pixel_ref(source)
    if ref is not None:
        return _pixel_row_bytes(*ref, name)
    try:
        return Path(source).read_bytes()
    except FileNotFoundError:
        raise ImageDecodeError(name, "no such file") from None
    except OSError as exc:
        raise ImageDecodeError(name, f"unreadable file ({exc.strerror or exc})") from exc


def upright(image: Image.Image) -> Image.Image:
    """Apply EXIF orientation. Unreadable EXIF means no known orientation, not unusable pixels."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # malformed EXIF blocks raise assorted errors
        return image


def _to_rgb_array(image: Image.Image, name: str) -> np.ndarray:
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES:
        return _gray_to_rgb(np.asarray(image).astype(np.uint16) >> 8)
    if mode == "I":
        return _gray_to_rgb(_scale_int32(np.asarray(image)))
    if mode == "F":
        return _gray_to_rgb(_scale_float(np.asarray(image)))
    if mode in _ALPHA_MODES or "transparency" in image.info:
        return _over_white(image)
    try:
        rgb = image.convert("RGB")  # L, 1, P, CMYK (incl. Adobe-inverted), YCbCr: Pillow knows these
    except (ValueError, OSError) as exc:
        raise ImageDecodeError(name, f"an unsupported pixel mode {mode!r} ({exc})") from exc
    return np.asarray(rgb, dtype=np.uint8).copy()


def _over_white(image: Image.Image) -> np.ndarray:
    """Transparent pixels become white, as a browser shows them; black would invent dark edges."""
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, WHITE)
    return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"), dtype=np.uint8).copy()


def _scale_int32(values: np.ndarray) -> np.ndarray:
    """Mode I is Pillow's 32-bit container; in practice it holds 16-bit data (old PNG/TIFF readers), so
    values within 0..65535 scale like 16-bit. Anything else is stretched over its own range."""
    if values.size and values.min() >= 0 and values.max() <= 65535:
        return (values.astype(np.uint32) >> 8).astype(np.uint8)
    return _stretch(values.astype(np.float64))


def _scale_float(values: np.ndarray) -> np.ndarray:
    """Float images are 0..1 or 0..255 by convention; any other range is stretched over its own range."""
    values = np.nan_to_num(values.astype(np.float64))
    if values.size == 0:
        return values.astype(np.uint8)
    low, high = values.min(), values.max()
    if low >= 0 and high <= 1:
        return np.round(values * 255).astype(np.uint8)
    if low >= 0 and high <= 255:
        return np.round(values).astype(np.uint8)
    return _stretch(values)


def _stretch(values: np.ndarray) -> np.ndarray:
    low, high = values.min(), values.max()
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.round((values - low) * (255.0 / (high - low))).astype(np.uint8)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray.astype(np.uint8)[:, :, None], 3, axis=2)


# ---- rows of pixel array files -----------------------------------------------------------------------
def pixel_ref(source: ImageSource) -> tuple[Path, int] | None:
    """(array file, row) when `source` names a row of a pixel array (`pixels/train.npy#17`), else None."""
    if isinstance(source, bytes):
        return None
    match = PIXEL_REF.match(str(source))
    return (Path(match["file"]), int(match["row"])) if match else None


def pixel_ref_path(array_file: str | Path, row: int) -> str:
    return f"{Path(array_file).as_posix()}#{int(row)}"


def source_file(source: str | Path) -> Path:
    """The file on disk that holds the image `source` names: itself, or a pixel row's array file."""
    ref = pixel_ref(source)
    return ref[0] if ref else Path(source)


_ARRAYS: dict[str, tuple[tuple[int, int, int], np.ndarray]] = {}
_ARRAYS_LOCK = threading.Lock()


def pixel_array(array_file: str | Path) -> np.ndarray:
    """The (N, H, W) or (N, H, W, 3) uint8 array, memory-mapped once per process and file version (a rewritten
    file is opened again), so 70,000 rows cost one open, not 70,000."""
    path = Path(array_file)
    stat = path.stat()
    key, version = str(path.resolve()), (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with _ARRAYS_LOCK:
        known = _ARRAYS.get(key)
        if known is None or known[0] != version:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
            if array.dtype != np.uint8 or array.ndim not in (3, 4) or (array.ndim == 4 and array.shape[3] != 3):
                raise ValueError(f"{path} holds {array.dtype} {array.shape}, not uint8 (N, H, W[, 3]) pixels")
            known = _ARRAYS[key] = (version, array)
        return known[1]


def _pixel_row_bytes(array_file: Path, row: int, name: str) -> bytes:
    """One row as PGM (gray) or PPM (RGB) bytes: uncompressed, so its sha1 is a hash of the pixels."""
    try:
        array = pixel_array(array_file)
    except FileNotFoundError:
        raise ImageDecodeError(name, "no such file") from None
    except (OSError, ValueError) as exc:
        raise ImageDecodeError(name, f"unreadable pixel array ({exc})") from exc
    if row >= len(array):
        raise ImageDecodeError(name, f"row {row} is beyond the {len(array)} rows of {array_file.name}")
    pixels = np.ascontiguousarray(array[row])
    height, width = pixels.shape[:2]
    magic = b"P5" if pixels.ndim == 2 else b"P6"
    return b"%s\n%d %d\n255\n" % (magic, width, height) + pixels.tobytes()


# ---- helpers --------------------------------------------------------------------------------------
def _source_name(source: ImageSource) -> str:
    return f"<{len(source)} bytes in memory>" if isinstance(source, bytes) else str(source)


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "truncated" in text.lower():
        return f"a truncated file ({text})"
    return f"a corrupt file ({type(exc).__name__}: {text})"


def check_image_size(size: int) -> None:
    """A bad size is a config mistake; say so before any work starts."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise PodiumError("Image size must be a positive integer.", expected="e.g. 32, 224",
                          received=repr(size), fix="set image_size to a positive number of pixels")


def resize_plane(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """One float channel (a 0/1 mask or a probability map) to (height, width), bilinear.

    Masks go down to the model's size and predictions back up to the original one through this, then
    a 0.5 threshold: Pillow widens the bilinear kernel when shrinking, so a thin ship is averaged, not
    skipped as nearest-neighbour would, and an upscaled prediction has smooth edges, not blocks.
    """
    plane = np.ascontiguousarray(np.asarray(plane, dtype=np.float32).squeeze())
    if plane.ndim != 2:
        raise ValueError(f"resize_plane needs one (H, W) channel, got {plane.shape}")
    if plane.shape == (height, width):
        return plane
    return np.asarray(Image.fromarray(plane).resize((width, height), Image.BILINEAR), dtype=np.float32)
