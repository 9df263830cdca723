"""Training-step speed: bf16 autocast against fp32, the real encoder, real benchmark sentences.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_train_step.py [--threads 2] [--steps 8]

One optimiser step = forward through all-MiniLM-L6-v2 + mean pooling + a linear head, cross-entropy,
backward, AdamW. Batches of 32 texts come from the benchmark's TREC questions (short) and movie-review
sentences (longer) when `polyhead datasets fetch` has run, else from the example data. The baseline is
fp32 measured in the same process, alternating with bf16 so both see the same machine load. On a GPU
fp16 (with a gradient scaler) is measured too. This is what decided `--set training.precision=bf16`
for the CPU benchmark runs (docs/design.md, "Precision"; the measurement: docs/research/notebook.md).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def texts_for(name: str) -> list[str]:
    """Texts of one benchmark set from the polyhead cache, or example texts if the set is not fetched."""
    from polyhead.bench.datasets import dataset_dir

    path = dataset_dir(name) / "train.jsonl"
    if not path.is_file():
        path = Path(__file__).resolve().parent.parent / "examples" / "data" / "inbox" / "train.jsonl"
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8, help="timed steps per precision and set (after 2 warm-up steps)")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()

    import torch

    from polyhead import Encoder

    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    enc = Encoder(None, device=device)
    backbone = enc.backbone.train()
    head = torch.nn.Linear(backbone.config.hidden_size, 6).to(device)
    opt = torch.optim.AdamW([*backbone.parameters(), *head.parameters()], lr=1e-5)
    modes = ["fp32", "bf16"] + (["fp16"] if device == "cuda" else [])
    scaler = torch.amp.GradScaler(device) if device == "cuda" else None

    def step(batch: dict, mode: str) -> None:
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mode)
        with torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
            hidden = backbone(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            loss = torch.nn.functional.cross_entropy(head(pooled).float(), torch.zeros(len(pooled), dtype=torch.long, device=device))
        if mode == "fp16":
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        opt.zero_grad(set_to_none=True)

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    print(f"device={device} threads={args.threads} torch={torch.__version__} batch={args.batch_size}")
    for name in ("trec", "sentiment"):
        texts = texts_for(name)
        n = args.batch_size * (args.steps + 2)
        texts = (texts * (n // max(len(texts), 1) + 1))[:n]
        batches = [enc.tokenizer(texts[i:i + args.batch_size], padding=True, truncation=True, max_length=128,
                                 return_tensors="pt").to(device) for i in range(0, n, args.batch_size)]
        times: dict[str, list[float]] = {m: [] for m in modes}
        for i, batch in enumerate(batches):
            for mode in modes:  # alternate, so a load change on a shared machine hits every mode alike
                sync()
                t0 = time.perf_counter()
                step(batch, mode)
                sync()
                if i >= 2:
                    times[mode].append(time.perf_counter() - t0)
        tokens = statistics.mean(b["input_ids"].shape[1] for b in batches)
        base = statistics.median(times["fp32"])
        cells = ", ".join(f"{m} {statistics.median(times[m]):.3f} s/step ({base / statistics.median(times[m]):.2f}x fp32)"
                          for m in modes)
        print(f"{name:9s} (padded length ~{tokens:.0f} tokens): {cells}")


if __name__ == "__main__":
    main()
