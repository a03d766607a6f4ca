"""Re-rank an image-search shortlist by local features: ORB or SIFT matches verified by RANSAC.

Candidates with at least ``min_inliers`` geometrically consistent matches move to the front,
ordered by inlier count; the rest keep their embedding order. Gallery keypoints are cached
(LRU) by path. Needs ``opencv-python-headless`` (``pip install 'deepmmsearch[image]'``).

Used by ``LocalImageSearch(rerank="orb" | "sift")``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from PIL import Image

from deepmmsearch.registry import ConfigError, missing_dependency
from deepmmsearch.tools.crop import ImageLoadError, load_image


def _cv2():
    try:
        import cv2
    except ImportError:
        raise missing_dependency("opencv-python-headless", "image", "local-feature re-ranking") from None
    return cv2


class LocalFeatureReranker:
    def __init__(self, method: str = "orb", n_features: int = 1000, min_inliers: int = 8,
                 work_edge: int = 320, cache_size: int = 4096) -> None:
        if method not in ("orb", "sift"):
            raise ConfigError(f"rerank must be none, orb or sift, got {method!r}")
        cv2 = _cv2()
        self.method = method
        self.min_inliers = min_inliers
        self.work_edge = work_edge
        if method == "orb":
            self.detector = cv2.ORB_create(nfeatures=n_features, edgeThreshold=8, patchSize=15)
            self.norm = cv2.NORM_HAMMING
        else:
            self.detector = cv2.SIFT_create(nfeatures=n_features)
            self.norm = cv2.NORM_L2
        self.matcher = cv2.BFMatcher(self.norm)
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self.cache_size = cache_size
        self._lock = threading.Lock()  # OpenCV detectors and the cache are shared by threads

    def features(self, image: Image.Image) -> tuple[Any, Any]:
        """Keypoints and descriptors of ``image``, resized so its long edge is ``work_edge``."""
        grey = image.convert("L")
        scale = self.work_edge / max(grey.size)
        if abs(scale - 1) > 0.05:
            grey = grey.resize((max(8, round(grey.size[0] * scale)), max(8, round(grey.size[1] * scale))),
                               Image.BICUBIC)
        return self.detector.detectAndCompute(np.asarray(grey), None)

    def _gallery(self, path: str) -> tuple[Any, Any]:
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        try:
            feats = self.features(load_image(path))
        except ImageLoadError:
            feats = ((), None)
        self._cache[path] = feats
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return feats

    def inliers(self, query: tuple[Any, Any], gallery: tuple[Any, Any]) -> int:
        cv2 = _cv2()
        (kq, dq), (kg, dg) = query, gallery
        if dq is None or dg is None or len(kq) < 4 or len(kg) < 4:
            return 0
        pairs = self.matcher.knnMatch(dq, dg, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
        if len(good) < 4:
            return 0
        src = np.float32([kq[m.queryIdx].pt for m in good]).reshape(-1, 1, 2)
        dst = np.float32([kg[m.trainIdx].pt for m in good]).reshape(-1, 1, 2)
        _h, mask = cv2.findHomography(src, dst, cv2.RANSAC, 5.0)
        return 0 if mask is None else int(mask.sum())

    def rerank(self, image: Image.Image, candidates: list[tuple[int, float]],
               paths: list[str]) -> list[tuple[int, float]]:
        """Reorder ``candidates`` ((item, score), best first); ``paths[j]`` is candidate j's picture."""
        with self._lock:
            q = self.features(image)
            counts = [self.inliers(q, self._gallery(p)) for p in paths]
        order = sorted(range(len(candidates)),
                       key=lambda j: (counts[j] < self.min_inliers,
                                      -counts[j] if counts[j] >= self.min_inliers else 0, j))
        return [candidates[j] for j in order]
