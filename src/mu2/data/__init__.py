"""Data for mu2: the unified JSONL format, its checks and images, adapters, the synthetic
CT benchmark and data set expansion.

Modules and packages (imported on demand, so ``import mu2.data`` stays cheap):
  schema          the unified JSONL row (:class:`~mu2.data.schema.Record`), reader, writer
  check           ``mu2 data check``
  volume_io       reading the image of a row (HU, raw CT-RATE values, M3D unit arrays)
  adapters/       AMOS-MM, CT-RATE, AbdomenAtlas 3.0, M3D-Cap, unified JSONL
  synthetic/      the synthetic CT benchmark (phantom, findings, splits)
  expansion/      report rewrites and QA pairs (rules or LLM) behind guard rails
"""
