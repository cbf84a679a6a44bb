"""Tone and detail filters on working-mode images (RGB, RGBA, L, LA); alpha is kept.

Never mutates its input: every function returns a new image.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image, ImageEnhance, ImageFilter, ImageOps

_PREMULTIPLIED = {"RGBA": "RGBa", "LA": "La"}


def grayscale(image: Image.Image) -> Image.Image:
    return image.convert("LA" if "A" in image.getbands() else "L")


def blur(image: Image.Image, sigma: float) -> Image.Image:
    return _premultiplied(image, ImageFilter.GaussianBlur(radius=sigma))


def sharpen(image: Image.Image, radius: float, percent: int, threshold: int) -> Image.Image:
    return _premultiplied(
        image, ImageFilter.UnsharpMask(radius=radius, percent=percent, threshold=threshold)
    )


def brighten(image: Image.Image, value: float) -> Image.Image:
    # Brightness blends with black; Pillow keeps the alpha band as it was.
    return ImageEnhance.Brightness(image).enhance(1.0 + value)


def contrast(image: Image.Image, value: float) -> Image.Image:
    # Contrast blends with the mean grey; Pillow keeps the alpha band as it was.
    return ImageEnhance.Contrast(image).enhance(1.0 + value)


def autocontrast(image: Image.Image, cutoff: float) -> Image.Image:
    return _colour_only(
        image, lambda colour, mask: ImageOps.autocontrast(colour, cutoff, mask=mask)
    )


def equalize(image: Image.Image) -> Image.Image:
    return _colour_only(image, lambda colour, mask: ImageOps.equalize(colour, mask=mask))


def _premultiplied(image: Image.Image, kernel: ImageFilter.Filter) -> Image.Image:
    premultiplied = _PREMULTIPLIED.get(image.mode)
    if premultiplied is None:
        return image.filter(kernel)
    # Filter premultiplied colours, or invisible pixels bleed their colour into the edges.
    return image.convert(premultiplied).filter(kernel).convert(image.mode)


def _colour_only(
    image: Image.Image,
    operation: Callable[[Image.Image, Image.Image | None], Image.Image],
) -> Image.Image:
    """Apply a histogram operation (L/RGB only in Pillow) to the colour bands, measuring
    the histogram on the visible pixels only, and put the alpha back."""
    if "A" not in image.getbands():
        return operation(image, None)
    alpha = image.getchannel("A")
    visible = alpha.point(lambda value: 255 if value else 0, mode="1")
    result = operation(image.convert("L" if image.mode == "LA" else "RGB"), visible)
    result.putalpha(alpha)
    return result
