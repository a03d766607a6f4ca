"""Our veRL dataset class: ``RLHFDataset`` reading images straight from the messages.

::

    data.custom_cls.path=pkg://deepmmsearch.train.verl.dataset
    data.custom_cls.name=DeepMMSearchRLDataset

The parquet comes from ``deepmmsearch data export <dataset> ... --format verl`` (FVQA, SimWeb,
any benchmark loader; :func:`deepmmsearch.data.export.write_verl`): one ``<image>`` placeholder
per image in the user prompt, images as ``{bytes, path}``, ``agent_name``, ``reward_model`` and
``extra_info`` (``question``, ``answers``, ...).

Differences from the stock class:

- images are taken from the content blocks ``RLHFDataset`` builds (PIL, bytes or a path), made
  RGB and left at full resolution — no ``qwen_vl_utils`` (which imports torchvision); the
  processor resizes them for the model (``data.mm_processor_kwargs`` bounds the pixels), and the
  image tools see the original pixels (crops stay sharp). Videos are refused.
- images stored by path (``--images path``) are opened from the path (the stock class tries to
  decode their empty ``bytes``);
- ``tools_kwargs`` is filled from ``extra_info.question`` when the file has none, so the stock
  ``tool_agent`` loop's tools know the question (their summaries and follow-ups need it).
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

from verl.utils.dataset.rl_dataset import RLHFDataset

from deepmmsearch.train.verl.session import IMAGE_TOOL, TEXT_TOOL


def _pil(ref: Any) -> Any:
    from PIL import Image

    from deepmmsearch.tools.crop import load_image, to_rgb

    if isinstance(ref, Image.Image):
        return to_rgb(ref)
    if isinstance(ref, dict):
        if ref.get("bytes"):
            with Image.open(io.BytesIO(ref["bytes"])) as im:
                im.load()
                return to_rgb(im)
        ref = ref.get("path")
    if isinstance(ref, (bytes, bytearray)):
        return _pil({"bytes": ref})
    if isinstance(ref, str) and ref:
        return load_image(ref)
    raise TypeError(f"cannot read an image from {type(ref).__name__}")


def images_from_messages(messages: list[dict[str, Any]]) -> list[Any] | None:
    """PIL images of the ``{"type": "image"}`` blocks, in order; None when there are none."""
    images = []
    for m in messages:
        content = m.get("content")
        if not isinstance(content, list):
            continue
        for block in content:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "video":
                raise ValueError("DeepMMSearchRLDataset: videos are not supported")
            if block.get("type") in ("image", "image_url"):
                ref = block.get("image") or block.get("image_url") or block
                images.append(_pil(ref))
    return images or None


def tools_kwargs_for(question: str) -> dict[str, Any]:
    return {name: {"create_kwargs": {"question": question}} for name in (TEXT_TOOL, IMAGE_TOOL)}


class DeepMMSearchRLDataset(RLHFDataset):
    """See the module docstring."""

    @classmethod
    def _process_multi_modal_info(cls, messages: list[dict], image_patch_size: Any,
                                  config: Any) -> tuple[Any, Any, Any]:
        return images_from_messages(messages), None, None

    @classmethod
    async def process_multi_modal_info(cls, messages: list[dict], image_patch_size: Any,
                                       config: Any) -> tuple[Any, Any, Any]:
        return await asyncio.to_thread(images_from_messages, messages), None, None

    @classmethod
    async def process_vision_info(cls, messages: list[dict], image_patch_size: Any,
                                  config: Any) -> tuple[Any, Any]:
        return await asyncio.to_thread(images_from_messages, messages), None

    def _build_messages(self, example: dict, key: str) -> list:
        # images written by path ({"bytes": None, "path": p}) would be opened from None bytes
        images = example.get(self.image_key)
        if images:
            example[self.image_key] = [
                im["path"] if isinstance(im, dict) and not im.get("bytes") and im.get("path") else im
                for im in images]
        return super()._build_messages(example, key)

    def __getitem__(self, item: int) -> dict:
        row = super().__getitem__(item)
        question = (row.get("extra_info") or {}).get("question")
        if not row.get("tools_kwargs") and question:
            row["tools_kwargs"] = tools_kwargs_for(str(question))
        return row
