"""The training engine every stage runs on.

:mod:`mu2.engine.recipe` holds the loop (``setup -> train -> cleanup``: accelerate,
gradient accumulation and clipping, checkpoints with exact resume, metrics, the final
model); :mod:`mu2.engine.config` the run and optimizer options every stage shares;
:mod:`mu2.engine.dataset` the rows-to-frames dataset with its caches and the epoch
sampler; :mod:`mu2.engine.checkpoint`, :mod:`mu2.engine.runtime`,
:mod:`mu2.engine.schedule`, :mod:`mu2.engine.logging`, :mod:`mu2.engine.tower_cache`,
:mod:`mu2.engine.label_patches` (voxel labels on the patch grid, for the training aids that
read label maps) and :mod:`mu2.engine.plots` the parts. Stage 0 (:mod:`mu2.pretrain`), SFT and DPO
(:mod:`mu2.train`) are recipes on it; nothing here imports a stage.
"""
