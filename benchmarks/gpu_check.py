"""Paper-size SFT throughput on a GPU: cases/s, peak GPU memory, report latency.

The paper-size model (M3D-CLIP ViT3D, the mu2 tokenizer with k=1024 and Q=256, a
Llama-3.2-1B-shaped LLM with its 128,256-token vocabulary) is built with random weights:
speed and memory do not depend on the weights, so nothing is downloaded. Each step is one
SFT update as ``mu2 train sft`` does it (bf16 autocast through ``accelerate``, AdamW,
warm-up + cosine, clipping, gradient checkpointing) on random volumes of T=8 frames and
a report that fills ``--max-length`` tokens. Then one report is generated with a fixed
number of new tokens.

    bash benchmarks/gpu_check.sh                  # 60 s of steps, batch 1 (the paper's per GPU)
    bash benchmarks/gpu_check.sh --batch-size 2 --seconds 120
    bash benchmarks/gpu_check.sh --dry-run        # tiny sizes on the CPU, 2 steps (tests)
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

PAPER_VOCAB = 128_256  # Llama-3.2-1B's vocabulary
PAPER_FRAMES = 8  # T = 8 frames of 32 slices (paper maximum, 256 slices)


def word_tokenizer(vocab_size: int):
    """A word-level tokenizer with ``vocab_size`` entries ("w0", "w1", ...): the Llama-3.2-1B
    vocabulary size without downloading its tokenizer, one token per word of the text."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    special = ["<pad>", "<s>", "</s>", "<unk>", "<image>"]
    words = special + [f"w{i}" for i in range(vocab_size - len(special))]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="time spent in training steps")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--max-length", type=int, default=1024, help="text tokens incl. image tokens")
    ap.add_argument("--frames", type=int, default=PAPER_FRAMES)
    ap.add_argument("--new-tokens", type=int, default=256, help="report length for the latency")
    ap.add_argument("--no-checkpointing", action="store_true", help="gradient checkpointing off")
    ap.add_argument("--dry-run", action="store_true", help="tiny model on the CPU, 2 steps (tests)")
    args = ap.parse_args(argv)

    from accelerate import Accelerator

    from mu2.engine.config import OptimOptions
    from mu2.engine.runtime import build_optimizer
    from mu2.engine.schedule import warmup_cosine
    from mu2.model import build

    if args.dry_run:
        size, vocab, max_steps = "tiny", 2000, 2
        torch.set_num_threads(1)  # shared CI cores: one thread wastes no time spinning
        args.seconds, args.max_length, args.new_tokens = min(args.seconds, 30.0), 96, 8
        args.frames = min(args.frames, 2)
        accelerator = Accelerator(cpu=True, mixed_precision="no")
    else:
        if not torch.cuda.is_available():
            print("gpu_check: no CUDA device; use --dry-run on a CPU machine", file=sys.stderr)
            return 2
        size, vocab, max_steps = "paper", PAPER_VOCAB, 10**9
        accelerator = Accelerator(mixed_precision="bf16")
    device = accelerator.device

    t0 = time.perf_counter()
    model = build(size, tokenizer=word_tokenizer(vocab))
    processor = model.processor
    if not args.no_checkpointing:
        model.gradient_checkpointing_enable()
    optim = OptimOptions(lr=4e-6, warmup_ratio=0.1)  # the paper's SFT settings
    optimizer = build_optimizer(model, optim)
    scheduler = warmup_cosine(optimizer, total_steps=1000, warmup_ratio=optim.warmup_ratio)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    build_s = time.perf_counter() - t0
    counts = accelerator.unwrap_model(model).parameter_counts()

    # One batch of random volumes and a report filling max_length tokens.
    k, h, w = accelerator.unwrap_model(model).vision_tower.config.img_size
    gen = torch.Generator().manual_seed(0)
    frames = [torch.rand(args.frames, k, h, w, generator=gen) for _ in range(args.batch_size)]
    pixel_values, frame_mask = processor.pad_frames(frames)  # (B, T, K, H, W), (B, T)
    question = "Describe the findings of the abdomen in this CT."
    prompt_len = len(processor.prompt_ids(question))
    n_words = max(args.max_length - prompt_len - 1, 1)
    report = " ".join(f"w{int(i)}" for i in torch.randint(0, vocab - 10, (n_words,), generator=gen))
    text = processor(
        [question] * args.batch_size, answers=[report] * args.batch_size, max_length=args.max_length
    )
    batch = {"pixel_values": pixel_values, "frame_mask": frame_mask, **text}
    batch = {key: v.to(device) for key, v in batch.items()}
    seq_len = int(batch["input_ids"].shape[1])

    def step() -> float:
        loss = model(**batch).loss
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach().item()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    model.train()
    step()  # warm-up: allocator, kernels
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    steps, start = 0, time.perf_counter()
    while steps < max_steps and (steps == 0 or time.perf_counter() - start < args.seconds):
        loss = step()
        steps += 1
        sync()
    elapsed = time.perf_counter() - start
    peak_train = (
        torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    )

    # Report latency: one case, a fixed number of new tokens (greedy).
    model.eval()
    prompts = processor([question])
    inputs = {"pixel_values": pixel_values[:1].to(device), "frame_mask": frame_mask[:1].to(device)}
    inputs.update({key: v.to(device) for key, v in prompts.items()})
    with torch.no_grad(), accelerator.autocast():
        unwrapped = accelerator.unwrap_model(model)
        sync()
        g0 = time.perf_counter()
        out = unwrapped.generate(
            **inputs,
            max_new_tokens=args.new_tokens,
            min_new_tokens=args.new_tokens,
            do_sample=False,
        )
        sync()
        latency = time.perf_counter() - g0

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (dry run)"
    rows = [
        ("device", name),
        (
            "model",
            f"{size}: {counts['total'] / 1e6:.1f}M parameters ({counts['llm'] / 1e6:.1f}M LLM), random init",
        ),
        ("precision", accelerator.mixed_precision),
        ("gradient checkpointing", str(not args.no_checkpointing)),
        ("batch per GPU x frames", f"{args.batch_size} x {args.frames} frames of {k}x{h}x{w}"),
        ("text length (tokens)", str(seq_len)),
        ("build + prepare (s)", f"{build_s:.1f}"),
        ("training steps", f"{steps} in {elapsed:.1f} s (last loss {loss:.3f})"),
        ("cases/s", f"{steps * args.batch_size / elapsed:.3f}"),
        ("s/step", f"{elapsed / steps:.3f}"),
        ("peak GPU memory, training (GiB)", f"{peak_train:.2f}"),
        (f"report latency, {out.shape[1]} new tokens (s)", f"{latency:.2f}"),
        ("decode tokens/s", f"{out.shape[1] / latency:.1f}"),
    ]
    width = max(len(r[0]) for r in rows)
    print("| " + "what".ljust(width) + " | value |")
    print("|-" + "-" * width + "-|-------|")
    for key, value in rows:
        print(f"| {key.ljust(width)} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
