"""Render evaluated trajectories as markdown, for reports and for reading failures.

    from deepmmsearch.eval.store import load_run_records
    from deepmmsearch.eval.render import render_record
    print(render_record(load_run_records("runs/eval/simweb_small")[0]))
"""

from __future__ import annotations

from collections.abc import Sequence

from deepmmsearch.eval.records import EvalRecord
from deepmmsearch.types import ToolCall

MAX_OBSERVATION = 600


def _clip(text: str, n: int = MAX_OBSERVATION) -> str:
    text = text.strip()
    return text if len(text) <= n else text[: n - 3] + "..."


def _fence(text: str) -> str:
    fence = "````" if "```" in text else "```"
    return f"{fence}text\n{text}\n{fence}"


def render_call(call: ToolCall) -> str:
    if call.kind == "text_search":
        what = f"text search `{call.query}`"
    elif call.whole_image:
        what = "image search on the whole image"
    else:
        box = ", ".join(f"{v:.0f}" for v in call.box.as_list()) if call.box else "?"
        what = f"image search on a crop of `{call.query}` (box [{box}], grounder {call.grounder})"
    bits = [f"{what} via `{call.backend}`: {len(call.hits)} hits, {call.latency_s * 1000:.0f} ms"]
    if call.cache_hit:
        bits.append("cache hit")
    if call.error:
        bits.append(f"**error**: {call.error}")
    if call.note:
        bits.append(f"note: {call.note}")
    lines = ["- " + "; ".join(bits)]
    lines += [f"  - [{h.title}]({h.url})" for h in call.hits[:3]]
    if call.crop_path:
        lines.append(f"  - crop: `{call.crop_path}`")
    return "\n".join(lines)


def render_record(rec: EvalRecord) -> str:
    """One sample: question, gold, every turn and tool call, the answer and the verdicts."""
    t = rec.trajectory
    out = [f"### {rec.dataset} / {rec.workflow} / `{rec.sample_id}`", "",
           f"**Question:** {t.question}  ", f"**Gold:** {' | '.join(t.gold) or '-'}  "]
    if t.image:
        out.append(f"**Image:** `{t.image}`  ")
    out.append("")
    fixed = t.metadata.get("fixed_calls") or []
    if fixed:
        out.append("*Fixed by the workflow:*")
        out += [render_call(ToolCall.from_dict(c) if isinstance(c, dict) else c) for c in fixed]
        out.append("")
    for turn in t.turns:
        tok = f", {turn.n_tokens} tokens" if turn.n_tokens is not None else ""
        out += [f"**Turn {turn.index}** ({turn.action.kind}{tok})", "", _fence(turn.model_text.strip())]
        if turn.action.kind == "invalid":
            out.append(f"*invalid: {turn.action.error}*")
        if turn.tool_call is not None:
            out.append(render_call(turn.tool_call))
        if turn.observation:
            out += ["", "Observation:", "", _fence(_clip(turn.observation))]
        out.append("")
    verdicts = ", ".join(
        f"{j}: {'correct' if v.correct else 'unparseable' if v.correct is None else 'incorrect'}"
        for j, v in rec.verdicts.items())
    out.append(f"**Answer:** {t.answer if t.answer is not None else '(none)'} "
               f"(stop: {t.stop_reason}; {t.wall_s:.2f} s)  ")
    out.append(f"**Verdicts:** {verdicts or '-'}  ")
    if rec.official is not None:
        out.append(f"**Official ({rec.official_metric}):** {rec.official:.2f}  ")
    if rec.error:
        out.append(f"**Workflow error:** {rec.error}  ")
    return "\n".join(out) + "\n"


def pick_examples(records: Sequence[EvalRecord], judge: str, n: int = 6) -> list[EvalRecord]:
    """A few instructive records: for each workflow, one graded correct and one not, preferring
    episodes that used tools; at most ``n``."""
    by_wf: dict[str, list[EvalRecord]] = {}
    for r in records:
        by_wf.setdefault(r.workflow, []).append(r)
    picked: list[EvalRecord] = []
    for recs in by_wf.values():
        ranked = sorted(recs, key=lambda r: (-len(r.trajectory.turns), r.sample_id))
        for want in (True, False):
            hit = next((r for r in ranked if bool(r.correct(judge)) is want), None)
            if hit is not None:
                picked.append(hit)
    return picked[:n]


def render_examples(records: Sequence[EvalRecord], judge: str, n: int = 6, title: str = "") -> str:
    picked = pick_examples(records, judge, n)
    head = [f"## {title or 'Example trajectories'}", ""]
    return "\n".join(head) + "\n".join(render_record(r) for r in picked)
