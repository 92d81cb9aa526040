"""``mu2 bench tokenizer``: the tokenizer's claims measured without a vision tower or an LLM.

Synthetic frame tokens with planted lesions in named regions (``scenes``), every tokenizer
preset with one shared readout and one parameter budget (``model``), trained and scored per
seed (``run``), tables with intervals and a verdict per claim (``report``).
"""

from mu2.bench.tokenizer_bench.config import ALL_ROWS, NO_QUESTION, TokenBenchConfig, quick_values
from mu2.bench.tokenizer_bench.report import markdown, verdicts

__all__ = ["ALL_ROWS", "NO_QUESTION", "TokenBenchConfig", "markdown", "quick_values", "verdicts"]
