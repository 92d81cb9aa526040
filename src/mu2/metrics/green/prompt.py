"""The GREEN judge prompt and chat wrapping, byte-exact to what the published judges saw.

The GREEN models (Ostmeier et al., 2024) were fine-tuned on one prompt and one chat
format; any deviation (a missing indent, another chat template) changes their answers.
The template text ships as package data (``prompt_template.txt``), copied byte for byte
from the protocol spec.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

# Published: each report is cut to its first 300 whitespace-separated tokens.
GREEN_MAX_REPORT_TOKENS = 300

# The published judges' chat template (keys ``from``/``value``, Zephyr-style tags). Jinja
# as transformers renders it (trim_blocks, lstrip_blocks): a human turn is
# "<|user|>\n{value}</s>\n", an assistant turn "<|assistant|>\n{value}</s>\n", and the
# generation prompt "<|assistant|>\n".
GREEN_CHAT_TEMPLATE = (
    "{% for message in messages %}\n"
    "{% if message['from'] == 'human' %}\n"
    "{{ '<|user|>\n' + message['value'] + eos_token }}\n"
    "{% elif message['from'] == 'system' %}\n"
    "{{ '<|system|>\n' + message['value'] + eos_token }}\n"
    "{% elif message['from'] == 'gpt' %}\n"
    "{{ '<|assistant|>\n' + message['value'] + eos_token }}\n"
    "{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n"
    "{{ '<|assistant|>' }}\n"
    "{% endif %}\n"
    "{% endfor %}"
)


@lru_cache(maxsize=1)
def prompt_template() -> str:
    """The packaged template with ``{reference}`` and ``{candidate}`` placeholders."""
    return (
        resources.files("mu2.metrics.green")
        .joinpath("prompt_template.txt")
        .read_text(encoding="utf-8")
    )


def truncate_report(text: str, max_tokens: int = GREEN_MAX_REPORT_TOKENS) -> str:
    """First ``max_tokens`` whitespace tokens, re-joined by single spaces (published rule)."""
    return " ".join(text.split()[:max_tokens])


def make_prompt(reference: str, candidate: str) -> str:
    """The GREEN prompt for one (reference, candidate) pair, byte-identical to the published one."""
    # Split, not str.format / str.replace: reports may contain braces or a placeholder text.
    head, rest = prompt_template().split("{reference}", 1)
    middle, tail = rest.split("{candidate}", 1)
    return head + truncate_report(reference) + middle + truncate_report(candidate) + tail


def judge_conversation(prompt: str) -> list[dict[str, str]]:
    """The batch item the published judge client sends: a human turn and an empty gpt turn."""
    return [{"from": "human", "value": prompt}, {"from": "gpt", "value": ""}]


def render_chat(prompt: str, eos_token: str = "</s>") -> str:
    """The chat-wrapped text without a tokenizer (same string the Jinja template renders)."""
    return f"<|user|>\n{prompt}{eos_token}\n<|assistant|>\n{eos_token}\n<|assistant|>\n"
