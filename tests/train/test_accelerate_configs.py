"""configs/accelerate/*.yaml load with accelerate's own config loader and launch parser."""

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.commands.launch import launch_command_parser
from accelerate.utils import DeepSpeedPlugin, DistributedType

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "accelerate"


@pytest.mark.parametrize(
    ("name", "kind", "processes"),
    [
        ("cpu", DistributedType.NO, 1),
        ("single_gpu", DistributedType.NO, 1),
        ("multi_gpu", DistributedType.MULTI_GPU, 4),
        ("deepspeed_zero2", DistributedType.DEEPSPEED, 4),
        ("deepspeed_zero3", DistributedType.DEEPSPEED, 4),
        ("deepspeed_zero3_offload", DistributedType.DEEPSPEED, 1),
    ],
)
def test_config_loads(name, kind, processes):
    cfg = load_config_from_file(str(CONFIGS / f"{name}.yaml"))
    assert cfg.distributed_type == kind
    assert cfg.num_processes == processes
    assert cfg.mixed_precision == ("no" if name == "cpu" else "bf16")


@pytest.mark.parametrize(
    ("name", "stage"),
    [("deepspeed_zero2", 2), ("deepspeed_zero3", 3), ("deepspeed_zero3_offload", 3)],
)
def test_deepspeed_section_is_valid(name, stage):
    cfg = load_config_from_file(str(CONFIGS / f"{name}.yaml"))
    # `accelerate launch` copies each key onto its own arguments: all must be known there
    known = {action.dest for action in launch_command_parser()._actions}
    assert set(cfg.deepspeed_config) <= known
    plugin = DeepSpeedPlugin(**cfg.deepspeed_config)
    assert plugin.deepspeed_config["zero_optimization"]["stage"] == stage
    # accumulation and clipping are left to the mu2 config (filled in at prepare time)
    assert plugin.deepspeed_config["gradient_accumulation_steps"] == "auto"


def test_zero3_offload_puts_parameters_and_optimizer_on_the_cpu():
    cfg = load_config_from_file(str(CONFIGS / "deepspeed_zero3_offload.yaml"))
    zero = DeepSpeedPlugin(**cfg.deepspeed_config).deepspeed_config["zero_optimization"]
    assert zero["offload_param"]["device"] == "cpu"
    assert zero["offload_optimizer"]["device"] == "cpu"
