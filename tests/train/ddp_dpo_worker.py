"""Worker of test_distributed_dpo.py, started by torchrun: tiny DPO on gloo, weights per rank.

torchrun --standalone --nproc_per_node 2 ddp_dpo_worker.py OUT_DIR key=value ...
"""

import sys
from pathlib import Path

from safetensors.torch import save_file

from mu2.config import load_config
from mu2.train.config import DPOConfig
from mu2.train.dpo import DPORecipe


def main(out: Path, overrides: list[str]) -> None:
    recipe = DPORecipe(load_config(DPOConfig, None, overrides))
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
    main(Path(sys.argv[1]), sys.argv[2:])
