"""``mu2 model info``: parameter counts per part of a saved or freshly specified model;
``mu2 model merge-lora``: a LoRA model (or a base plus a peft adapter) merged into one.

Models are instantiated on the meta device (shapes only), so even the paper size answers
in seconds without allocating its weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from mu2.errors import Mu2Error

PRESET_HELP = "mu2, linvt, linvt+rpe, linvt+dts, linvt+dmtp, spp or perceiver (without MODEL_DIR)."


def _describe(model) -> dict:
    cfg = model.config
    tok = cfg.tokenizer()
    return {
        "preset": cfg.preset,
        "size": cfg.size,
        "prep": cfg.prep,
        "llm": cfg.text_config.model_type,
        "width": cfg.text_config.hidden_size,
        "visual_tokens": model.num_image_tokens,
        "selected_k": tok.num_selected if tok.kind == "mu2" else None,
        "parameters": model.parameter_counts(),
    }


def _text(info: dict) -> str:
    lines = [
        f"preset:        {info['preset']} (size {info['size']}, frames prepared as '{info['prep']}')",
        f"llm:           {info['llm']}, width {info['width']}",
        f"visual tokens: {info['visual_tokens']}"
        + (f" (k = {info['selected_k']} selected)" if info["selected_k"] else ""),
        "parameters:",
    ]
    for part, count in info["parameters"].items():
        lines.append(f"  {part:<10} {count:>15,d}  ({count / 1e6:.1f}M)")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Inspect mu2 models.", no_args_is_help=True)
    app.add_typer(group, name="model")

    @group.command("info")
    def info(
        model_dir: Path | None = typer.Argument(None, help="A folder written by save_pretrained."),
        size: str = typer.Option("tiny", "--size", help="tiny or paper (without MODEL_DIR)."),
        preset: str = typer.Option("mu2", "--preset", help=PRESET_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Print parameter counts per part (vision, projector, tokenizer, llm)."""
        import torch

        from mu2.model import Mu2Config, Mu2ForConditionalGeneration, build

        if model_dir is not None:
            if not (model_dir / "config.json").is_file():
                raise Mu2Error("not a mu2 model folder (no config.json)", path=str(model_dir))
            config = Mu2Config.from_pretrained(model_dir)
            with torch.device("meta"):
                model = Mu2ForConditionalGeneration(config)
        else:
            with torch.device("meta"):
                model = build(size, preset)
        described = _describe(model)
        print(json.dumps(described, indent=2) if as_json else _text(described))

    @group.command("merge-lora")
    def merge_lora(
        model_dir: Path = typer.Argument(
            ..., help="A LoRA model folder, or the base with --adapter."
        ),
        out: Path = typer.Argument(..., help="Folder to write the merged model to."),
        adapter: Path | None = typer.Option(
            None,
            "--adapter",
            help="A peft adapter folder (adapter_config.json) to merge into MODEL_DIR.",
        ),
    ) -> None:
        """Merge LoRA adapters into the LLM weights (peft's merge_and_unload) and save."""
        from mu2.model import Mu2ForConditionalGeneration
        from mu2.model.adapters import merge_lora as merge

        if out.exists() and any(out.iterdir()):
            raise Mu2Error("output folder exists and is not empty", path=str(out))
        model = Mu2ForConditionalGeneration.from_pretrained(model_dir, adapter=adapter)
        merged = merge(model)
        merged.save_pretrained(out)
        print(f"merged LoRA (r={model.config.lora['r']}) into {out}")
    @group.command("card")
    def card(
        model_dir: Path = typer.Argument(..., help="A folder written by save_pretrained."),
        data: list[Path] = typer.Option(
            None,
            "--data",
            help="Write the card from these training JSONL files (in stage order: SFT, then "
            "DPO pairs), for a model saved before cards existed.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Show the model card (what the model was trained on), or write it with --data."""
        from mu2.data.schema import read_jsonl
        from mu2.model.card import card_from_rows, load_card, save_card

        if not (model_dir / "config.json").is_file():
            raise Mu2Error("not a mu2 model folder (no config.json)", path=str(model_dir))
        if data:
            built = None
            for path in data:
                built = card_from_rows(
                    read_jsonl(path), "retrofit", name=model_dir.name, data_path=path, base=built
                )
            save_card(built, model_dir)
        c = load_card(model_dir)
        if as_json:
            print(json.dumps(c.to_dict(), indent=2))
            return
        print(f"model:          {c.name}")
        print(f"training data:  {c.data_summary}")
        print(f"regions:        {', '.join(c.regions) if c.regions else 'unknown'}")
        print(f"finding kinds:  {', '.join(c.finding_kinds) if c.finding_kinds else 'unknown'}")
        print(f"recipe:         {' -> '.join(s['stage'] for s in c.recipe) or 'unknown'}")
        if c.warning():
            print(f"warning:        {c.warning()}")
