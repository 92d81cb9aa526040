"""Worker of the distributed tests, started by torchrun: a tiny SFT or DPO run on gloo,
the weights of each rank written for the test to compare.

torchrun --standalone --nproc_per_node 2 ddp_worker.py sft|dpo OUT_DIR key=value ...
"""

import sys
from pathlib import Path

from safetensors.torch import save_file

from mu2.config import load_config


def _recipe(stage: str, overrides: list[str]):
    if stage == "sft":
        from mu2.train.config import SFTConfig
        from mu2.train.sft import SFTRecipe

        return SFTRecipe(load_config(SFTConfig, None, overrides))
    from mu2.train.config import DPOConfig
    from mu2.train.dpo import DPORecipe

    return DPORecipe(load_config(DPOConfig, None, overrides))


def main(stage: str, out: Path, overrides: list[str]) -> None:
    recipe = _recipe(stage, overrides)
    recipe.setup()
    recipe.train()
    acc = recipe.accelerator
    weights = acc.unwrap_model(recipe.model).state_dict()
    # clone: tied embeddings share storage, which safetensors refuses
    save_file(
        {k: v.detach().clone() for k, v in weights.items()},
        str(out / f"rank{acc.process_index}.safetensors"),
    )
    recipe.cleanup()
    print(f"rank {acc.process_index} of {acc.num_processes}: {acc.distributed_type} done")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), sys.argv[3:])
