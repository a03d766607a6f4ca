"""Images in and out of the server: checked decoding, content-addressed uploads, safe file roots.

* :func:`decode_image` refuses (413) an image over the pixel limit from its header alone, before
  decoding it, and (400) anything PIL cannot read.
* :class:`ImageStore` writes accepted images as PNG under ``uploads/`` by content hash.
* :class:`FileRoots` serves images only from named folders: a URL is ``/api/files/<root>/<rel>``
  and ``<rel>`` must resolve (symlinks followed) inside that root and name an image file. No
  other path on disk can be reached.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import uuid
import warnings
from pathlib import Path
from urllib.parse import quote

from deepmmsearch.serve.security import ApiError

MAX_REL_CHARS = 1024
MAX_REL_PARTS = 64
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp"}
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^,;]*)*?);base64,",
                       re.IGNORECASE)


def decode_image(data: bytes, *, max_pixels: int):
    """Bytes → RGB PIL image, with the pixel limit checked before the pixels are decoded."""
    from PIL import Image, UnidentifiedImageError

    from deepmmsearch.tools.crop import to_rgb

    if not data:
        raise ApiError(400, "the image is empty", code="bad_image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            if w * h > max_pixels:
                raise ApiError(413, f"the image is {w}x{h} = {w * h:,} pixels; the server's limit "
                               f"is {max_pixels:,} pixels", code="image_too_large")
            im.load()
            return to_rgb(im)
    except Image.DecompressionBombError as exc:
        raise ApiError(413, f"the image is too large: {exc}", code="image_too_large") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ApiError(400, f"cannot read the image: {exc}", code="bad_image") from None


def decode_data_url(url: str, *, max_bytes: int) -> bytes:
    """``data:image/png;base64,....`` → bytes; 413 when the payload is over ``max_bytes``."""
    m = _DATA_URL.match(url)
    if not m:
        raise ApiError(400, "an image data URL must look like data:image/png;base64,<data>",
                       code="bad_image_url")
    mime = (m.group("mime") or "").lower()
    if mime and not mime.startswith("image/"):
        raise ApiError(400, f"the data URL holds {mime!r}, not an image", code="bad_image_url")
    payload = url[m.end():]
    if len(payload) > (max_bytes * 4) // 3 + 8:
        raise ApiError(413, f"the image is larger than the server's limit of {max_bytes:,} bytes",
                       code="payload_too_large")
    try:
        data = base64.b64decode(payload.strip(), validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, f"the image data URL is not valid base64: {exc}",
                       code="bad_image_url") from None
    if len(data) > max_bytes:
        raise ApiError(413, f"the image is larger than the server's limit of {max_bytes:,} bytes",
                       code="payload_too_large")
    return data


class ImageStore:
    """Accepted images, saved as ``<sha256[:20]>.png`` under ``root``."""

    def __init__(self, root: str | Path, *, max_pixels: int) -> None:
        self.root = Path(root)
        self.max_pixels = max_pixels
        self.root.mkdir(parents=True, exist_ok=True)

    def save(self, data: bytes) -> Path:
        image = decode_image(data, max_pixels=self.max_pixels)
        path = self.root / f"{hashlib.sha256(data).hexdigest()[:20]}.png"
        if not path.exists():  # two requests with the same image: each writes its own temp file
            tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp")
            try:
                image.save(tmp, format="PNG")
                tmp.replace(path)
            finally:
                tmp.unlink(missing_ok=True)
        return path


class FileRoots:
    """Named folders whose image files may be served; see the module docstring."""

    def __init__(self, roots: dict[str, str | Path]) -> None:
        self.roots = {name: Path(p).resolve() for name, p in roots.items() if p}

    def url_for(self, path: str | None) -> str | None:
        """The ``/api/files/...`` URL of ``path``, or None when it is outside every root."""
        if not path:
            return None
        try:
            resolved = Path(path).resolve()
        except (OSError, RuntimeError):
            return None
        if resolved.suffix.lower() not in IMAGE_SUFFIXES:
            return None
        for name, root in self.roots.items():
            if resolved.is_relative_to(root):
                return f"/api/files/{name}/{quote(resolved.relative_to(root).as_posix())}"
        return None

    def resolve(self, root: str, rel: str) -> Path:
        """The file named by a ``/api/files/<root>/<rel>`` URL; 404 unless it is a served image."""
        base = self.roots.get(root)
        missing = ApiError(404, "no such file", code="not_found")
        if base is None or not rel or "\x00" in rel or rel.startswith(("/", "\\")):
            raise missing
        if len(rel) > MAX_REL_CHARS or rel.count("/") >= MAX_REL_PARTS:
            raise missing  # deeper or longer than any served file: not worth a system call
        try:
            target = (base / rel).resolve()
            if not target.is_relative_to(base) or target.suffix.lower() not in IMAGE_SUFFIXES:
                raise missing
            if not target.is_file():
                raise missing
        except (OSError, RuntimeError, ValueError):  # name too long, loops, odd bytes
            raise missing from None
        return target
