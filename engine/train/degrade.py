"""Scanner and phone damage for page and staff images: rotation, perspective, blur, JPEG,
uneven light, paper texture, bleed-through, binarisation noise.

Every function takes a grey uint8 image (paper white, ink dark) and returns a new one.
"""

from __future__ import annotations

import cv2
import numpy as np


def rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    """Turn the image about its centre, filling the corners with paper."""
    height, width = image.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=255)


def perspective(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """A phone held off square: each corner moves by up to `strength` x the image size."""
    height, width = image.shape
    source = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    shift = rng.uniform(-strength, strength, size=(4, 2)) * np.float32([width, height])
    matrix = cv2.getPerspectiveTransform(source, (source + shift).astype(np.float32))
    return cv2.warpPerspective(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=255)


def warp(image: np.ndarray, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """A page that does not lie flat: rows bend along a slow sine of `amplitude` pixels."""
    height, width = image.shape
    phase, period = rng.uniform(0, 2 * np.pi), rng.uniform(1.0, 3.0) * width
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    ys = ys + amplitude * np.sin(2 * np.pi * xs / period + phase).astype(np.float32)
    return cv2.remap(image, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                     borderValue=255)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Out of focus or a soft scan."""
    return cv2.GaussianBlur(image, (0, 0), sigma)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Compression artefacts of a JPEG at `quality` (1-100)."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)


def uneven_light(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """A shadow or lamp across the page: a smooth gradient that darkens up to `strength`."""
    height, width = image.shape
    angle = rng.uniform(0, 2 * np.pi)
    xs, ys = np.meshgrid(np.linspace(-1, 1, width), np.linspace(-1, 1, height))
    ramp = (np.cos(angle) * xs + np.sin(angle) * ys + 1.5) / 3.0
    light = 1.0 - strength * ramp
    return np.clip(image.astype(np.float32) * light, 0, 255).astype(np.uint8)


def paper_texture(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Grey, grainy paper: low-frequency blotches and fine grain, darker by up to `strength`."""
    height, width = image.shape
    blotches = cv2.resize(rng.random((max(height // 32, 2), max(width // 32, 2))).astype(
        np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0, 0.35, size=(height, width)).astype(np.float32)
    paper = 255 * (1 - strength * (0.6 * blotches + 0.4 * np.abs(grain)))
    ink = image.astype(np.float32) / 255
    return np.clip(paper * ink, 0, 255).astype(np.uint8)


def bleed_through(image: np.ndarray, other: np.ndarray, alpha: float) -> np.ndarray:
    """The back of the page showing through: `other`, mirrored and faint at `alpha`."""
    back = cv2.resize(other[:, ::-1], (image.shape[1], image.shape[0]))
    back = cv2.GaussianBlur(back, (0, 0), 1.5).astype(np.float32)
    shade = 1 - alpha * (1 - back / 255)
    return np.clip(image.astype(np.float32) * shade, 0, 255).astype(np.uint8)


def binarise(image: np.ndarray, rng: np.random.Generator, flip: float = 0.01) -> np.ndarray:
    """A black-and-white scan: adaptive threshold with `flip` of the pixels near ink wrong."""
    block = int(rng.integers(5, 16)) * 2 + 1
    binary = cv2.adaptiveThreshold(image, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY,
                                   block, 10)
    edges = cv2.morphologyEx(binary, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    noise = (rng.random(image.shape) < flip * 10) & edges
    binary[noise] = 255 - binary[noise]
    return binary


def noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise of standard deviation `sigma` grey levels."""
    noisy = image.astype(np.float32) + rng.normal(0, sigma, size=image.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def degrade(
    image: np.ndarray, rng: np.random.Generator, *, page: bool, back: np.ndarray | None = None
) -> np.ndarray:
    """A random mix of the damages above, as a scanner or a phone would do.

    Args:
        image: grey page or staff image.
        rng: the random source.
        page: whether `image` is a whole page (larger turns, perspective and bends) or a
            staff already cut out and straightened by the page reader (small residues).
        back: another image to show through the paper, if any.
    """
    out = image
    height = image.shape[0]
    if page:
        if rng.random() < 0.8:
            out = rotate(out, rng.uniform(-3, 3))
        if rng.random() < 0.5:
            out = perspective(out, rng.uniform(0.005, 0.03), rng)
        if rng.random() < 0.4:
            out = warp(out, rng.uniform(1, 0.006 * height), rng)
    else:
        if rng.random() < 0.5:
            out = rotate(out, rng.uniform(-0.6, 0.6))
        if rng.random() < 0.3:
            out = warp(out, rng.uniform(0.3, 1.2), rng)
    if back is not None and rng.random() < 0.3:
        out = bleed_through(out, back, rng.uniform(0.05, 0.25))
    if rng.random() < 0.5:
        out = paper_texture(out, rng.uniform(0.05, 0.25), rng)
    if rng.random() < 0.5:
        out = uneven_light(out, rng.uniform(0.1, 0.45), rng)
    if rng.random() < 0.6:
        out = blur(out, rng.uniform(0.3, 1.2 if page else 0.9))
    if rng.random() < 0.4:
        out = noise(out, rng.uniform(2, 14), rng)
    if rng.random() < 0.2:
        out = binarise(out, rng, flip=rng.uniform(0.0, 0.02))
    if rng.random() < 0.5:
        out = jpeg(out, int(rng.integers(25, 90)))
    return out
