"""Data for mu2: the synthetic CT benchmark, the unified JSONL format and its adapters.

Modules (imported on demand, so ``import mu2.data`` stays cheap):
  schema          the unified JSONL row (:class:`~mu2.data.schema.Record`), reader, writer
  synth_config    :class:`~mu2.data.synth_config.SynthConfig`, ``tiny`` / ``hard`` presets
  plan            which findings a case gets, with their drawn parameters
  shapes, canvas  voxel grid, ellipsoids and tubes; painting them with restrictions
  anatomy         the label vocabulary, :class:`Anatomy` and :class:`DrawnFinding`
  phantom         procedural anatomy (body, organs, organ-level findings)
  organ_findings  enlarged organs, aneurysm, fluid collections as findings
  real_anatomy    a real CT plus its organ label map as the anatomy
  lesions         focal lesions drawn inside organ masks; steatosis
  measure         contrast-to-noise ratio and size of every drawn finding
  case            one synthetic case end to end
  synth           the data set on disk: cases, report rows, splits
  stats           per-finding CNR / size table of a data set
  check           ``mu2 data check``
  volume_io       reading the image of a row (HU, raw CT-RATE values, M3D unit arrays)
  adapters/       AMOS-MM, CT-RATE, AbdomenAtlas 3.0, M3D-Cap, unified JSONL
"""
