"""`mu2 demo`: the main job on the embedded default, from synthetic data to a saved,
evaluated model with example reports (see :mod:`mu2.demo.pipeline`)."""

from mu2.demo.config import DemoConfig, fast_profile, full_profile, make_demo_config
from mu2.demo.pipeline import DemoResult, run_demo

__all__ = [
    "DemoConfig",
    "DemoResult",
    "fast_profile",
    "full_profile",
    "make_demo_config",
    "run_demo",
]
