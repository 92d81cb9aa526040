"""The final linear aggregation and the TTA stack around it, against formulas written here.

V' = softmax(q W_q (LN(K) W_k)^T / (tau sqrt(E))) V, with K the visual tokens or, with
``standardize``, the tokens minus their mean over the real tokens divided by one RMS per
case. The reference uses torch.nn.functional on the module's weights, never mu2's helpers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mu2.tokenizer.aggregation import LinearAggregation, TextConditionedAggregation

B, Q, M, L, E = 2, 6, 12, 5, 16


def _inputs(dtype=torch.float32):
    g = torch.Generator().manual_seed(1)
    visual = torch.randn(B, M, E, generator=g).to(dtype)
    vmask = torch.ones(B, M, dtype=torch.bool)
    vmask[1, 9:] = False  # the second case has 9 visual tokens
    text = torch.randn(B, L, E, generator=g).to(dtype)
    tmask = torch.ones(B, L, dtype=torch.bool)
    tmask[0, 3:] = False  # the first question has 3 tokens
    return visual, vmask, text, tmask


def _standardized(visual, vmask):
    """Per case: minus the per-channel mean over real tokens, over one RMS of all real values."""
    out = torch.zeros_like(visual)
    for b in range(visual.shape[0]):
        real = visual[b, vmask[b]]  # (n, E)
        dev = real - real.mean(dim=0)
        out[b, vmask[b]] = dev / dev.pow(2).mean().sqrt()
    return out


def _reference_mix(agg, queries, visual, vmask, tau, standardize):
    keys = _standardized(visual, vmask) if standardize else visual
    keys = F.layer_norm(keys, (E,), agg.norm_keys.weight, agg.norm_keys.bias)
    logits = F.linear(queries, agg.q.weight, agg.q.bias) @ F.linear(
        keys, agg.k.weight, agg.k.bias
    ).transpose(1, 2) / (tau * math.sqrt(E))
    logits = logits.masked_fill(~vmask[:, None, :], float("-inf"))
    weights = logits.softmax(-1)  # (B, Q, M)
    return weights @ visual, weights


def _nonzero_biases(module):
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias") and p.abs().sum() == 0:
                p.normal_(std=0.1)


def test_linear_aggregation_equals_the_formula():
    for tau, standardize in ((1.0, False), (0.5, False), (0.7, True)):
        torch.manual_seed(0)
        agg = LinearAggregation(E, temperature=tau, standardize=standardize).eval()
        _nonzero_biases(agg)
        visual, vmask, _, _ = _inputs()
        queries = torch.randn(B, Q, E)
        with torch.no_grad():
            got = agg(queries, visual, vmask)
            want = _reference_mix(agg, queries, visual, vmask, tau, standardize)
        torch.testing.assert_close(got[1], want[1], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(got[0], want[0], rtol=1e-4, atol=1e-5)


def test_linear_aggregation_init_gives_unit_scale_logits():
    """W_q, W_k ~ N(0, 1/E) and zero biases: query/key projections keep unit scale."""
    torch.manual_seed(0)
    dim = 256
    agg = LinearAggregation(dim)
    assert agg.scale == 1 / math.sqrt(dim)  # default temperature 1: logits / sqrt(E)
    for proj in (agg.q, agg.k):
        assert abs(proj.weight.std().item() - 1 / math.sqrt(dim)) < 0.05 / math.sqrt(dim)
        assert torch.equal(proj.bias, torch.zeros(dim))


def _captured_mix(tta, visual, vmask, text, tmask):
    """Run the TTA and return (its output, the queries that entered the final step)."""
    seen = {}
    hook = tta.aggregate.register_forward_hook(lambda m, args, out: seen.update(q=args[0]))
    try:
        out = tta(visual, vmask, text, tmask)
    finally:
        hook.remove()
    return out, seen["q"]


def test_tta_final_step_uses_its_temperature_and_standardization():
    visual, vmask, text, tmask = _inputs()
    for kwargs, tau, standardize in (({}, 1.0, False), ({"temperature": 0.5, "standardize": True}, 0.5, True)):
        torch.manual_seed(0)
        tta = TextConditionedAggregation(E, 2, 4, Q, "relative_3d", 2.0, **kwargs).eval()
        _nonzero_biases(tta.aggregate)
        with torch.no_grad():
            (tokens, weights), queries = _captured_mix(tta, visual, vmask, text, tmask)
            want = _reference_mix(tta.aggregate, queries, visual, vmask, tau, standardize)
        torch.testing.assert_close(weights, want[1], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(tokens, want[0], rtol=1e-4, atol=1e-5)


def test_tta_builds_its_layers_from_its_arguments():
    tta = TextConditionedAggregation(E, 3, 4, Q, "relative_3d", 2.5, dropout=0.25)
    assert len(tta.layers) == 3 and tta.queries.shape == (Q, E)
    for layer in tta.layers:
        assert layer.ffn.net[0].out_features == 40  # E x mlp_ratio
        assert layer.self_attn.dropout == layer.visual_attn.dropout == 0.25
        assert layer.text_attn.dropout == layer.ffn.net[2].p == 0.25
    default = TextConditionedAggregation(E, 1, 4, Q, "relative_3d", 2.0)
    assert default.aggregate.scale == 1 / math.sqrt(E) and not default.aggregate.standardize
    assert default.gradient_checkpointing is False
    assert abs(TextConditionedAggregation(256, 1, 4, 64, "absolute", 2.0).queries.std() - 1) < 0.05


def test_tta_default_trains_without_dropout():
    torch.manual_seed(0)
    tta = TextConditionedAggregation(E, 2, 4, Q, "relative_3d", 2.0)
    visual, vmask, text, tmask = _inputs()
    train = tta.train()(visual, vmask, text, tmask)
    torch.testing.assert_close(train, tta.eval()(visual, vmask, text, tmask))


def test_gradient_checkpointing_gives_the_same_output_and_gradients():
    torch.manual_seed(0)
    tta = TextConditionedAggregation(E, 2, 4, Q, "relative_3d", 2.0).train()
    visual, vmask, text, tmask = _inputs()
    grads = []
    for checkpointing in (False, True):
        tta.gradient_checkpointing = checkpointing
        tta.zero_grad()
        tokens, weights = tta(visual, vmask, text, tmask)
        (tokens.square().sum() + weights[:, :, 0].sum()).backward()
        grads.append({n: p.grad.clone() for n, p in tta.named_parameters() if p.grad is not None})
        grads[-1]["out"] = tokens.detach()
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-5, atol=1e-6)


def test_padded_visual_tokens_do_not_change_the_output():
    """Junk in the padded visual slots reaches neither the TTA layers nor the final mix."""
    torch.manual_seed(0)
    tta = TextConditionedAggregation(E, 2, 4, Q, "relative_3d", 2.0).eval()
    visual, vmask, text, tmask = _inputs()
    junk = visual.clone()
    junk[1, 9:] = 100 * torch.randn(3, E)
    with torch.no_grad():
        a, wa = tta(visual, vmask, text, tmask)
        b, wb = tta(junk, vmask, text, tmask)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(wa, wb)


def test_bf16_model_keeps_bf16_and_matches_float32():
    """The model runs in bf16 on GPU: the TTA stays in bf16, close to the float32 result."""
    torch.manual_seed(0)
    tta = TextConditionedAggregation(E, 2, 4, Q, "relative_3d", 2.0).eval()
    visual, vmask, text, tmask = _inputs()
    with torch.no_grad():
        ref, ref_w = tta(visual, vmask, text, tmask)
        half = tta.to(torch.bfloat16)
        out, w = half(visual.bfloat16(), vmask, text.bfloat16(), tmask)
    assert out.dtype == w.dtype == torch.bfloat16
    assert torch.all(w[1, :, 9:] == 0)
    torch.testing.assert_close(w.float(), ref_w, rtol=0.1, atol=0.05)
