"""TRL glue for :mod:`deepmmsearch.train.grpo`: dataset, rollout function, rewards, metrics.

The pieces, in the order a step runs them:

1. TRL hands :meth:`GRPORun.rollout` this process's prompts, already repeated ``num_generations``
   times. Each prompt carries its sample id; the rollout builds one :class:`Episode` per prompt and
   runs them all concurrently with :func:`~deepmmsearch.agent.loop.run_episodes` — the
   :class:`~deepmmsearch.policies.hf.HFPolicy` around the model being trained (or, with
   ``trl.use_vllm``, :class:`~deepmmsearch.train.grpo_vllm.VLLMRolloutPolicy` on TRL's vLLM
   engine) batches their generations, the toolbox runs their real tool calls concurrently.
2. Every finished trajectory becomes ``prompt_ids`` / ``completion_ids`` / ``logprobs`` /
   ``env_mask`` through ``HFPolicy.rollout_tokens`` (the encoder SFT uses): injected text has mask 0.
3. Two reward functions: ``correctness`` (the judge on the final answer, async, all at once) and
   ``format`` (:func:`~deepmmsearch.protocol.format_score`), weighted ``[1 − λ, λ]``.
4. :class:`~deepmmsearch.train.grpo_metrics.MetricsLog` writes one JSON row per step to
   ``metrics.jsonl`` with TRL's numbers (loss,
   reward, KL, entropy, lengths) and ours (accuracy, format rate, tool calls per type, turns, stop
   reasons, and the step's time split into generation, tools, judge and optimisation).

The dataset's prompt is the episode's own first message (our prompt set, image at its
placeholder), so TRL's processor computes ``pixel_values`` / ``mm_token_type_ids`` for exactly
the prompt ids the rollout returns; the first rollout checks that they agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from deepmmsearch.agent.loop import run_episodes
from deepmmsearch.agent.state import Episode
from deepmmsearch.agent.toolbox import Toolbox
from deepmmsearch.protocol import IMAGE_PLACEHOLDER, format_score
from deepmmsearch.train.grpo_config import GRPORunConfig
from deepmmsearch.train.grpo_metrics import MetricsLog, StepStats, plot_rewards
from deepmmsearch.train.launch import (
    DTYPE_NAMES,
    freeze_vision,
    last_checkpoint,
    resolve_precision,
    use_cpu,
)
from deepmmsearch.types import Sample, Trajectory

log = logging.getLogger(__name__)


def sample_id_of(prompt: list[dict[str, Any]]) -> str:
    for m in prompt:
        if m.get("sample_id"):
            return str(m["sample_id"])
    raise ValueError("a GRPO prompt lost its sample_id (was the dataset built by deepmmsearch?)")


def prompt_messages(episode: Episode, sample_id: str) -> list[dict[str, Any]]:
    """The episode's first message in TRL's structured form, the image part at its placeholder."""
    out = []
    for m in episode.prompt:
        parts: list[dict[str, Any]] = []
        pieces = m.content.split(IMAGE_PLACEHOLDER)
        for i, text in enumerate(pieces):
            if i:
                parts.append({"type": "image", "text": None})
            if text:
                parts.append({"type": "text", "text": text})
        out.append({"role": m.role, "content": parts, "sample_id": sample_id})
    return out


class GRPORun:
    def __init__(self, cfg: GRPORunConfig) -> None:
        from deepmmsearch.prompts import get_prompts

        self.cfg = cfg
        self.out = Path(cfg.out)
        self.prompts = get_prompts(cfg.agent.prompts)
        self.samples: dict[str, Sample] = {}
        self.stats = StepStats()
        self.history: list[dict[str, Any]] = []
        self.rollouts_done = 0
        self._checked = False
        self.policy: Any = None
        self.trainer: Any = None

    # -- data --------------------------------------------------------------------------------

    def load_samples(self) -> list[Sample]:
        from deepmmsearch.registry import DATASET

        data = DATASET.build(self.cfg.dataset)
        samples = [s for s in data if s.answers]
        dropped = len(list(data)) - len(samples)
        no_image = [s for s in samples if not s.image]
        if no_image:
            log.warning("GRPO: dropping %d samples without an image", len(no_image))
            samples = [s for s in samples if s.image]
        if dropped:
            log.warning("GRPO: dropping %d samples without gold answers", dropped)
        if self.cfg.max_samples:
            samples = samples[: self.cfg.max_samples]
        if not samples:
            raise ValueError("GRPO: the dataset has no usable sample (question, image, answers)")
        self.samples = {s.id: s for s in samples}
        return samples

    def episode(self, sample: Sample, episode_id: str) -> Episode:
        return Episode(sample.question, sample.image, limits=self.cfg.agent.limits,
                       prompts=self.prompts, episode_id=episode_id, gold=sample.answers,
                       metadata={**sample.metadata, "id": sample.id})

    def build_dataset(self, samples: list[Sample]) -> Any:
        from datasets import Dataset, Image

        rows = {
            "prompt": [prompt_messages(self.episode(s, s.id), s.id) for s in samples],
            "image": [s.image for s in samples],
            "answers": [list(s.answers) for s in samples],
            "question": [s.question for s in samples],
            "sample_id": [s.id for s in samples],
        }
        return Dataset.from_dict(rows).cast_column("image", Image())

    # -- rollouts ----------------------------------------------------------------------------

    def make_policy(self, model: Any, processor: Any) -> Any:
        """The policy that writes the rollouts: TRL's vLLM engine when ``trl.use_vllm``, else
        :class:`~deepmmsearch.policies.hf.HFPolicy` on the model being trained."""
        options = {"temperature": self.cfg.temperature, "top_p": self.cfg.top_p, "seed": self.cfg.seed}
        if self.trainer is not None and getattr(self.trainer, "use_vllm", False):
            from deepmmsearch.train.grpo_vllm import VLLMRolloutPolicy

            policy = VLLMRolloutPolicy.from_trainer(self.trainer, processor, **options)
        else:
            from deepmmsearch.policies.hf import HFPolicy

            policy = HFPolicy.from_objects(model, processor, max_batch_size=64, **options)
        policy._run = self._timed(policy._run, "generation")
        return policy

    def _timed(self, fn: Any, label: str) -> Any:
        """``fn`` with its calls recorded on the current rollout's timeline (sync or async)."""
        if asyncio.iscoroutinefunction(fn):
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                with self.stats.timeline.timed(label):
                    return await fn(*args, **kwargs)

            return timed_async

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.stats.timeline.timed(label):
                return fn(*args, **kwargs)

        return timed

    def rollout(self, prompts: list[list[dict[str, Any]]], trainer: Any) -> dict[str, list]:
        """TRL's ``rollout_func``: whole multi-turn episodes, tokens, masks and log-probs."""
        model = trainer.accelerator.unwrap_model(trainer.model)
        was_training = model.training
        model.eval()
        self.stats = StepStats()
        t0 = time.perf_counter()
        episodes = [
            self.episode(self.samples[sample_id_of(p)], f"s{self.rollouts_done}-{i}-{sample_id_of(p)}")
            for i, p in enumerate(prompts)
        ]
        # the vLLM policy's session wakes the engine and, across ranks, keeps generate collective
        session = getattr(self.policy, "session", contextlib.nullcontext)
        try:
            with session():
                trajs = asyncio.run(run_episodes(episodes, self.policy, self.toolbox,
                                                 concurrency=len(episodes)))
        finally:
            if was_training:
                model.train()
        self.stats.rollout_s = time.perf_counter() - t0
        out = self.encode(trajs)
        if not self._checked:
            self.check_prompt_ids(prompts[0], out["prompt_ids"][0], trainer)
            self._checked = True
        self.record(trajs, out)
        self.rollouts_done += 1
        return out

    def encode(self, trajs: list[Trajectory]) -> dict[str, list]:
        limits = self.cfg.agent.limits
        max_len = int(self.cfg.trl_settings().get("max_completion_length") or 0)
        eos = self.processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
        out: dict[str, list] = {k: [] for k in (
            "prompt_ids", "completion_ids", "logprobs", "env_mask", "final_answer", "format_score",
            "n_tool_calls", "n_image_searches", "n_text_searches", "n_turns", "stop_reason")}
        for t in trajs:
            enc = self.policy.rollout_tokens(t)
            ids, mask = list(enc.completion_ids), list(enc.env_mask)
            lps = list(enc.logprobs) if enc.logprobs is not None else [0.0] * len(ids)
            if not ids:  # the policy failed before writing anything: one masked token
                ids, mask, lps = [eos], [0], [0.0]
            if max_len and len(ids) > max_len:
                ids, mask, lps = ids[:max_len], mask[:max_len], lps[:max_len]
                self.stats.truncated += 1
            calls = t.tool_calls
            out["prompt_ids"].append(list(enc.prompt_ids))
            out["completion_ids"].append(ids)
            out["env_mask"].append(mask)
            out["logprobs"].append(lps)
            out["final_answer"].append(t.answer)
            out["format_score"].append(format_score(
                t, max_image_searches=limits.max_image_searches, max_tool_calls=limits.max_tool_calls))
            out["n_tool_calls"].append(len(calls))
            out["n_image_searches"].append(sum(c.kind == "image_search" for c in calls))
            out["n_text_searches"].append(sum(c.kind == "text_search" for c in calls))
            out["n_turns"].append(len(t.turns))
            out["stop_reason"].append(t.stop_reason)
        return out

    def check_prompt_ids(self, prompt: list[dict[str, Any]], ours: list[int], trainer: Any) -> None:
        """TRL re-renders the prompt for pixel values: its ids must be ours, or positions break."""
        from trl.data_utils import apply_chat_template, prepare_multimodal_messages

        sample = self.samples[sample_id_of(prompt)]
        from deepmmsearch.tools.crop import load_image

        msgs = prepare_multimodal_messages(prompt, images=[])
        text = apply_chat_template({"prompt": msgs}, self.processor)["prompt"]
        theirs = self.processor(images=[load_image(sample.image)], text=[text],
                                return_tensors="pt")["input_ids"][0].tolist()
        if theirs != list(ours):
            raise RuntimeError(
                "GRPO: TRL's rendering of the prompt differs from the rollout's prompt ids "
                f"({len(theirs)} vs {len(ours)} tokens); the processor's chat template must be "
                "deepmmsearch.conversation.template.CHAT_TEMPLATE")

    def record(self, trajs: list[Trajectory], out: dict[str, list]) -> None:
        s = self.stats
        s.episodes = len(trajs)
        for t, mask, fmt in zip(trajs, out["env_mask"], out["format_score"]):
            calls = t.tool_calls
            s.tool_calls += len(calls)
            s.image_searches += sum(c.kind == "image_search" for c in calls)
            s.crop_searches += sum(c.kind == "image_search" and not c.whole_image for c in calls)
            s.text_searches += sum(c.kind == "text_search" for c in calls)
            s.tool_errors += sum(bool(c.error) for c in calls)
            s.turns += len(t.turns)
            s.model_tokens += sum(mask)
            s.injected_tokens += len(mask) - sum(mask)
            s.answered += t.answer is not None
            s.format_ok += fmt == 1.0
            s.stop_reasons[t.stop_reason or "none"] += 1
        self._last_trajs = trajs

    # -- rewards -----------------------------------------------------------------------------

    def reward_functions(self) -> list:
        from deepmmsearch.reward.judge import judge_many

        judge = self.judge

        async def correctness(prompts, completions, final_answer, answers, question, **kwargs):
            t0 = time.perf_counter()
            verdicts = await judge_many(judge, list(zip(question, final_answer, answers)), concurrency=32)
            self.stats.judge_s += time.perf_counter() - t0
            scores = [1.0 if v.correct else 0.0 for v in verdicts]
            self.stats.correct = int(sum(scores))
            self._last_verdicts = verdicts
            log_metric = kwargs.get("log_metric")
            if log_metric is not None:
                log_metric("judge/unparseable", sum(v.correct is None for v in verdicts) / max(1, len(verdicts)))
            return scores

        def fmt(prompts, completions, format_score, **kwargs):
            return [float(x) for x in format_score]

        correctness.__name__ = "correctness"
        fmt.__name__ = "format"
        return [correctness, fmt]

    @property
    def reward_weights(self) -> list[float]:
        lam = self.cfg.format_weight
        return [1.0 - lam, lam]

    # -- set-up and training -----------------------------------------------------------------

    def load_model(self) -> tuple[Any, Any, Any]:
        """The start model and processor, and the PEFT config (None for full fine-tuning)."""
        from deepmmsearch.models.loading import is_adapter_dir, load_model_and_processor

        cfg = self.cfg
        keep_adapter = cfg.continue_lora and is_adapter_dir(cfg.model)
        # loaded on the CPU: the trainer moves it to this process's device (as SFT does)
        model, processor = load_model_and_processor(
            cfg.model, device="cpu", dtype=self._dtype(), merge_adapter=not keep_adapter)
        processor.tokenizer.padding_side = "left"
        if cfg.method == "full" or keep_adapter:
            if keep_adapter:
                for name, p in model.named_parameters():
                    p.requires_grad_("lora_" in name)
            return model, processor, None
        from peft import LoraConfig

        peft_config = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                                 target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM")
        return model, processor, peft_config

    def _use_cpu(self) -> bool:
        return use_cpu(self.cfg.device)

    def _dtype(self) -> str:
        return DTYPE_NAMES[resolve_precision(self.cfg.precision, self.cfg.device)]

    def grpo_args(self) -> Any:
        from trl import GRPOConfig

        settings = self.cfg.trl_settings()
        cpu = self._use_cpu()
        settings.setdefault("per_device_train_batch_size", settings["num_generations"])
        settings.setdefault("logging_steps", 1)
        settings.setdefault("save_strategy", "no" if cpu else "steps")
        settings.setdefault("gradient_checkpointing", not cpu)
        return GRPOConfig(
            output_dir=str(self.out / "checkpoints"), seed=self.cfg.seed, report_to=self.cfg.report_to,
            use_cpu=cpu, bf16=self._dtype() == "bfloat16", fp16=self._dtype() == "float16", **settings,
        )

    def run(self) -> dict[str, Any]:
        from trl import GRPOTrainer

        from deepmmsearch.config import dump_config
        from deepmmsearch.registry import JUDGE

        cfg = self.cfg
        t0 = time.perf_counter()
        if cfg.torch_threads:
            import torch

            torch.set_num_threads(cfg.torch_threads)
        self.out.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, self.out / "config.yaml")
        samples = self.load_samples()
        # the arguments first: they set up the distributed state, so that "cuda" (a grounder's
        # device, say) means this process's GPU from here on
        args = self.grpo_args()
        model, self.processor, peft_config = self.load_model()
        self.toolbox = Toolbox.from_config(cfg.agent)
        self.toolbox.run = self._timed(self.toolbox.run, "tools")
        self.judge = JUDGE.build(cfg.judge)
        metrics = MetricsLog(self, self.out / "metrics.jsonl")
        self.trainer = trainer = GRPOTrainer(
            model=model, reward_funcs=self.reward_functions(), args=args,
            train_dataset=self.build_dataset(samples), processing_class=self.processor,
            rollout_func=self.rollout, peft_config=peft_config, callbacks=[metrics],
        )
        trainer.args.reward_weights = self.reward_weights
        trainer.reward_weights = _tensor(self.reward_weights)
        freeze_vision(trainer.model)
        trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
        if any("visual" in n for n in trainable) or not trainable:
            raise RuntimeError("GRPO: the vision tower must stay frozen and something must train")
        self.policy = self.make_policy(trainer.accelerator.unwrap_model(trainer.model), self.processor)
        log.info("GRPO: %d prompts × %d generations, %d trainable tensors", len(samples),
                 args.num_generations, len(trainable))
        result = trainer.train(resume_from_checkpoint=self._resume())
        model_dir = self.save(trainer)
        summary = {"steps": trainer.state.global_step, "train_loss": result.training_loss,
                   "prompts": len(samples), "wall_s": round(time.perf_counter() - t0, 2),
                   "model_dir": str(model_dir) if model_dir else None}
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        plot_rewards(self.history, self.out / "reward.png")
        return summary

    def _resume(self) -> str | None:
        return last_checkpoint(self.out / "checkpoints") if (self.out / "checkpoints").exists() else None

    def save(self, trainer: Any) -> Path | None:
        from deepmmsearch.models.loading import save_model_dir
        from deepmmsearch.models.processor import save_processor

        model = trainer.accelerator.unwrap_model(trainer.model)
        if hasattr(model, "peft_config"):
            adapter = self.out / "adapter"
            model.save_pretrained(str(adapter))
            save_processor(self.processor, adapter)
            if not self.cfg.save_merged:
                return adapter
            model = model.merge_and_unload()
        if not self.cfg.save_merged and self.cfg.method == "lora":
            return None
        return save_model_dir(model, self.processor, self.out / "model")


def _tensor(values: list[float]) -> Any:
    import torch

    return torch.tensor(values, dtype=torch.float32)
