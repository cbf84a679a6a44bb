"""A small, varied sample set for ``prism demo``, drawn with Pillow.

Sizes, formats and the awkward cases the pipeline must handle: an EXIF-rotated photo,
transparency, animation, a 1x1 image, a truncated JPEG and a file that is no image.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

_ORIENTATION_TAG = 0x0112


def _photo(width: int, height: int) -> Image.Image:
    """A photo-like picture: colour gradients with a few shapes and an 'UP' marker."""
    horizontal = Image.linear_gradient("L").rotate(90).resize((width, height))
    vertical = Image.linear_gradient("L").resize((width, height))
    radial = Image.radial_gradient("L").resize((width, height))
    image = Image.merge("RGB", (horizontal, vertical, radial))
    draw = ImageDraw.Draw(image)
    unit = min(width, height) // 10
    draw.ellipse((unit, unit, 4 * unit, 4 * unit), fill=(250, 200, 40))
    draw.rectangle(
        (width - 5 * unit, height - 4 * unit, width - unit, height - unit), fill=(30, 90, 160)
    )
    draw.text((width // 2, unit), "UP", fill="white", anchor="mt", font_size=unit)
    return image


def _save(image: Image.Image, path: Path, **options: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)
    return path


def write_samples(folder: Path) -> list[Path]:
    """Write the sample set into ``folder``; the paths written."""
    written: list[Path] = []

    # As a phone camera stores a portrait shot: the pixels lie on their side (landscape) and
    # EXIF orientation 6 says "rotate 90° clockwise to display". Upright, 'UP' is at the top.
    exif = Image.Exif()
    exif[_ORIENTATION_TAG] = 6
    sideways = _photo(2000, 3000).transpose(Image.Transpose.ROTATE_90)
    written.append(_save(sideways, folder / "photos" / "rotated-camera.jpg", quality=90, exif=exif))
    written.append(_save(_photo(1200, 1800), folder / "photos" / "portrait.jpg", quality=88))

    logo = Image.new("RGBA", (640, 480), (0, 0, 0, 0))
    ImageDraw.Draw(logo).ellipse((80, 40, 560, 440), fill=(220, 40, 90, 200))
    written.append(_save(logo, folder / "graphics" / "transparent-logo.png"))

    frames = []
    for step in range(4):
        frame = Image.new("P", (200, 200), 0)
        frame.putpalette([255, 255, 255, 0, 120, 200] + [0, 0, 0] * 254)
        ImageDraw.Draw(frame).rectangle((step * 40, 80, step * 40 + 40, 120), fill=1)
        frames.append(frame)
    written.append(
        _save(
            frames[0],
            folder / "graphics" / "animation.gif",
            save_all=True,
            append_images=frames[1:],
            duration=120,
            loop=0,
        )
    )
    written.append(_save(_photo(1600, 400), folder / "graphics" / "banner.webp", quality=80))
    written.append(_save(_photo(800, 600), folder / "scan.bmp"))
    written.append(_save(Image.new("RGB", (1, 1), (10, 200, 30)), folder / "pixel.png"))

    # A JPEG cut off halfway, as an interrupted upload leaves it.
    buffer = io.BytesIO()
    _photo(640, 480).save(buffer, "JPEG", quality=85)
    broken = folder / "broken.jpg"
    broken.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    written.append(broken)

    notes = folder / "notes.txt"
    notes.write_text("Not an image: prism skips this file.\n", encoding="utf-8")
    written.append(notes)
    return written
