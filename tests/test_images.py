import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from podium.data.images import (ImageDecodeError, decode_image, load_resized, probe_image,
                                resize_square)
from podium.errors import PodiumError

DEMO_TRAIN = Path(__file__).resolve().parents[1] / "src" / "podium" / "demo" / "train.zip"
RED, BLUE = (255, 0, 0), (0, 0, 255)


def demo_jpeg_bytes() -> bytes:
    with zipfile.ZipFile(DEMO_TRAIN) as zf:
        return zf.read("train/airplane/0001.jpg")


def save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


# ---- orientation and modes -------------------------------------------------------------------------
def test_exif_orientation_6_rotates_upright(tmp_path):
    stored = np.zeros((24, 40, 3), np.uint8)
    stored[:] = BLUE
    stored[:8, :8] = RED  # mark the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    rotated = save(Image.fromarray(stored), tmp_path / "rotated.jpg", exif=exif, quality=95)
    plain = save(Image.fromarray(stored), tmp_path / "plain.jpg", quality=95)

    assert decode_image(plain).shape == (24, 40, 3)
    upright = decode_image(rotated)
    assert upright.shape == (40, 24, 3) and upright.dtype == np.uint8
    # a clockwise quarter turn carries the top-left corner to the top-right
    assert np.allclose(upright[3, 20], RED, atol=40)
    assert np.allclose(upright[3, 3], BLUE, atol=40)
    assert np.allclose(upright[36, 3], BLUE, atol=40)


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (4, 1))
    pixels = decode_image(save(Image.fromarray(gray, "L"), tmp_path / "gray.png"))
    assert pixels.shape == (4, 16, 3)
    for channel in range(3):
        assert np.array_equal(pixels[:, :, channel], gray)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    cmyk_red = Image.new("CMYK", (16, 16), (0, 255, 255, 0))
    pixels = decode_image(save(cmyk_red, tmp_path / "cmyk.jpg", quality=95))
    assert pixels.shape == (16, 16, 3)
    assert np.allclose(pixels[8, 8], RED, atol=10)


def test_rgba_transparency_composites_over_white(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (0, 0, 0, 0)  # fully transparent black: must show white, not black
    rgba[0, 1] = (255, 0, 0, 255)  # opaque red stays red
    rgba[1, 0] = (0, 0, 0, 128)  # half-transparent black: mid gray
    rgba[1, 1] = (10, 20, 30, 0)
    pixels = decode_image(save(Image.fromarray(rgba, "RGBA"), tmp_path / "alpha.png"))
    assert tuple(pixels[0, 0]) == (255, 255, 255)
    assert tuple(pixels[1, 1]) == (255, 255, 255)
    assert tuple(pixels[0, 1]) == RED
    assert np.allclose(pixels[1, 0], 127, atol=2)


def test_gray_alpha_composites_over_white(tmp_path):
    la = Image.new("LA", (3, 3), (0, 0))
    la.putpixel((1, 1), (50, 255))
    pixels = decode_image(save(la, tmp_path / "la.png"))
    assert tuple(pixels[0, 0]) == (255, 255, 255)
    assert tuple(pixels[1, 1]) == (50, 50, 50)


def test_palette_with_transparent_index(tmp_path):
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putpixel((0, 0), 1)
    path = save(palette, tmp_path / "palette.png", transparency=0)  # index 0 (red) is transparent
    pixels = decode_image(path)
    assert tuple(pixels[0, 0]) == BLUE
    assert tuple(pixels[2, 2]) == (255, 255, 255)


def test_palette_without_transparency(tmp_path):
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    assert tuple(decode_image(save(palette, tmp_path / "p.png"))[1, 1]) == BLUE


def test_16_bit_png_scales_by_range_not_clipping(tmp_path):
    values = np.array([[0, 255, 256, 1000, 32768, 40000, 65280, 65535]], dtype=np.uint16)
    path = save(Image.fromarray(values), tmp_path / "deep.png")
    assert Image.open(path).mode == "I;16"
    gray = decode_image(path)[0, :, 0]
    assert list(gray) == [0, 0, 1, 3, 128, 156, 255, 255]
    assert np.all(np.diff(gray.astype(int)) >= 0)


def test_16_bit_big_endian_tiff(tmp_path):
    values = np.linspace(0, 65535, 32).astype(">u2").reshape(4, 8)
    image = Image.frombytes("I;16B", (8, 4), values.tobytes())
    path = save(image, tmp_path / "deep.tif")
    assert Image.open(path).mode == "I;16B"
    gray = decode_image(path)[:, :, 0].ravel()
    assert gray[0] == 0 and gray[-1] == 255 and np.all(np.diff(gray.astype(int)) >= 0)
    assert np.array_equal(gray, (values.astype(np.uint16) >> 8).ravel())


def test_32_bit_int_and_float_tiffs(tmp_path):
    ints = np.array([[0, 256, 65535]], dtype=np.int32)
    assert list(decode_image(save(Image.fromarray(ints, "I"), tmp_path / "i.tif"))[0, :, 0]) == [0, 1, 255]
    floats = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    assert list(decode_image(save(Image.fromarray(floats, "F"), tmp_path / "f.tif"))[0, :, 0]) == [0, 128, 255]


def test_bilevel_image(tmp_path):
    bits = Image.new("1", (4, 2), 0)
    bits.putpixel((3, 1), 1)
    pixels = decode_image(save(bits, tmp_path / "bits.png"))
    assert tuple(pixels[0, 0]) == (0, 0, 0) and tuple(pixels[1, 3]) == (255, 255, 255)


def test_multi_frame_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), color) for color in (RED, BLUE, (0, 255, 0))]
    path = save(frames[0], tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert Image.open(path).n_frames == 3
    assert np.allclose(decode_image(path)[4, 4], RED, atol=8)
    pages = save(frames[1], tmp_path / "pages.tif", save_all=True, append_images=[frames[0]])
    assert Image.open(pages).n_frames == 2
    assert tuple(decode_image(pages)[4, 4]) == BLUE


def test_decode_error_pickles(tmp_path):
    import pickle

    error = ImageDecodeError("a.jpg", "an empty file (0 bytes)")
    again = pickle.loads(pickle.dumps(error))
    assert (again.name, again.reason, str(again)) == ("a.jpg", "an empty file (0 bytes)", str(error))


def test_bytes_and_path_decode_identically(tmp_path):
    data = demo_jpeg_bytes()
    (tmp_path / "a.jpg").write_bytes(data)
    from_bytes, from_path = decode_image(data), decode_image(tmp_path / "a.jpg")
    assert from_bytes.shape == (32, 32, 3) and np.array_equal(from_bytes, from_path)
    assert np.array_equal(from_path, decode_image(str(tmp_path / "a.jpg")))


# ---- broken files -----------------------------------------------------------------------------------
def test_truncated_jpeg_is_an_error_naming_the_file(tmp_path):
    data = demo_jpeg_bytes()
    path = tmp_path / "half.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(path)
    message = str(caught.value)
    assert str(path) in message and "truncated" in message
    assert "Expected:" in message and "Fix:" in message
    assert isinstance(caught.value, PodiumError)


def test_jpeg_truncated_mid_scan_is_an_error(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    data = (save(Image.fromarray(noise), tmp_path / "full.jpg", quality=95)).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: int(len(data) * 0.8)])  # headers intact: only a full decode notices
    assert Image.open(path).size == (128, 128)
    with pytest.raises(ImageDecodeError, match="truncated"):
        decode_image(path)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageDecodeError, match="empty file"):
        decode_image(path)


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "page.jpg"
    path.write_text("<html>404 Not Found</html>")
    with pytest.raises(ImageDecodeError, match="not an image") as caught:
        decode_image(path)
    assert "page.jpg" in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(ImageDecodeError, match="no such file"):
        decode_image(tmp_path / "nope.png")


def test_probe_reports_instead_of_raising(tmp_path):
    good = tmp_path / "good.png"
    Image.new("RGB", (7, 5)).save(good)
    assert probe_image(good) == (7, 5, True, "")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(demo_jpeg_bytes()[:300])
    width, height, ok, error = probe_image(bad)
    assert (width, height, ok) == (0, 0, False) and "truncated" in error
    assert probe_image(bad, data=good.read_bytes())[2] is True  # given bytes win over the path


def test_probe_reports_upright_size(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(Image.new("RGB", (30, 10)), tmp_path / "r.jpg", exif=exif)
    assert probe_image(path)[:2] == (10, 30)


# ---- resizing ---------------------------------------------------------------------------------------
def test_resize_square_shapes_and_identity():
    image = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    out = resize_square(image, 16)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    assert resize_square(image, 64).shape == (64, 64, 3)
    square = image[:20, :20]
    assert np.array_equal(resize_square(square, 20), square)
    flat = np.full((13, 29, 3), 77, np.uint8)
    assert np.all(resize_square(flat, 50) == 77)


def test_resize_downscale_is_antialiased():
    checker = ((np.indices((64, 64)).sum(axis=0) % 2) * 255).astype(np.uint8)
    small = resize_square(np.repeat(checker[:, :, None], 3, axis=2), 8)
    assert np.all(np.abs(small.astype(int) - 128) <= 3)  # nearest-neighbour would give pure 0 or 255


def test_resize_rejects_bad_input():
    with pytest.raises(PodiumError, match="positive"):
        resize_square(np.zeros((4, 4, 3), np.uint8), 0)
    with pytest.raises(ValueError):
        resize_square(np.zeros((4, 4), np.uint8), 4)


def test_load_resized_is_decode_then_resize(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(demo_jpeg_bytes())
    assert np.array_equal(load_resized(path, 48), resize_square(decode_image(path), 48))
    assert load_resized(path, 48).shape == (48, 48, 3)
