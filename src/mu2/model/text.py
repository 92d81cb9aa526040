"""Text side: a tiny byte-level BPE tokenizer for the embedded model, and the changes every
LLM tokenizer needs (an ``<image>`` placeholder token, a pad token, a chat template).

The tiny tokenizer is trained with the ``tokenizers`` library and wrapped as a regular
Hugging Face fast tokenizer, so it is saved and loaded exactly like Llama's.
"""

from __future__ import annotations

import logging

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from mu2.findings.catalogue import FINDING_KINDS, ORGANS, REGIONS, SEVERITIES, SIDES

log = logging.getLogger(__name__)

IMAGE_TOKEN = "<image>"
BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"

# A minimal chat template for tokenizers that have none (the tiny one): BOS, the user turn,
# then the answer after "ASSISTANT:\n", ended by EOS.
SIMPLE_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\n' }}"
    "{% elif message['role'] == 'user' %}{{ 'USER: ' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ 'ASSISTANT:\n' + message['content'] + eos_token }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:\n' }}{% endif %}"
)


CHAT_WORDS = "USER: ASSISTANT:"  # so the template's own words get merged tokens


def default_corpus() -> list[str]:
    """Words a radiology report uses, from the findings catalogue (fallback training text)."""
    lines = [f"Describe the findings of the {region} in this CT." for region in REGIONS] + [
        f"Is there any abnormality in the {organ}?"
        for organs in ORGANS.values()
        for organ in organs
    ]
    for kind in FINDING_KINDS.values():
        lines.append(f"There is a {kind.label} in the {kind.organ}, {kind.region}.")
        lines.append(f"No {kind.label} is seen.")
    lines.append(" ".join(SIDES + SEVERITIES) + " 0 1 2 3 4 5 6 7 8 9 mm cm, . : ;")
    lines += [f"The {organ} is normal." for organs in ORGANS.values() for organ in organs]
    return lines


def train_text_tokenizer(texts: list[str] | None, vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE on ``texts`` (any input text stays encodable), with BOS/EOS/PAD/UNK."""
    corpus = (list(texts) if texts else default_corpus()) + [CHAT_WORDS]
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS, UNK],  # <image> comes from prepare_tokenizer
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK
    )
    hf.chat_template = SIMPLE_CHAT_TEMPLATE
    log.info("trained a %d-token BPE tokenizer on %d texts", len(hf), len(corpus))
    return hf


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase, image_token: str = IMAGE_TOKEN) -> int:
    """Add the image placeholder (and a pad token / chat template if missing); return its id."""
    tokenizer.add_special_tokens({"additional_special_tokens": [image_token]})
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({"pad_token": PAD})
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = SIMPLE_CHAT_TEMPLATE
    if tokenizer.bos_token is None:
        tokenizer.add_special_tokens({"bos_token": BOS})
    if tokenizer.eos_token is None:
        tokenizer.add_special_tokens({"eos_token": EOS})
    image_token_id = tokenizer.convert_tokens_to_ids(image_token)
    assert isinstance(image_token_id, int)  # one token in, one id out
    return image_token_id
