"""veRL's agent loops against a scripted token server: masks, caps, image-once, SFT parity."""

from __future__ import annotations

import pytest

pytest.importorskip("verl.experimental.agent_loop",
                    reason="veRL is tested in its own environment: make test-verl")

from deepmmsearch.protocol import STOP_STRINGS

QUESTION = "What is the wingspan of this bird?"
INFO = {"question": QUESTION, "answers": ["131 to 170 cm"], "id": "q1"}
IMG = "<reason>which bird?</reason><img_search>the white bird</img_search>"
TEXT = "<reason>an egret</reason><text_search>great egret wingspan</text_search>"
ANSWER = "<reason>found it</reason><answer>131 to 170 cm</answer>"
PARAMS = {"temperature": 1.0, "top_p": 1.0, "logprobs": True}


def model_spans(mask: list[int]) -> list[tuple[int, int]]:
    spans, start = [], None
    for i, m in enumerate(mask + [0]):
        if m and start is None:
            start = i
        elif not m and start is not None:
            spans.append((start, i))
            start = None
    return spans


async def test_masks_equal_the_sft_encoding(make_loop, fake_server, agent_prompt, tokenizer,
                                            processor, scene):
    from deepmmsearch.conversation.encoding import encode_trajectory

    server = fake_server([IMG + "<|im_end|><reason>ran on</reason>", TEXT, ANSWER])
    loop = make_loop(server)
    out = await loop.run(PARAMS, raw_prompt=agent_prompt(), extra_info=INFO)

    ids, mask = out.response_ids, out.response_mask
    assert len(ids) == len(mask) == len(out.response_logprobs)
    texts = [tokenizer.decode(ids[a:b]) for a, b in model_spans(mask)]
    assert texts == [IMG, TEXT, ANSWER]  # the run-on text after the first action was cut
    assert all(lp == -0.5 if m else lp == 0.0 for lp, m in zip(out.response_logprobs, mask))
    tool_text = tokenizer.decode([t for t, m in zip(ids, mask) if not m])
    assert tool_text.count("</information>") == 2 and "131 to 170 cm" in tool_text

    # token for token what SFT trains on: our chat template + masking.encode_trajectory
    traj = loop.episode.trajectory()
    grid = processor.image_processor(images=[scene], return_tensors="pt")["image_grid_thw"][0]
    n_pad = int(grid.prod()) // 4
    turn_ids = [ids[a:b] for a, b in model_spans(mask)]
    enc = encode_trajectory(tokenizer, traj, [n_pad], model_ids=turn_ids)
    assert enc.prompt_ids == out.prompt_ids
    assert enc.completion_ids == out.response_ids and enc.env_mask == out.response_mask
    assert out.prompt_ids.count(tokenizer.convert_tokens_to_ids("<|image_pad|>")) == n_pad

    assert out.extra_fields["dmm_turns"] == [IMG, TEXT, ANSWER]
    assert out.extra_fields["dmm_answer"] == "131 to 170 cm"
    assert out.num_turns == 2 + 3 + 1 and out.multi_modal_data["images"][0].size == scene.size
    first = server.calls[0]["sampling_params"]
    assert first["stop"] == list(STOP_STRINGS) and first["include_stop_str_in_output"] is True
    assert first["max_tokens"] == 2048 and first["temperature"] == 1.0
    assert server.calls[1]["prompt_ids"] == out.prompt_ids + ids[: model_spans(mask)[1][0]]


async def test_image_search_runs_once(make_loop, fake_server, agent_prompt):
    whole = "<reason>again</reason><img_search><img></img_search>"
    loop = make_loop(fake_server([IMG, whole, ANSWER]))
    out = await loop.run(PARAMS, raw_prompt=agent_prompt(), extra_info=INFO)
    fields = out.extra_fields
    assert (fields["dmm_image_searches"], fields["dmm_tool_calls"]) == (1, 1)
    assert len(loop.runtime.toolbox.image_search.calls) == 1
    assert "image search may be used once" in loop.episode.turns[1].observation
    assert fields["dmm_answer"] == "131 to 170 cm"


async def test_turn_caps(make_loop, fake_server, agent_prompt):
    loop = make_loop(fake_server([TEXT] * 12),
                     **{"actor_rollout_ref.rollout.multi_turn.max_user_turns": 3})
    out = await loop.run(PARAMS, raw_prompt=agent_prompt(), extra_info=INFO)
    assert len(model_spans(out.response_mask)) == 4  # 3 tool rounds + a final generation
    assert out.extra_fields["dmm_stop_reason"] == "max_user_turns"
    assert out.extra_fields["dmm_tool_calls"] == 3 and out.extra_fields["dmm_answer"] is None

    loop = make_loop(fake_server([TEXT] * 12),
                     **{"actor_rollout_ref.rollout.multi_turn.max_assistant_turns": 2})
    out = await loop.run(PARAMS, raw_prompt=agent_prompt(), extra_info=INFO)
    assert len(model_spans(out.response_mask)) == 2
    assert out.extra_fields["dmm_stop_reason"] == "max_assistant_turns"


async def test_episode_budgets_apply(make_loop, fake_server, agent_prompt):
    """The paper's ≤ 10 tool calls: the agent config's 11 turns end the 11th search."""
    loop = make_loop(fake_server([TEXT] * 11),
                     **{"actor_rollout_ref.rollout.multi_turn.max_user_turns": None,
                        "actor_rollout_ref.rollout.multi_turn.max_assistant_turns": None,
                        "actor_rollout_ref.rollout.response_length": 8192})
    out = await loop.run(PARAMS, raw_prompt=agent_prompt(), extra_info=INFO)
    assert out.extra_fields["dmm_tool_calls"] == 10
    assert out.extra_fields["dmm_stop_reason"] == "max_turns"
    note = loop.episode.turns[9].observation.rsplit("</information>", 1)[1]
    assert "10" in note and "tool call" in note  # the episode says the budget is spent


async def test_response_length_is_never_exceeded(make_loop, fake_server, agent_prompt):
    loop = make_loop(fake_server([IMG, TEXT, ANSWER]), **{
        "actor_rollout_ref.rollout.response_length": 40})
    out = await loop.run(PARAMS, raw_prompt=agent_prompt(), extra_info=INFO)
    assert len(out.response_ids) <= 40 and out.response_mask[-1] == 1
    assert out.extra_fields["dmm_stop_reason"] == "response_length"


async def test_malformed_turns_get_corrections_then_stop(make_loop, fake_server, agent_prompt):
    loop = make_loop(fake_server(["I think it is an egret.", "<answer>egret</answer>",
                                  "no tags at all"]))
    out = await loop.run(PARAMS, raw_prompt=agent_prompt(), extra_info=INFO)
    assert out.extra_fields["dmm_stop_reason"] == "invalid_actions"
    assert out.extra_fields["dmm_invalid_turns"] == 3 and out.extra_fields["dmm_tool_calls"] == 0
    assert "could not be used" in loop.episode.turns[0].observation


async def test_missing_question_is_a_clear_error(make_loop, fake_server, agent_prompt):
    with pytest.raises(ValueError, match="extra_info.question"):
        await make_loop(fake_server([ANSWER])).run(PARAMS, raw_prompt=agent_prompt(), extra_info={})


async def test_stock_tool_agent_loop_with_our_parser_tools_and_template(
        make_loop, fake_server, agent_prompt, processor, tokenizer):
    from verl.experimental.agent_loop.tool_agent_loop import ToolAgentLoop

    from deepmmsearch.train.verl.dataset import tools_kwargs_for
    from deepmmsearch.train.verl.reward import compute_score
    from deepmmsearch.train.verl.template import TOOL_TURN_TEMPLATE

    end = "<|im_end|>"
    saved = tokenizer.chat_template, processor.chat_template
    tokenizer.chat_template = processor.chat_template = TOOL_TURN_TEMPLATE
    try:
        server = fake_server([IMG + end, "<reason>again</reason><img_search><img></img_search>" + end,
                              TEXT + end, ANSWER + end])
        loop = make_loop(server, cls=ToolAgentLoop)
        out = await loop.run(PARAMS, raw_prompt=agent_prompt(), extra_info=INFO,
                             tools_kwargs=tools_kwargs_for(QUESTION))
    finally:
        tokenizer.chat_template, processor.chat_template = saved
    spans = model_spans(out.response_mask)
    assert [tokenizer.decode(out.response_ids[a:b]) for a, b in spans] == [
        IMG + end, "<reason>again</reason><img_search><img></img_search>" + end, TEXT + end,
        ANSWER + end]
    tool_turns = tokenizer.decode([t for t, m in zip(out.response_ids, out.response_mask) if not m])
    assert tool_turns.count("<|im_start|>user\n<information>") == 3
    assert "image search may be used once" in tool_turns
    assert out.extra_fields["dmm_image_searches"] == 1 and out.extra_fields["dmm_tool_calls"] == 2
    solution = tokenizer.decode(out.response_ids, skip_special_tokens=True)
    score = await compute_score("fvqa", solution, "131 to 170 cm", {**INFO, **out.extra_fields})
    assert score["turns"] == 4.0 and score["correctness"] == 1.0
    assert score["format"] == 0.0  # two image searches break the schema


async def test_verl_postprocessing_accepts_our_output(make_loop, fake_server, agent_prompt,
                                                      processor, verl_config):
    """veRL's worker pads our output and rebuilds the image inputs: pads and pixels must agree."""
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker

    out = await make_loop(fake_server([TEXT, ANSWER])).run(PARAMS, raw_prompt=agent_prompt(),
                                                            extra_info=INFO)
    worker = AgentLoopWorker.__new__(AgentLoopWorker)  # its Ray-free parts (veRL 0.9.1, pinned)
    worker.processor, worker.tokenizer = processor, processor.tokenizer
    worker.rollout_config = verl_config().actor_rollout_ref.rollout
    worker.reward_loop_worker_handles, worker.distillation_enabled = None, False
    worker.mm_processor_kwargs = {}
    padded = await worker._agent_loop_postprocess(out, False, raw_prompt=agent_prompt())
    grid = padded.multi_modal_inputs["image_grid_thw"]
    pad_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((padded.input_ids == pad_id).sum()) == int(grid.prod()) // 4
    assert int(padded.response_mask.sum()) == sum(out.response_mask)
    assert padded.input_ids.shape[1] == 2048 + 2048  # prompt_length + response_length
