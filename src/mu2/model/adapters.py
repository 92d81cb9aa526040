"""LoRA adapters in peft's own format: save, load onto a base model, merge.

Inside mu2 the LoRA layers are peft layers injected into the LLM (so parameter names and
``generate`` stay the LLM's, and ``config.lora`` records the settings). At the boundary
they are written as peft writes a ``PeftModel`` of the whole mu2 model:
``adapter_config.json`` (a ``LoraConfig`` whose ``target_modules`` regex points into
``language_model``) and ``adapter_model.safetensors`` (keys ``base_model.model.<module>.
lora_A.weight``). So a peft user can do

    base = AutoModelForImageTextToText.from_pretrained(base_dir)   # after `import mu2`
    model = PeftModel.from_pretrained(base, adapter_dir)           # or .merge_and_unload()

and mu2 loads the same folder with ``Mu2ForConditionalGeneration.from_pretrained(base_dir,
adapter=adapter_dir)``. Old folders (LoRA weights inside model.safetensors, settings in
``config.json``'s ``lora``) still load as before.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from mu2.errors import Mu2Error

ADAPTER_SUBFOLDER = "adapter"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
LLM_PREFIX = "language_model."
PEFT_PREFIX = "base_model.model."
LORA_DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
ADAPTER_NAME = "default"  # the adapter name peft's inject_adapter_in_model uses
# target_modules regex written for module names under language_model (peft fullmatches it)
_TARGET_RE = re.compile(r"^language_model\\\.\.\*\\\.\((?P<names>[\w|]+)\)$")


def target_regex(names: list[str]) -> str:
    """``language_model\\..*\\.(q_proj|v_proj)``: LoRA on those LLM projections only (the
    vision tower and the visual tokenizer have layers of the same names)."""
    return r"language_model\..*\.(" + "|".join(names) + ")"


def lora_config(settings: dict, base: str | None = None):
    """The ``peft.LoraConfig`` of mu2's ``config.lora`` settings, on the whole mu2 model."""
    from peft import LoraConfig

    return LoraConfig(
        r=int(settings["r"]),
        lora_alpha=float(settings["alpha"]),  # type: ignore[arg-type]  # peft types it int
        lora_dropout=float(settings.get("dropout", 0.0)),
        target_modules=target_regex(list(settings["target_modules"])),
        base_model_name_or_path=base,
    )


def settings_from(config) -> dict:
    """mu2's ``config.lora`` settings from a ``peft.LoraConfig`` (our regex or a name list)."""
    targets = config.target_modules
    if isinstance(targets, str):
        match = _TARGET_RE.match(targets)
        if match is None:
            raise Mu2Error(
                f"adapter target_modules {targets!r} is not a mu2 language-model target",
                fix="save adapters with mu2 (model.save_pretrained or `mu2 model merge-lora`)",
            )
        names = match.group("names").split("|")
    else:
        names = sorted(targets)
    return {
        "r": int(config.r),
        "alpha": float(config.lora_alpha),
        "target_modules": names,
        "dropout": float(config.lora_dropout),
    }


def save_adapter(model, folder: str | Path, base: str | None = None) -> Path:
    """Write the model's LoRA weights and settings in peft's format to ``folder``."""
    from safetensors.torch import save_file

    if not model.config.lora:
        raise Mu2Error("this model has no LoRA adapters to save")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lora_config(model.config.lora, base).save_pretrained(folder)
    suffix = f".{ADAPTER_NAME}."
    weights = {
        PEFT_PREFIX + name.replace(suffix, "."): p.detach().cpu().contiguous()
        for name, p in model.state_dict().items()
        if "lora_" in name
    }
    save_file(weights, str(folder / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    return folder


def inject_lora(llm: nn.Module, settings: dict) -> None:
    """PEFT LoRA layers injected in place (no wrapper), so keys and ``generate`` stay the LLM's."""
    from peft import LoraConfig, inject_adapter_in_model

    cfg = LoraConfig(
        r=int(settings["r"]),
        lora_alpha=float(settings["alpha"]),  # type: ignore[arg-type]  # peft types it int
        target_modules=list(settings.get("target_modules") or LORA_DEFAULT_TARGETS),
        lora_dropout=float(settings.get("dropout", 0.0)),
    )
    inject_adapter_in_model(cfg, llm)


def load_adapter(model, folder: str | Path) -> None:
    """Inject a peft LoRA adapter (``folder``) into a base mu2 model and load its weights."""
    from peft import LoraConfig
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / ADAPTER_CONFIG).is_file() and (folder / ADAPTER_SUBFOLDER).is_dir():
        folder = folder / ADAPTER_SUBFOLDER  # a mu2 model folder: its adapter/ subfolder
    if not (folder / ADAPTER_CONFIG).is_file() or not (folder / ADAPTER_WEIGHTS).is_file():
        raise Mu2Error(
            f"not a peft adapter folder (needs {ADAPTER_CONFIG} and {ADAPTER_WEIGHTS})",
            path=str(folder),
        )
    if model.config.lora:
        raise Mu2Error("this model already has LoRA adapters", fix="load the adapter onto its base")
    settings = settings_from(LoraConfig.from_pretrained(str(folder)))
    inject_lora(model.language_model, settings)
    model.config.lora = settings
    params = dict(model.named_parameters())
    loaded = load_file(str(folder / ADAPTER_WEIGHTS))
    wanted = {n for n in params if "lora_" in n}
    seen = set()
    with torch.no_grad():
        for key, value in loaded.items():
            stem, leaf = key.removeprefix(PEFT_PREFIX).rsplit(".", 1)
            name = f"{stem}.{ADAPTER_NAME}.{leaf}"
            if name not in params:
                raise Mu2Error(f"adapter weight {key} matches no LoRA layer", path=str(folder))
            params[name].copy_(value.to(params[name].dtype))
            seen.add(name)
    if seen != wanted:
        missing = sorted(wanted - seen)[:3]
        raise Mu2Error(f"adapter lacks {len(wanted - seen)} LoRA weights, e.g. {missing}")
    model.freeze(llm=True)


def merge_lora(model):
    """The model with its LoRA deltas merged into the LLM weights and the adapters removed.

    peft's own ``PeftModel.merge_and_unload`` does the arithmetic: the adapter is written
    out, loaded onto the same model without adapters, and merged."""
    import tempfile

    from peft import PeftModel

    if not model.config.lora:
        raise Mu2Error("this model has no LoRA adapters to merge")
    with tempfile.TemporaryDirectory() as tmp:
        save_adapter(model, tmp)
        config = model.config.__class__.from_dict(model.config.to_dict())
        config.lora = None
        base = type(model)(config)
        state = {k: v for k, v in model.state_dict().items() if "lora_" not in k}
        state = {k.replace(".base_layer.", "."): v for k, v in state.items()}
        base.load_state_dict(state, strict=True)
        merged = PeftModel.from_pretrained(base, tmp).merge_and_unload()
    merged.processor = model.processor
    merged.generation_config = model.generation_config
    return merged
