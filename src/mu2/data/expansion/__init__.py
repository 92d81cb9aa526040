"""Data set expansion: report rewrites and question-answer pairs, behind guard rails.

Modules (imported on demand):
  augment         ``mu2 data augment``: expand a unified JSONL
  augment_guard   which rewrites and QA pairs may enter training data
  rewrite_rules   the offline backend (the findings catalogue)
  rewrite_llm     the LLM backend (an OpenAI-compatible endpoint)
  llm_client      the chat client with a disk cache
"""
