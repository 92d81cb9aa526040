"""The synthetic CT benchmark: cases drawn with exact ground truth, written as unified rows.

Modules (imported on demand):
  synth_config    :class:`~mu2.data.synthetic.synth_config.SynthConfig`, ``tiny`` / ``hard`` presets
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
"""
