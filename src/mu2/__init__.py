"""mu2: radiology reports from 3-D CT with the mu^2 Tokenizer (Li et al., MICCAI 2025).

Data flows one way: ``mu2.io`` -> ``mu2.preprocess`` -> ``mu2.model`` -> ``mu2.generate``
-> ``mu2.metrics``. The command line (``mu2.cli``) is a thin layer over this library.

Shape notation used throughout the code base (written once, here):
    B batch, T frames, K slices per frame, D/H/W voxels, N tokens per frame,
    E width, Q queries, L text length, k selected (soft) tokens.
"""

__version__ = "0.1.0"
