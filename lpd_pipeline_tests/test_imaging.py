"""Robust decoding: every bad-file kind, orientation, unusual modes, luma exactness, saving and hashing."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from lpd_pipeline.imaging import (
    IMAGE_SUFFIXES,
    ImageDecodeError,
    _png_chunk,
    content_hash,
    decode_image,
    encode_png,
    image_size,
    luma_bt601,
    save_image,
    sniff_image_type,
)


def _gradient(height: int = 24, width: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([xx * 255 // (width - 1), yy * 255 // (height - 1), np.full_like(xx, 90)], -1).astype(np.uint8)


def _png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG header that claims ``width x height`` RGB but carries almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _png_chunk(b"IEND", b""))


def _reason(path, **kwargs) -> ImageDecodeError:
    with pytest.raises(ImageDecodeError) as info:
        decode_image(path, **kwargs)
    assert str(path) in str(info.value) and info.value.reason in str(info.value)
    return info.value


# --- bad files -------------------------------------------------------------------------------------------

def test_zero_byte(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert _reason(path).reason == "zero_byte"


def test_missing_file_is_unreadable(tmp_path):
    assert _reason(tmp_path / "nope.png").reason == "unreadable"


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
@pytest.mark.parametrize("keep", [0.25, 0.6, 0.9])
def test_truncated(tmp_path, suffix, keep):
    whole = tmp_path / f"whole{suffix}"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(whole)
    data = whole.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: int(len(data) * keep)])
    error = _reason(cut)
    assert error.reason == "truncated"
    assert error.path == cut


def test_text_file(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("just some words\nand another line\n")
    error = _reason(path)
    assert error.reason == "not_an_image" and "text file" in error.detail


def test_html_named_jpg(tmp_path):
    path = tmp_path / "painting.jpg"
    path.write_text("<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>gone</body></html>")
    error = _reason(path)
    assert error.reason == "not_an_image"
    assert error.detail == "HTML document named .jpg"
    assert "HTML document named .jpg" in str(error)


def test_gif_is_unsupported(tmp_path):
    path = tmp_path / "anim.gif"
    Image.new("P", (8, 8)).save(path)
    assert sniff_image_type(path.read_bytes()[:32]) == "gif"
    assert _reason(path).reason == "unsupported"


def test_decompression_bomb_small_limit(tmp_path):
    path = tmp_path / "big.png"
    Image.fromarray(_gradient(40, 50)).save(path)
    error = _reason(path, max_pixels=1999)
    assert error.reason == "decompression_bomb" and "2,000" in error.detail
    assert decode_image(path, max_pixels=2000).shape == (40, 50, 3)


@pytest.mark.parametrize("side", [100_000, 12_000])
def test_png_header_claiming_huge_size(tmp_path, side):
    # 100k^2 trips Pillow's own hard limit, 12k^2 only its warning: both must surface as our error type.
    path = tmp_path / "claims_huge.png"
    path.write_bytes(_png_claiming(side, side))
    error = _reason(path, max_pixels=50_000_000)
    assert error.reason == "decompression_bomb"
    if side > 20_000:  # beyond Pillow's hard limit: even the header read reports our error type
        with pytest.raises(ImageDecodeError) as info:
            image_size(path)
        assert info.value.reason == "decompression_bomb"
    else:  # the header read itself is cheap and fine
        assert image_size(path) == (side, side)


# --- orientation and modes -------------------------------------------------------------------------------

@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path, orientation):
    rgb = _gradient()
    image = Image.fromarray(rgb)
    exif = image.getexif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.png"
    image.save(path, exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    decoded = decode_image(path)
    np.testing.assert_array_equal(decoded, expected)
    assert image_size(path) == (decoded.shape[1], decoded.shape[0])


@pytest.mark.parametrize("orientation, corner", [(6, "top_right"), (8, "bottom_left")])
def test_exif_rotation_jpeg(tmp_path, orientation, corner):
    # A white block at the stored top-left must end up top-right (tag 6: rotate 90 cw) or bottom-left (tag 8).
    stored = np.zeros((40, 60, 3), np.uint8)
    stored[:10, :10] = 255
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = orientation
    path = tmp_path / "rot.jpg"
    image.save(path, exif=exif, quality=95)
    decoded = decode_image(path)
    assert decoded.shape == (60, 40, 3)
    block = decoded[:10, -10:] if corner == "top_right" else decoded[-10:, :10]
    assert block.mean() > 200 and decoded.mean() < 40


def test_cmyk_jpeg(tmp_path):
    cmyk = np.zeros((16, 32, 4), np.uint8)
    cmyk[:, :16, 0] = 255  # pure cyan
    cmyk[:, 16:, 1] = 255  # pure magenta
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(cmyk, mode="CMYK").save(path, quality=95)
    assert Image.open(path).mode == "CMYK"
    rgb = decode_image(path).astype(int)
    assert rgb.shape == (16, 32, 3)
    np.testing.assert_allclose(rgb[4:12, 2:12].mean((0, 1)), [0, 255, 255], atol=12)
    np.testing.assert_allclose(rgb[4:12, 20:30].mean((0, 1)), [255, 0, 255], atol=12)


def test_palette_png_with_transparency(tmp_path):
    palette_image = Image.new("P", (4, 2))
    palette_image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette_image.putdata([0, 0, 1, 1, 0, 0, 1, 1])
    path = tmp_path / "pal.png"
    palette_image.save(path, transparency=1)
    rgb = decode_image(path)
    np.testing.assert_array_equal(rgb[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(rgb[0, 2], [255, 255, 255])  # transparent index composited onto white


def test_rgba_and_la_composite_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 2] = 200
    rgba[..., 3] = [[255, 0], [128, 64]]
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    rgb = decode_image(path)
    np.testing.assert_array_equal(rgb[0, 0], [0, 0, 200])
    np.testing.assert_array_equal(rgb[0, 1], [255, 255, 255])
    a = 128 / 255
    expected = np.rint([255 * (1 - a), 255 * (1 - a), 200 * a + 255 * (1 - a)])
    np.testing.assert_array_equal(rgb[1, 0], expected)
    la = np.stack([np.full((2, 2), 100, np.uint8), np.array([[255, 0], [0, 255]], np.uint8)], -1)
    path_la = tmp_path / "la.png"
    Image.fromarray(la, mode="LA").save(path_la)
    np.testing.assert_array_equal(decode_image(path_la)[..., 0], [[100, 255], [255, 100]])


def test_16bit_grayscale_png(tmp_path):
    values = np.array([[0, 1000, 32896, 65535]], dtype=np.uint16)
    path = tmp_path / "g16.png"
    assert cv2.imwrite(str(path), values)
    rgb = decode_image(path)
    expected = np.rint(values / 65535 * 255).astype(np.uint8)  # 0, 4, 128, 255
    np.testing.assert_array_equal(rgb[..., 0], expected)
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])


def test_16bit_rgb_png(tmp_path):
    rgb16 = np.zeros((2, 3, 3), np.uint16)
    rgb16[0, 0] = [65535, 0, 0]
    rgb16[0, 1] = [0, 1000, 0]
    rgb16[1, 2] = [257 * 7, 257 * 100 + 200, 65535]
    path = tmp_path / "c16.png"
    assert cv2.imwrite(str(path), rgb16[..., ::-1])  # OpenCV writes BGR
    decoded = decode_image(path)
    np.testing.assert_array_equal(decoded, np.rint(rgb16 / 65535 * 255).astype(np.uint8))
    assert decoded[0, 1, 1] == 4  # Pillow alone would give 1000 >> 8 == 3


def test_one_bit_and_float_tiff(tmp_path):
    bits = Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).convert("1")
    bits.save(tmp_path / "b.png")
    np.testing.assert_array_equal(decode_image(tmp_path / "b.png")[..., 1], [[0, 255], [255, 0]])
    floats = np.array([[0.0, 0.5], [1.0, 0.25]], np.float32)
    Image.fromarray(floats, mode="F").save(tmp_path / "f.tif")
    np.testing.assert_array_equal(decode_image(tmp_path / "f.tif")[..., 0], [[0, 128], [255, 64]])


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif", ".webp", ".bmp"])
def test_supported_formats_round_trip(tmp_path, suffix):
    assert suffix in IMAGE_SUFFIXES
    rgb = _gradient()
    path = save_image(tmp_path / f"img{suffix}", rgb, quality=95)
    decoded = decode_image(path)
    assert decoded.dtype == np.uint8 and decoded.shape == rgb.shape
    tolerance = 6 if suffix == ".jpg" else 0
    assert np.abs(decoded.astype(int) - rgb).max() <= tolerance
    assert sniff_image_type(path.read_bytes()[:16]) == {".jpg": "jpeg", ".tif": "tiff"}.get(suffix, suffix[1:])


# --- luma, saving, hashing -------------------------------------------------------------------------------

def test_luma_bt601_hand_computed():
    rgb = np.array([[[10, 20, 30], [0, 0, 250], [255, 255, 255], [255, 0, 0], [1, 1, 1], [0, 0, 0]]], np.uint8)
    # 2.99 + 11.74 + 3.42 = 18.15 -> 18; 0.114 * 250 = 28.5 -> 29 (half up); 76.245 -> 76
    np.testing.assert_array_equal(luma_bt601(rgb), [[18, 29, 255, 76, 1, 0]])
    assert luma_bt601(rgb).dtype == np.uint8


def test_luma_bt601_matches_exact_rational_formula():
    rgb = np.random.default_rng(7).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    exact_thousandths = 299 * r + 587 * g + 114 * b
    expected = exact_thousandths // 1000 + (exact_thousandths % 1000 >= 500)
    np.testing.assert_array_equal(luma_bt601(rgb), expected)
    with pytest.raises(ValueError):
        luma_bt601(rgb.astype(np.float32))


def test_save_image_is_atomic_and_validates(tmp_path):
    gray = _gradient()[..., 0]
    path = save_image(tmp_path / "sub" / "tile.png", gray)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), gray)
    assert [p.name for p in path.parent.iterdir()] == ["tile.png"]  # no temp file left behind
    with pytest.raises(ValueError):
        save_image(tmp_path / "bad.png", gray.astype(np.float32))
    with pytest.raises(ValueError):
        save_image(tmp_path / "bad.xyz", gray)
    assert not (tmp_path / "bad.png").exists()


@pytest.mark.parametrize("shape", [(1, 1), (2, 7), (17, 300), (256, 256), (1, 1, 3), (5, 3, 3), (256, 256, 3)])
def test_encode_png_is_lossless_for_every_decoder(tmp_path, shape):
    # Noise exercises the Up filter's wrap-around (row differences below zero) on every byte value.
    array = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    data = encode_png(array)
    with Image.open(io.BytesIO(data)) as image:
        image.verify()  # CRCs and chunk structure
    with Image.open(io.BytesIO(data)) as image:
        np.testing.assert_array_equal(np.asarray(image), array)
    path = save_image(tmp_path / "noise.png", array)
    assert path.read_bytes() == data
    from_cv2 = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(from_cv2 if array.ndim == 2 else from_cv2[..., ::-1], array)
    expected_rgb = array if array.ndim == 3 else np.repeat(array[..., None], 3, axis=2)
    np.testing.assert_array_equal(decode_image(path), expected_rgb)


def test_encode_png_compresses_smooth_images_and_validates():
    smooth = np.tile(np.arange(256, dtype=np.uint8), (256, 1))
    assert len(encode_png(np.stack([smooth] * 3, -1))) < 0.05 * smooth.size * 3
    for bad in (smooth.astype(np.uint16), np.zeros((4, 4, 4), np.uint8), np.zeros((0, 4), np.uint8)):
        with pytest.raises(ValueError, match="encode_png"):
            encode_png(bad)


def test_content_hash_and_image_size(tmp_path):
    path = save_image(tmp_path / "a.png", _gradient(24, 32))
    assert content_hash(path) == hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    assert len(content_hash(path)) == 16
    assert image_size(path) == (32, 24)
    copy = tmp_path / "b.png"
    copy.write_bytes(path.read_bytes())
    assert content_hash(copy) == content_hash(path)


def test_sniff_image_type():
    assert sniff_image_type(b"\xff\xd8\xff\xe0rest") == "jpeg"
    assert sniff_image_type(b"\x89PNG\r\n\x1a\nrest") == "png"
    assert sniff_image_type(b"II*\x00rest") == "tiff" and sniff_image_type(b"MM\x00*rest") == "tiff"
    assert sniff_image_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff_image_type(b"BM" + b"\x00" * 20) == "bmp"
    assert sniff_image_type(b"GIF89a....") == "gif"
    assert sniff_image_type(b"<html>") is None and sniff_image_type(b"") is None


@pytest.mark.parametrize("gray", [False, True], ids=["rgb", "gray"])  # gray: Pillow's memory-mapped path
@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiff_orientation_is_applied_exactly_once(tmp_path, orientation, gray):
    from PIL import TiffImagePlugin

    rgb = _gradient(24, 32)
    rgb[:4, :4] = 255  # a corner marker, so any extra turn or flip shows
    if gray:
        rgb = rgb[..., 1]
    directory = TiffImagePlugin.ImageFileDirectory_v2()
    directory[0x0112] = orientation
    Image.fromarray(rgb).save(tmp_path / "o.tif", tiffinfo=directory)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(rgb).save(tmp_path / "o.png", exif=exif)
    decoded = decode_image(tmp_path / "o.tif")
    np.testing.assert_array_equal(decoded, decode_image(tmp_path / "o.png"))
    assert image_size(tmp_path / "o.tif") == (decoded.shape[1], decoded.shape[0])


def test_16bit_rgb_tiff_with_orientation_decodes_rotated(tmp_path):
    """A layout OpenCV's reader refuses: Pillow takes over at 8 bits and the tag is still honoured."""
    height, width = 40, 24
    samples = np.random.default_rng(3).integers(0, 65536, (height, width, 3)).astype("<u2")
    data = samples.tobytes()
    count = 12
    bits_at = 8 + 2 + count * 12 + 4
    data_at = bits_at + 6

    def entry(tag, kind, n, value):
        packed = struct.pack("<HH", value, 0) if kind == 3 and n == 1 else struct.pack("<I", value)
        return struct.pack("<HHI", tag, kind, n) + packed

    entries = [entry(256, 3, 1, width), entry(257, 3, 1, height), entry(258, 3, 3, bits_at), entry(259, 3, 1, 1),
               entry(262, 3, 1, 2), entry(273, 4, 1, data_at), entry(274, 3, 1, 6), entry(277, 3, 1, 3),
               entry(278, 3, 1, height), entry(279, 4, 1, len(data)), entry(284, 3, 1, 1), entry(339, 3, 1, 1)]
    path = tmp_path / "o6_16.tif"
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", count) + b"".join(entries)
                     + b"\0\0\0\0" + struct.pack("<HHH", 16, 16, 16) + data)
    decoded = decode_image(path)
    expected = np.rot90(np.rint(samples / 65535.0 * 255.0), k=-1)  # orientation 6: turn 90 degrees clockwise
    assert decoded.shape == (width, height, 3) and image_size(path) == (height, width)
    assert np.abs(decoded.astype(int) - expected).max() <= 1
