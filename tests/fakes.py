"""Small generated stand-ins for the book's real files, shared by the helper tests."""

import io

from PIL import Image


def jpeg_bytes(shade: int, size: tuple[int, int] = (360, 363)) -> bytes:
    """A JPEG of one colour (`shade` sets red and blue), like a PBC image in size by default."""
    image = Image.new("RGB", size, (shade, 128, 255 - shade))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()
