"""The safe loader of untrusted images (cycletrans.data.images.load_image) on every kind of bad
or unusual input, its memory bounds, and the app's upload component (app.images).

Every file is generated in tmp_path. Sensible inputs are converted to RGB (RGBA, palette,
16-bit and 32-bit thermal, grey, 1-bit, EXIF-rotated, animated, huge); the rest raise
ImageInputError (a ValueError) with a message saying what is wrong, and decompression bombs are
refused from their header, before any pixel is decoded.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import struct
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from gradio.data_classes import ImageData
from PIL import Image

from app.images import save_data_url, upload_image
from cycletrans.data import images
from cycletrans.data.images import (
    MAX_DECODED_BYTES,
    MAX_PIXELS,
    DecodeBudget,
    ImageInputError,
    file_digest,
    load_image,
)

PNG_CHANNELS = {0: 1, 2: 3, 6: 4}  # PNG colour type (grey, RGB, RGBA) -> bytes per pixel


def png_header_only(path: Path, width: int, height: int, colour_type: int = 2) -> Path:
    """A PNG that declares ``width x height`` pixels (RGB unless ``colour_type`` says grey, 0,
    or RGBA, 6) but holds a single row of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    data = zlib.compress(b"\x00" + b"\x00" * PNG_CHANNELS[colour_type] * min(width, 16))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )
    return path


def test_rgb_jpeg_is_read_unchanged_in_size(tmp_path: Path) -> None:
    path = tmp_path / "person.jpg"
    Image.new("RGB", (40, 100), (200, 30, 10)).save(path)
    image = load_image(path)
    assert (image.mode, image.size) == ("RGB", (40, 100))
    assert np.allclose(np.asarray(image)[50, 20], (200, 30, 10), atol=3)


def test_rgba_is_composited_over_black(tmp_path: Path) -> None:
    pixels = np.zeros((20, 10, 4), np.uint8)
    pixels[:10] = (255, 0, 0, 255)  # opaque red top half
    pixels[10:] = (0, 255, 0, 0)  # fully transparent green bottom half
    path = tmp_path / "alpha.png"
    Image.fromarray(pixels, "RGBA").save(path)
    rgb = np.asarray(load_image(path))
    assert rgb.shape == (20, 10, 3)
    assert rgb[0, 0].tolist() == [255, 0, 0]
    assert rgb[15, 0].tolist() == [0, 0, 0]


def test_palette_images_become_rgb_with_and_without_transparency(tmp_path: Path) -> None:
    plain = Image.new("RGB", (16, 16), (10, 120, 250)).convert("P", palette=Image.ADAPTIVE)
    plain.save(tmp_path / "palette.png")
    assert np.asarray(load_image(tmp_path / "palette.png"))[0, 0].tolist() == [10, 120, 250]
    transparent = Image.new("P", (16, 16), 1)
    transparent.putpalette([255, 255, 255, 0, 0, 255] + [0] * 762)
    transparent.save(tmp_path / "transparent.png", transparency=1)
    rgb = load_image(tmp_path / "transparent.png")
    assert rgb.mode == "RGB"
    assert np.asarray(rgb)[0, 0].tolist() == [0, 0, 0]


def test_16_bit_thermal_is_stretched_to_8_bit_grey(tmp_path: Path) -> None:
    values = np.linspace(7000, 9000, 32 * 16).reshape(32, 16).astype(np.uint16)
    path = tmp_path / "thermal16.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    rgb = np.asarray(load_image(path))
    assert rgb.shape == (32, 16, 3)
    assert rgb.min() == 0
    assert rgb.max() == 255
    assert (rgb[..., 0] == rgb[..., 1]).all()
    assert (rgb[..., 1] == rgb[..., 2]).all()
    assert rgb[0, 0, 0] < rgb[16, 8, 0] < rgb[-1, -1, 0]  # order of temperatures kept


def test_constant_16_bit_image_becomes_black_without_dividing_by_zero(tmp_path: Path) -> None:
    path = tmp_path / "flat16.png"
    Image.new("I;16", (16, 32), 5000).save(path)
    assert np.asarray(load_image(path)).max() == 0


def test_32_bit_float_tiff_is_stretched(tmp_path: Path) -> None:
    path = tmp_path / "float.tif"
    Image.fromarray(np.linspace(-3.0, 40.0, 16 * 16).reshape(16, 16).astype(np.float32)).save(path)
    rgb = np.asarray(load_image(path))
    assert rgb.shape == (16, 16, 3)
    assert rgb.min() == 0
    assert rgb.max() == 255


@pytest.mark.parametrize("mode", ["L", "1"])
def test_single_channel_images_get_three_equal_channels(tmp_path: Path, mode: str) -> None:
    path = tmp_path / f"grey-{mode}.png"
    Image.new(mode, (12, 24), 1 if mode == "1" else 90).save(path)
    rgb = np.asarray(load_image(path))
    assert rgb.shape == (24, 12, 3)
    assert len(set(rgb[0, 0].tolist())) == 1


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = Image.new("RGB", (60, 20), "white")
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif)
    assert load_image(path).size == (20, 60)


def test_animated_gif_gives_its_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    rgb = np.asarray(load_image(path))
    assert rgb.shape == (16, 16, 3)
    assert rgb[0, 0, 0] > 200
    assert rgb[0, 0, 2] < 50


@pytest.mark.parametrize("suffix", ["jpg", "png"])
def test_huge_images_are_downscaled_keeping_their_aspect(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"big.{suffix}"
    Image.new("RGB", (400, 800), "gray").save(path)
    image = load_image(path, max_side=200)
    assert image.size == (100, 200)


def test_tiny_images_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "tiny.png"
    Image.new("RGB", (4, 30)).save(path)
    with pytest.raises(ImageInputError, match=r"4 x 30 pixels: too small"):
        load_image(path)


@pytest.mark.parametrize("side", [50_000, 20_000, int(MAX_PIXELS**0.5) + 100])
def test_every_decompression_bomb_gets_the_same_friendly_message(tmp_path: Path, side: int) -> None:
    # 50,000 and 20,000 square: above Pillow's own limit (it refuses to open them); the third
    # is above ours only: all are refused from the header, before decoding, in the same words
    path = png_header_only(tmp_path / "bomb.png", side, side)
    with pytest.raises(ImageInputError) as refused:
        load_image(path)
    assert str(refused.value) == (
        f"bomb.png has {side * side:,} pixels: too many to decode "
        f"safely (the limit is {MAX_PIXELS:,} pixels, a guard against "
        "decompression bombs); downscale it first"
    )


def test_images_whose_pixels_take_too_many_bytes_are_refused_by_mode(tmp_path: Path) -> None:
    # 25 M pixels: under the pixel limit; as RGBA they take 8 bytes each to decode and
    # composite (191 MiB, over MAX_DECODED_BYTES), as RGB 4 (95 MiB) and as grey 1
    assert MAX_PIXELS > 5000 * 5000
    rgba = png_header_only(tmp_path / "rgba.png", 5000, 5000, colour_type=6)
    with pytest.raises(ImageInputError) as refused:
        load_image(rgba)
    assert str(refused.value) == (
        "rgba.png is 5000 x 5000 pixels of mode RGBA: decoding it takes 191 MiB, the limit "
        f"is {MAX_DECODED_BYTES // 2**20} MiB; downscale it first"
    )
    for colour_type in (0, 2):  # past the size checks: decoded, and found truncated
        path = png_header_only(tmp_path / f"type{colour_type}.png", 5000, 5000, colour_type)
        with pytest.raises(ImageInputError, match="corrupt or truncated"):
            load_image(path)
    with pytest.raises(ImageInputError, match="the limit is 1 MiB"):
        load_image(png_header_only(tmp_path / "small.png", 600, 600), max_decoded_bytes=2**20)


def test_a_jpeg_counts_the_pixels_it_decodes_at_reduced_scale(tmp_path: Path) -> None:
    jpeg, png = tmp_path / "wide.jpg", tmp_path / "wide.png"
    Image.new("RGB", (2000, 1000), "gray").save(jpeg)
    Image.new("RGB", (2000, 1000), "gray").save(png)
    # 2 M pixels in the header; the JPEG decodes at 1/2 scale (0.5 M) to fit max_side 1000
    assert load_image(jpeg, max_pixels=1_000_000, max_side=1000).size == (1000, 500)
    with pytest.raises(ImageInputError, match="too many to decode"):
        load_image(png, max_pixels=1_000_000, max_side=1000)


def test_a_large_16_bit_thermal_image_is_downscaled_before_any_float_copy(tmp_path: Path) -> None:
    # the case, smaller: a 16-bit gradient of 4000 x 4000 (32 MB of pixels) used to be
    # converted to float64 at full size (128 MB, more with temporaries) before downscaling
    path = tmp_path / "thermal.png"
    Image.fromarray(
        np.broadcast_to((np.arange(4000) * 10).astype(np.uint16), (4000, 4000)).copy()
    ).save(path)
    tracemalloc.start()
    try:
        image = load_image(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert image.size == (1024, 1024)
    assert peak < 24 * 2**20  # NumPy's arrays only (Pillow's own buffers are not traced)
    row = np.asarray(image)[512, :, 0]
    assert row[0] == 0  # the stretch survives the downscale
    assert row[-1] >= 250


def test_the_decode_budget_bounds_the_bytes_decoded_at_once() -> None:
    budget = DecodeBudget(100)
    seen, lock = [], threading.Lock()

    def decode(nbytes: int) -> None:
        with budget.reserve(nbytes):
            with lock:
                seen.append(budget.in_use)
            time.sleep(0.02)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(decode, [60, 60, 30, 30, 30, 500, 10, 90]))
    assert max(seen) <= 100  # an oversized request (500) waits to run alone
    assert budget.in_use == 0


def test_concurrent_loads_share_the_process_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rgba.png"
    Image.new("RGBA", (300, 200)).save(path)
    assert images.decoded_bytes("RGBA", (300, 200)) == 300 * 200 * 4 * 2  # premultiplied copy
    budget = DecodeBudget(images.decoded_bytes("RGBA", (300, 200)))
    monkeypatch.setattr(images, "BUDGET", budget)
    peaks = []
    reserve = budget.reserve

    @contextlib.contextmanager
    def watched(nbytes: int) -> Iterator[None]:
        with reserve(nbytes):
            peaks.append(budget.in_use)
            yield

    monkeypatch.setattr(budget, "reserve", watched)
    with ThreadPoolExecutor(6) as pool:
        assert all(i.size == (300, 200) for i in pool.map(load_image, [path] * 6))
    assert peaks == [budget.capacity] * 6  # one at a time


def test_pixel_limit_is_a_parameter(tmp_path: Path) -> None:
    path = tmp_path / "square.png"
    Image.new("RGB", (100, 100)).save(path)
    with pytest.raises(ImageInputError, match="the limit is 5,000 pixels"):
        load_image(path, max_pixels=5_000)


def test_non_image_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture")
    with pytest.raises(ImageInputError, match="not an image file"):
        load_image(path)


def test_truncated_jpeg_is_refused_as_corrupt(tmp_path: Path) -> None:
    whole = tmp_path / "whole.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 100, 3), np.uint8)).save(
        whole, quality=95
    )
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ImageInputError, match="corrupt or truncated"):
        load_image(cut)


def test_empty_missing_oversized_and_absent_inputs_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.touch()
    with pytest.raises(ImageInputError, match="empty"):
        load_image(empty)
    with pytest.raises(ImageInputError, match="no image file"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageInputError, match="no image given"):
        load_image(None)
    big = tmp_path / "big.png"
    Image.new("RGB", (64, 64)).save(big)
    with pytest.raises(ImageInputError, match="MiB; the limit"):
        load_image(big, max_bytes=10)


def test_image_input_error_is_a_value_error() -> None:
    assert issubclass(ImageInputError, ValueError)


def test_file_digest_is_the_sha256_of_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "bytes.bin"
    path.write_bytes(b"cycletrans" * 1000)
    assert file_digest(path) == hashlib.sha256(b"cycletrans" * 1000).hexdigest()


def test_data_url_bytes_are_saved_undecoded(tmp_path: Path) -> None:
    url = "data:image/png;base64," + base64.b64encode(b"not really a png").decode()
    path = save_data_url(url, tmp_path / "uploads")
    assert path.read_bytes() == b"not really a png"
    with pytest.raises(ImageInputError, match="cannot be decoded"):
        save_data_url("data:image/png;base64", tmp_path)
    with pytest.raises(ImageInputError, match="over 1 MiB"):
        save_data_url("data:image/png;base64," + "A" * 2**21, tmp_path, max_bytes=2**20)


def test_upload_component_hands_over_the_file_without_opening_it(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG garbage")
    component = upload_image(label="query")
    assert component.preprocess(ImageData(path=str(corrupt))) == str(corrupt)
    assert component.preprocess(None) is None
    # gr.Image itself would have opened (and failed on) the file
    with pytest.raises(Exception, match="cannot identify image file"):
        type(component)(type="filepath", image_mode=None).preprocess(ImageData(path=str(corrupt)))
