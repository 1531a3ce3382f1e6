"""Where a page of sheet music enters: image or PDF bytes -> grey page images, validated."""

from __future__ import annotations

import io
import warnings

import numpy as np

from engine.errors import InvalidScore

MAX_PAGES = 40  # pages read from one file; a longer PDF is refused with a message
MAX_PIXELS = 80_000_000  # a page image with more pixels is refused (decompression bombs)
MAX_SIDE = 3600  # longer page images are scaled down to this many pixels on their long side
PDF_DPI = 200  # resolution PDF pages are rendered at
SUPPORTED = "PNG, JPEG, TIFF, BMP, WebP or PDF"


def _pdf_pages(data: bytes, name: str) -> list[np.ndarray]:
    import pypdfium2

    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as err:
        raise InvalidScore(f"{name} looks like a PDF but cannot be opened ({err}).") from None
    try:
        count = len(document)
        if count == 0:
            raise InvalidScore(f"{name} is a PDF with no pages.")
        if count > MAX_PAGES:
            raise InvalidScore(
                f"{name} has {count} pages; the reader takes at most {MAX_PAGES} pages per "
                "file. Split the PDF into parts (one movement or song each) and read them "
                "one by one."
            )
        pages = []
        for index in range(count):
            page = document[index]
            width, height = page.get_size()
            scale = PDF_DPI / 72
            if width * height * scale * scale > MAX_PIXELS:
                scale = (MAX_PIXELS / (width * height)) ** 0.5
            bitmap = page.render(scale=scale, grayscale=True)
            pages.append(np.array(bitmap.to_pil().convert("L")))
        return pages
    finally:
        document.close()


def _too_large(name: str, size: str) -> InvalidScore:
    return InvalidScore(
        f"{name} is {size}, more than the reader opens ({MAX_PIXELS // 1_000_000} megapixels). "
        "Scan or export it at 300 dpi or less."
    )


def _grey(image) -> np.ndarray:  # noqa: ANN001 - a PIL image
    """A PIL image as grey uint8: transparency laid over white paper, 16-bit and float images
    scaled to 8 bits."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        return np.clip(values / top * 255.0, 0, 255).astype(np.uint8)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(paper, rgba).convert("L"))
    return np.asarray(image.convert("L"))


def _image_pages(data: bytes, name: str) -> list[np.ndarray]:
    from PIL import Image, ImageOps, UnidentifiedImageError

    bombs = (Image.DecompressionBombError, Image.DecompressionBombWarning)
    pages = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise _too_large(name, f"{width} x {height} pixels")
            for index in range(min(getattr(image, "n_frames", 1), MAX_PAGES + 1)):
                image.seek(index)
                pages.append(_grey(ImageOps.exif_transpose(image)))
    except UnidentifiedImageError:
        raise InvalidScore(
            f"{name} is not an image or PDF the reader knows; use {SUPPORTED}."
        ) from None
    except bombs:
        raise _too_large(name, "too many pixels") from None
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise InvalidScore(f"{name} is damaged or cut short and cannot be read ({err}).") from None
    if len(pages) > MAX_PAGES:
        raise InvalidScore(f"{name} has more than {MAX_PAGES} pages; split it into parts.")
    return pages


def _fit(page: np.ndarray) -> np.ndarray:
    import cv2

    longest = max(page.shape)
    if longest <= MAX_SIDE:
        return np.ascontiguousarray(page)
    scale = MAX_SIDE / longest
    size = (max(int(page.shape[1] * scale), 1), max(int(page.shape[0] * scale), 1))
    return cv2.resize(page, size, interpolation=cv2.INTER_AREA)


def load_pages(data: bytes, name: str = "page") -> list[np.ndarray]:
    """Image or PDF bytes -> grey pages (uint8, paper light), at most MAX_SIDE pixels long.

    A phone photo is turned upright by its EXIF orientation; a multi-page TIFF or PDF gives
    one image per page.

    Raises:
        InvalidScore: when there are no bytes, or they are not a readable image or PDF, or
            the file is too large or too long.
    """
    if not data:
        raise InvalidScore(f"{name} is empty (0 bytes).")
    pages = _pdf_pages(data, name) if data[:5] == b"%PDF-" else _image_pages(data, name)
    return [_fit(page) for page in pages]
