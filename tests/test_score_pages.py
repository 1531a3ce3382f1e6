"""Page images and PDFs coming in: formats, pages, and every bad input a person can give."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from engine.errors import InvalidScore
from engine.score.pages import MAX_PAGES, MAX_SIDE, load_pages
from tests.score_pages import image_bytes, pdf_bytes


@pytest.fixture
def page() -> np.ndarray:
    image = np.full((400, 300), 255, np.uint8)
    image[100:141:10, 20:280] = 0
    return image


@pytest.mark.parametrize("format", ["PNG", "JPEG", "TIFF", "BMP", "WEBP"])
def test_image_formats_give_one_grey_page(page: np.ndarray, format: str) -> None:  # noqa: A002
    pages = load_pages(image_bytes(page, format), f"page.{format.lower()}")
    assert len(pages) == 1
    assert pages[0].shape == page.shape and pages[0].dtype == np.uint8
    assert np.abs(pages[0].astype(int) - page).mean() < 8


def test_a_pdf_gives_every_page(page: np.ndarray) -> None:
    pages = load_pages(pdf_bytes([page, 255 - page, page]), "book.pdf")
    assert len(pages) == 3
    assert pages[1].mean() < pages[0].mean()


def test_a_phone_photo_is_turned_upright_by_its_exif(page: np.ndarray) -> None:
    image = Image.fromarray(page).rotate(90, expand=True)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    (upright,) = load_pages(buffer.getvalue(), "photo.jpg")
    assert upright.shape == page.shape


def test_large_scans_are_scaled_down() -> None:
    big = np.full((MAX_SIDE * 2, 1000), 255, np.uint8)
    (page,) = load_pages(image_bytes(big), "big.png")
    assert max(page.shape) == MAX_SIDE


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"hello, this is not a picture", "not an image or PDF"),
        (b"%PDF-1.4 broken", "cannot be opened"),
    ],
)
def test_bad_files_are_refused_with_a_message(data: bytes, message: str) -> None:
    with pytest.raises(InvalidScore, match=message):
        load_pages(data, "upload")


def test_a_cut_short_image_is_refused(page: np.ndarray) -> None:
    data = image_bytes(page)
    with pytest.raises(InvalidScore, match="damaged or cut short"):
        load_pages(data[: len(data) // 2], "cut.png")


def test_a_decompression_bomb_is_refused_before_it_is_decoded() -> None:
    buffer = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(buffer, format="PNG")  # 144 Mpx in a few KB
    assert len(buffer.getvalue()) < 100_000
    with pytest.raises(InvalidScore, match="megapixels"):
        load_pages(buffer.getvalue(), "bomb.png")


def test_a_500_page_pdf_is_refused_with_what_to_do() -> None:
    tiny = np.full((20, 20), 255, np.uint8)
    with pytest.raises(InvalidScore, match=f"500 pages.*at most {MAX_PAGES}"):
        load_pages(pdf_bytes([tiny] * 500), "book.pdf")


def test_a_transparent_page_reads_as_ink_on_white(page: np.ndarray) -> None:
    rgba = np.zeros((*page.shape, 4), np.uint8)
    rgba[..., 3] = 255 - page  # black ink where the page is dark, transparent elsewhere
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    (grey,) = load_pages(buffer.getvalue(), "export.png")
    assert grey[0, 0] == 255 and grey[100, 100] == 0


def test_a_16_bit_scan_keeps_its_grey_levels(page: np.ndarray) -> None:
    deep = (page.astype(np.uint16) * 257).astype(np.uint16)
    deep[page == 0] = 8000  # dark grey ink, far above 255 in 16 bits
    buffer = io.BytesIO()
    Image.fromarray(deep).save(buffer, format="TIFF")
    (grey,) = load_pages(buffer.getvalue(), "scan.tif")
    assert grey[0, 0] == 255
    assert 20 < grey[100, 100] < 40  # 8000 / 65535 of white
