"""Stand-ins for the downloads of the paper recipe, in the downloads' own formats.

* an LLM folder as ``save_pretrained`` writes Llama-3.2-1B-Instruct: a Llama-architecture
  causal LM, a byte-level BPE tokenizer (``tokenizer.json``) with Llama 3's special tokens
  and a Llama-3-style chat template whose system header stamps "Today Date" from the
  clock unless a date is passed (as the released template does);
* ``pretrained_ViT.bin`` in the layout of M3D's own ViT class (MONAI patch embedding with
  a perceptron projection, transformer blocks, final norm, ``cls_token``, no
  classification head), saved with ``torch.save`` as M3D ships it;
* a GREEN judge folder: a tiny causal LM with hand-set weights that answers with one of a
  few whole GREEN answers, chosen from the prompt's tokens, so its greedy answers parse
  into counts that differ between candidates. Its scores mean nothing; it exercises the
  judge path (prompt, generation, parsing), nothing else.

All are random-init at the sizes given: nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

BOS, EOS, EOT = "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"
HEADER_START, HEADER_END = "<|start_header_id|>", "<|end_header_id|>"

# Written for mu2 after the shape of Llama 3's template: BOS, a system header with the
# knowledge cut-off and "Today Date" (from strftime_now unless ``date_string`` is given),
# then one header + content + <|eot_id|> per message and the assistant cue.
LLAMA3_STYLE_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if not date_string is defined %}{%- if strftime_now is defined %}"
    "{%- set date_string = strftime_now('%d %b %Y') %}"
    "{%- else %}{%- set date_string = '26 Jul 2024' %}{%- endif %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\\n' }}"
    "{{- 'Today Date: ' + date_string + '\\n\\n' }}"
    "{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] | trim }}"
    "{%- set messages = messages[1:] %}{%- endif %}"
    "{{- '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{{- message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

_SIG_LINES = (
    "(a) False report of a finding in the candidate: {e}.\n"
    "(b) Missing a finding present in the reference: 0.\n"
    "(c) Misidentification of a finding's anatomic location/position: 0.\n"
    "(d) Misassessment of the severity of a finding: 0.\n"
    "(e) Mentioning a comparison that isn't in the reference: 0.\n"
    "(f) Omitting a comparison detailing a change from a prior study: 0.\n"
)

# Whole GREEN answers (matched m in 1..3, significant errors e in 0..2), each one added token:
# the judge stand-in picks one and then ends, so every answer parses, scores m / (m + e).
GREEN_PIECES: tuple[str, ...] = tuple(
    "[Clinically Significant Errors]:\n" + _SIG_LINES.format(e=e)
    + "\n[Clinically Insignificant Errors]:\nNo Clinically Insignificant Errors.\n\n"
    + f"[Matched Findings]:\n{m}. Matched findings.\n"
    for m in (1, 2, 3) for e in (0, 1, 2)
)  # fmt: skip


@dataclass
class LMShape:
    """Sizes of a stand-in Llama (the paper's Llama-3.2-1B: 2048 wide, 16 layers)."""

    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    vocab_size: int = 800
    """BPE merges stop here (byte alphabet and special tokens included)."""
    max_position_embeddings: int = 4096


def llama3_style_tokenizer(texts: Sequence[str], vocab_size: int) -> object:
    """A byte-level BPE fast tokenizer with Llama 3's special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = [BOS, EOS, HEADER_START, HEADER_END, EOT]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts) + ["system user assistant Today Date"], trainer=trainer)
    # Llama 3's tokenizer.json adds BOS in front of every encoded text.
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tok.token_to_id(BOS))]
    )
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOT)
    hf.chat_template = LLAMA3_STYLE_TEMPLATE
    return hf


def _llama_config(tok: Any, shape: LMShape, **extra: Any) -> Any:
    """A ``LlamaConfig`` of ``shape`` sized to ``tok``'s vocabulary (LM and judge alike)."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tok),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        max_position_embeddings=shape.max_position_embeddings,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        **extra,
    )


def write_llm(folder: Path, texts: Sequence[str], shape: LMShape, seed: int = 0) -> Path:
    """A random-init Llama-architecture causal LM and its tokenizer, ``save_pretrained``."""
    from transformers import GenerationConfig, LlamaForCausalLM

    tok = llama3_style_tokenizer(texts, shape.vocab_size)
    config = _llama_config(
        tok, shape,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
        tie_word_embeddings=True,  # as Llama-3.2-1B
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tok.bos_token_id, eos_token_id=[tok.convert_tokens_to_ids(EOS), tok.eos_token_id]
    )
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    (folder / "README.txt").write_text(
        "Stand-in written by `mu2 rehearse`: a random-init Llama-architecture causal LM with a\n"
        "byte-level BPE tokenizer and a Llama-3-style chat template, in the folder layout of\n"
        "Llama-3.2-1B-Instruct. Not a trained model.\n"
    )
    return folder


def write_judge(folder: Path, texts: Sequence[str], shape: LMShape, seed: int = 1) -> Path:
    """A GREEN judge stand-in: a causal LM that answers with one of :data:`GREEN_PIECES`.

    A random-init LM answers every prompt alike (its last position barely sees the
    candidate), so every sample would tie. The weights here are set by hand instead: no
    query weights make attention uniform, so the last position reads the mean of the
    embeddings of the reports' tokens (a bag of words; the prompt's fixed words carry
    nothing) and a random read-out picks one whole
    answer from it; the answer's own embedding then carries a flag that makes EOS win.
    Different candidates thus get different (meaningless) scores through the real judge
    path: chat prompt, ``generate``, decoding, parsing.
    """
    from transformers import LlamaForCausalLM

    from mu2.metrics.green.prompt import make_prompt, render_chat

    tok = llama3_style_tokenizer(texts, shape.vocab_size)
    tok.add_tokens(list(GREEN_PIECES))
    pieces = [tok.convert_tokens_to_ids(p) for p in GREEN_PIECES]
    wrapping = render_chat(make_prompt("", ""), tok.eos_token)  # the prompt minus both reports
    fixed = sorted(set(tok(wrapping)["input_ids"]) | {tok.bos_token_id, tok.eos_token_id})
    config = _llama_config(tok, shape, tie_word_embeddings=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
        flag, const = 0, 1  # hidden dims: "last token is an answer", a constant 1
        with torch.no_grad():
            emb = model.model.embed_tokens.weight  # (V, E)
            emb.normal_(0.0, 1.0)
            emb[fixed] = 0.0  # the prompt's own words and the chat wrapping: no content
            emb[:, flag] = 0.0
            emb[pieces, flag] = 20.0
            emb[:, const] = 1.0
            for i, layer in enumerate(model.model.layers):
                layer.self_attn.q_proj.weight.zero_()  # uniform causal attention
                layer.self_attn.v_proj.weight[:, [flag, const]] = 0.0  # content only
                layer.mlp.down_proj.weight.zero_()
                o = layer.self_attn.o_proj.weight  # (E, E)
                o.normal_(0.0, 4.0) if i == 0 else o.zero_()
                o[[flag, const]] = 0.0
            head = model.lm_head.weight  # (V, E)
            read = torch.randn(len(pieces), head.shape[1])
            head.zero_()
            head[pieces] = 3.0 * read
            head[pieces, flag] = 0.0
            head[pieces, const] = 40.0  # an answer beats every other token at the prompt's end
            head[tok.eos_token_id, flag] = 200.0  # ... and EOS follows the answer
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    (folder / "README.txt").write_text(
        "GREEN judge stand-in written by `mu2 rehearse`: a causal LM with hand-set weights\n"
        "that answers with one of a few whole GREEN answers. Its scores mean nothing.\n"
    )
    return folder


class M3DLayoutViT(nn.Module):
    """The module layout of M3D's ViT (``classification=True``, head commented out)."""

    def __init__(
        self,
        img_size: Sequence[int],
        patch_size: Sequence[int],
        hidden_size: int,
        mlp_dim: int,
        num_layers: int,
        num_heads: int,
    ):
        super().__init__()
        from monai.networks.blocks.patchembedding import PatchEmbeddingBlock
        from monai.networks.blocks.transformerblock import TransformerBlock

        self.patch_embedding = PatchEmbeddingBlock(
            in_channels=1,
            img_size=img_size,
            patch_size=patch_size,
            hidden_size=hidden_size,
            num_heads=num_heads,
            proj_type="perceptron",
            spatial_dims=3,
        )
        self.blocks = nn.ModuleList(
            TransformerBlock(hidden_size, mlp_dim, num_heads, 0.0, False)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(hidden_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, hidden_size))


def write_m3d_vit(path: Path, size: str, seed: int = 0) -> Path:
    """``pretrained_ViT.bin`` of the vision size ``size`` in M3D's key layout."""
    from mu2.model import vision_config

    cfg = vision_config(size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vit = M3DLayoutViT(
            cfg.img_size, cfg.patch_size, cfg.hidden_size, cfg.mlp_dim, cfg.num_layers, cfg.num_heads
        )
    # M3D's file was saved with a MONAI that had no per-block cross-attention norm.
    state = {k: v for k, v in vit.state_dict().items() if "norm_cross_attn" not in k}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path
