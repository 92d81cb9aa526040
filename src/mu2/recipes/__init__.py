"""What `mu2 demo` and `mu2 bench ablation` share: profiles and one stage runner.

A *profile* (``configs/demo/full.yaml``, ``configs/bench/ablation.yaml``) names, for each
training stage, the recipe YAML it runs (``configs/sft/tiny.yaml``, ...) and the
``key=value`` overrides it applies to it (:mod:`mu2.recipes.profile`); the recipe
hyper-parameters themselves live in the recipe YAMLs only. :mod:`mu2.recipes.runner`
turns a stage name and its resolved recipe config into a trained folder, the same way
for both orchestrators.
"""
