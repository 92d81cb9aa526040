"""Mu2ForConditionalGeneration end to end on the tiny size: every preset, generate, save/load."""

from __future__ import annotations

import pytest
import torch

from mu2.errors import Mu2Error
from mu2.model import PRESET_NAMES, Mu2ForConditionalGeneration, build

QUESTIONS = ["Describe the findings of the abdomen in this CT.", "Describe the chest."]
REPORTS = ["The liver is normal in size. No focal lesion.", "A 12 mm cyst in the left kidney."]


def _batch(model, frames, answers=REPORTS):
    pv, fmask = model.processor.pad_frames(frames)
    return {"pixel_values": pv, "frame_mask": fmask, **model.processor(QUESTIONS, answers)}


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_every_preset_goes_from_a_prepared_volume_and_question_to_logits(preset, prepared_frames):
    model = build("tiny", preset, train_texts=REPORTS).eval()
    batch = _batch(model, prepared_frames)
    with torch.no_grad():
        out = model(**batch)
    assert out.logits.shape == (*batch["input_ids"].shape, model.config.text_config.vocab_size)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.loss)


def test_a_40_slice_ct_gives_the_same_token_count_as_any_other_depth(tiny_model, prepared_frames):
    ct40 = prepared_frames[0]
    assert ct40.shape[1:] == (16, 64, 64) and ct40.shape[0] >= 2
    q = tiny_model.num_image_tokens
    question = tiny_model.processor(QUESTIONS[:1])
    for t in (1, 2, 8):
        pv = ct40[:1].expand(t, -1, -1, -1)[None] if t > ct40.shape[0] else ct40[:t][None]
        enc = tiny_model.encode_images(
            pv, None, question["question_ids"], question["question_mask"]
        )
        assert enc.tokens.shape == (1, q, 128)


def test_placeholder_mismatch_raises_with_both_numbers(tiny_model, prepared_frames):
    batch = _batch(tiny_model, prepared_frames)
    ids = batch["input_ids"].clone()
    first = (ids[0] == tiny_model.config.image_token_id).nonzero()[0, 0]
    ids[0, first] = tiny_model.processor.tokenizer.pad_token_id
    batch["input_ids"] = ids
    with pytest.raises(Mu2Error, match=r"\[31, 32\] image placeholder.*produced 32 tokens"):
        tiny_model(**batch)


def test_loss_counts_report_tokens_only(tiny_model, prepared_frames):
    batch = _batch(tiny_model, prepared_frames)
    with torch.no_grad():
        out = tiny_model(**batch)
    logits, labels = out.logits[:, :-1], batch["labels"][:, 1:]
    keep = labels != -100
    manual = torch.nn.functional.cross_entropy(logits[keep], labels[keep])
    assert torch.allclose(out.loss, manual, atol=1e-5)


def test_save_and_load_round_trip_gives_identical_logits(tiny_model, prepared_frames, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    again = Mu2ForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert again.processor is not None
    batch = _batch(again, prepared_frames)
    with torch.no_grad():
        assert torch.equal(tiny_model(**batch).logits, again(**batch).logits)
    emb = again.language_model.get_input_embeddings().weight
    assert emb.data_ptr() == again.language_model.get_output_embeddings().weight.data_ptr()


def test_generate_returns_only_new_tokens_greedy_beam_and_sampling(tiny_model, prepared_frames):
    pv, fmask = tiny_model.processor.pad_frames(prepared_frames)
    prompt = tiny_model.processor(QUESTIONS)
    inputs = {"pixel_values": pv, "frame_mask": fmask, **prompt}
    greedy = tiny_model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert greedy.shape[0] == 2 and greedy.shape[1] <= 4
    beam = tiny_model.generate(**inputs, max_new_tokens=4, num_beams=2, do_sample=False)
    assert beam.shape[0] == 2
    # only new tokens: greedy's first token is the argmax after the whole prompt, row by row
    for i in range(2):
        t = int(fmask[i].sum())
        alone = tiny_model.processor(QUESTIONS[i : i + 1])  # unpadded (1, L_i)
        with torch.no_grad():
            logits = tiny_model(pixel_values=pv[i : i + 1, :t], frame_mask=fmask[i : i + 1, :t],
                                **alone).logits  # (1, L_i, V)  # fmt: skip
        assert int(greedy[i, 0]) == int(logits[0, -1].argmax())
    # sampling: 3 sequences per prompt, reproducible under the same seed
    draws = []
    for _ in range(2):
        torch.manual_seed(0)
        draws.append(tiny_model.generate(
            **inputs, max_new_tokens=4, do_sample=True, top_p=0.9, num_return_sequences=3
        ))  # fmt: skip
    assert draws[0].shape[0] == 6 and torch.equal(draws[0], draws[1])
    # the untrained tiny LLM is near uniform: 3 samples of one prompt differ (fixed seed)
    assert len({tuple(row) for row in draws[0][:3].tolist()}) > 1


def test_left_padded_batch_generation_matches_single_prompts(tiny_model, prepared_frames):
    pv, fmask = tiny_model.processor.pad_frames(prepared_frames)
    kwargs = {"max_new_tokens": 2, "output_scores": True, "return_dict_in_generate": True}
    both = tiny_model.generate(
        pixel_values=pv, frame_mask=fmask, **tiny_model.processor(QUESTIONS), **kwargs
    )
    t1 = int(fmask[1].sum())
    one = tiny_model.generate(
        pixel_values=pv[1:, :t1],
        frame_mask=fmask[1:, :t1],
        **tiny_model.processor(QUESTIONS[1:]),
        **kwargs,
    )
    for s_both, s_one in zip(both.scores, one.scores, strict=True):
        assert torch.allclose(s_both[1], s_one[0], atol=1e-4)


def test_attribution_covers_every_vit_patch_and_skips_padded_frames(tiny_model, prepared_frames):
    pv, fmask = tiny_model.processor.pad_frames(prepared_frames)
    q = tiny_model.processor(QUESTIONS)
    enc = tiny_model.encode_images(
        pv, fmask, q["question_ids"], q["question_mask"], return_attribution=True
    )
    t = pv.shape[1]
    assert enc.attribution.shape == (2, t, 4, 8, 8)  # the ViT patch grid of every frame
    assert (enc.attribution >= 0).all()
    assert torch.all(enc.attribution[1, int(fmask[1].sum()) :] == 0)
    total = enc.attribution.sum((1, 2, 3, 4))
    assert (total > 0.1).all() and (total <= 1 + 1e-5).all()


def test_spp_masks_the_tokens_of_padded_frames(prepared_frames):
    model = build("tiny", "spp", train_texts=REPORTS).eval()
    short = prepared_frames[1]
    question = model.processor(QUESTIONS[:1], REPORTS[:1])
    padded_pv, padded_mask = model.processor.pad_frames([short, prepared_frames[0]])
    with torch.no_grad():
        alone = model(short[None], None, **question).logits
        both = model(padded_pv[:1], padded_mask[:1], **question).logits
    real = question["attention_mask"][0].bool()
    assert torch.allclose(alone[0, real], both[0, real], atol=1e-5)


def test_freeze_switches_and_lora(prepared_frames, tmp_path):
    model = build("tiny", "mu2", train_texts=REPORTS)
    model.freeze(vision=True, llm=True)
    model(**_batch(model, prepared_frames)).loss.backward()
    assert all(p.grad is None for p in model.vision_tower.parameters())
    assert all(p.grad is None for p in model.language_model.parameters())
    assert model.visual_tokenizer.aggregation.queries.grad is not None
    assert model.projector.mlp[0].weight.grad is not None

    model.add_lora(r=4, alpha=8.0)
    trainable = [n for n, p in model.language_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    model.eval()
    model.save_pretrained(tmp_path)
    again = Mu2ForConditionalGeneration.from_pretrained(tmp_path).eval()
    batch = _batch(model, prepared_frames)
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, again(**batch).logits)


def test_gradient_checkpointing_gives_the_same_gradients(prepared_frames):
    grads = []
    for checkpointing in (False, True):
        model = build("tiny", "mu2", train_texts=REPORTS, seed=3)
        if checkpointing:
            model.enable_checkpointing()
            assert model.visual_tokenizer.refiner.gradient_checkpointing
        model.train()
        model(**_batch(model, prepared_frames)).loss.backward()
        grads.append(model.visual_tokenizer.refiner.blocks[0].spatial.q.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_every_trainable_parameter_gets_a_gradient(preset, prepared_frames):
    """DDP needs it: a parameter without gradient stalls the all-reduce."""
    model = build("tiny", preset, train_texts=REPORTS)
    pv, fmask = model.processor.pad_frames(prepared_frames[1:])
    model(pv, fmask, **model.processor(QUESTIONS[:1], REPORTS[:1])).loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing


def test_the_llm_is_causal(tiny_model, prepared_frames):
    batch = _batch(tiny_model, prepared_frames)
    changed = {**batch, "input_ids": batch["input_ids"].clone()}
    changed["input_ids"][0, -4] = 7
    with torch.no_grad():
        a, b = tiny_model(**batch).logits, tiny_model(**changed).logits
    assert torch.equal(a[0, :-4], b[0, :-4]) and not torch.equal(a[0, -3:], b[0, -3:])
    assert torch.equal(a[1], b[1])


def test_extra_question_padding_does_not_change_the_visual_tokens(tiny_model, prepared_frames):
    pv, fmask = tiny_model.processor.pad_frames(prepared_frames[:1])
    q = tiny_model.processor(QUESTIONS[:1])
    pad = tiny_model.processor.tokenizer.pad_token_id
    ids = torch.cat([q["question_ids"], torch.full((1, 9), pad)], dim=1)
    mask = torch.cat([q["question_mask"], torch.zeros(1, 9, dtype=torch.long)], dim=1)
    with torch.no_grad():
        a = tiny_model.encode_images(pv, fmask, q["question_ids"], q["question_mask"]).tokens
        b = tiny_model.encode_images(pv, fmask, ids, mask).tokens
        c = tiny_model.encode_images(pv, fmask, ids[:, :3], mask[:, :3]).tokens  # shorter question
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a, c, atol=1e-5)  # the question does matter


def test_an_image_encoding_can_replace_pixel_values(tiny_model, prepared_frames):
    pv, fmask = tiny_model.processor.pad_frames(prepared_frames)
    prompt = tiny_model.processor(QUESTIONS)
    enc = tiny_model.encode_images(pv, fmask, prompt["question_ids"], prompt["question_mask"])
    a = tiny_model.generate(pixel_values=pv, frame_mask=fmask, **prompt, max_new_tokens=3)
    b = tiny_model.generate(image_encoding=enc, **prompt, max_new_tokens=3)
    assert torch.equal(a, b)
    with pytest.raises(Mu2Error, match="pass pixel_values"):
        tiny_model(input_ids=prompt["input_ids"])
