"""How often the question-to-CT heat map points at the lesion, on synthetic test cases.

Usage (from the repository root; the synthetic set needs label maps)::

    mu2 data synth --out /tmp/s --n 200 --size tiny --seed 0 --save-labels
    .venv/bin/python scripts/heatmap_hit_rate.py --synth /tmp/s --split test   # demo model

Prints, as JSON, the voxel share (mean share of lesion voxels in the top decile of body
heat; chance 0.10 for any lesion size) with the mirrored-lesion control and a paired
Wilcoxon p, and the hit rate (lesion mean heat in the top decile; chance about 0.10 for
focal lesions, far lower for extended fluid) with its binomial p (see mu2.generate.localise).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mu2.generate.localise import lesion_hit_stats, synth_lesion_cases
from mu2.generate.pipeline import ReportGenerator


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--synth", type=Path, required=True, help="folder written by `mu2 data synth`")
    ap.add_argument("--split", default="test")
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: demo model)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--limit", type=int, default=None, help="score at most N cases")
    args = ap.parse_args(argv)
    cases = synth_lesion_cases(args.synth, args.split)[: args.limit]
    generator = ReportGenerator(args.model, device=args.device)
    result = lesion_hit_stats(generator, cases, progress=True)
    print(json.dumps({"model": generator.model_id, "split": args.split, **result.to_dict()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
