"""``mu2 rehearse``: the paper recipe end to end on real formats, at a size a CPU runs.

Stand-ins for the downloads (:mod:`mu2.rehearse.assets`), synthetic cases in the raw
layouts of AMOS-MM and CT-RATE v1 (:mod:`mu2.rehearse.cases`) and the stage runner with
its table (:mod:`mu2.rehearse.run`); what differs from the paper configs is only sizes
(:mod:`mu2.rehearse.config`, ``configs/rehearse/cpu.yaml``).
"""

from mu2.rehearse.config import RehearseConfig
from mu2.rehearse.run import rehearse

__all__ = ["RehearseConfig", "rehearse"]
