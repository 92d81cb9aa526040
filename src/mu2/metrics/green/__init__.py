"""GREEN (Ostmeier et al., 2024) exactly as published: prompt, judges, answer parsing, score."""

from mu2.metrics.green.backends import RULES_LABEL, GreenJudge, RulesGreenJudge, make_judge
from mu2.metrics.green.parse import ERROR_CATEGORIES, GreenAnswer, clean_answer, parse_answer
from mu2.metrics.green.prompt import make_prompt, render_chat, truncate_report
from mu2.metrics.green.score import GreenResult, green_corpus, score_answers

__all__ = [
    "ERROR_CATEGORIES",
    "RULES_LABEL",
    "GreenAnswer",
    "GreenJudge",
    "GreenResult",
    "RulesGreenJudge",
    "clean_answer",
    "green_corpus",
    "make_judge",
    "make_prompt",
    "parse_answer",
    "render_chat",
    "score_answers",
    "truncate_report",
]
