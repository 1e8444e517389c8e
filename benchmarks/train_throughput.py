"""Training throughput: our train step vs the official DAMO-YOLO step on the same batch (images/s, ratio).

    python benchmarks/train_throughput.py --model damoyolo-t --img-size 640 --batch-size 16 --device cuda
    python benchmarks/train_throughput.py --model damoyolo-t --img-size 320 --batch-size 16 --device cpu \\
        --data ../shared/data/raccoon --out benchmarks/results/train_throughput_cpu.json

Both steps do the same work on the same batch: forward with the detection losses (AlignedOTA, QFL,
GIoU, DFL), backward, the family's optimizer step (SGD with Nesterov; AdamW for Nano) and the EMA update.

* **official** (upstream ``damo/apis/detector_trainer.py``, ``spec/training.md`` §1/§4/§6): full fp32, NCHW,
  the model wrapped in DistributedDataParallel (``find_unused_parameters=True``, ``broadcast_buffers=False``,
  a one-process group: upstream always runs DDP, even on one GPU) with SyncBatchNorm on CUDA, one optimizer
  group per tensor, ``optimizer.zero_grad()``, and the EMA as a Python loop over the state dict.
* **ours** (``damo_pipeline.engine.Trainer``'s step with its defaults): no DDP wrapper on one device,
  channels_last tensors, denormals flushed to zero on CPU, on CUDA AMP (float16 autocast for backbone and neck, float32 head and losses,
  GradScaler), the EMA with foreach kernels; ``--param-groups merged`` also merges the optimizer groups
  (identical update).

Steps are timed in alternating blocks (official, ours, official, ...) after warm-up, so a machine whose
load changes affects both alike; the median step time gives images/s and ``ratio_ours_over_official``;
``ratio_of_fastest_steps`` compares the fastest steps (robust on a shared machine). The first loss of
each variant is reported to show both compute the same thing. Writes JSON (``--out``) and prints it.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.distributed as dist
from torch import nn

from damo_pipeline.engine import ModelEMA, TrainConfig, build_optimizer, resolve_device
from damo_pipeline.engine.distributed import no_buffer_sync_kwargs
from damo_pipeline.engine.step import AmpSettings, TrainStep
from damo_pipeline.models import build_model


def make_batch(args: argparse.Namespace, num_classes: int) -> Tuple[torch.Tensor, List[Dict[str, torch.Tensor]], str]:
    """A training batch: augmented images of ``--data`` (TrainDataset), or seeded synthetic images and boxes."""
    if args.data:
        from damo_pipeline.data import TrainAugmentConfig, TrainDataset, collate_detection, load_detection_dataset

        dataset = load_detection_dataset(args.data, split="train")
        train = TrainDataset(dataset, TrainAugmentConfig.for_model(args.model, img_size=args.img_size), seed=0)
        images, targets = collate_detection([train[i % len(train)] for i in range(args.batch_size)])
        return images, [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets], f"{args.data} (TrainDataset)"
    gen = torch.Generator().manual_seed(0)
    size = args.img_size
    images = torch.rand(args.batch_size, 3, size, size, generator=gen) * 255
    targets = []
    for _ in range(args.batch_size):
        count = int(torch.randint(1, 8, (1,), generator=gen))
        xy = torch.rand(count, 2, generator=gen) * size * 0.7
        wh = torch.rand(count, 2, generator=gen) * size * 0.3 + 8
        targets.append({"boxes": torch.cat([xy, (xy + wh).clamp(max=size)], 1),
                        "labels": torch.randint(0, num_classes, (count,), generator=gen)})
    return images, targets, "synthetic"


class OfficialEMA:
    """Upstream ``ema_model``: deep copy, then a Python loop over the floating state entries."""

    def __init__(self, model: nn.Module, momentum: float = 0.9998) -> None:
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.momentum = momentum

    def update(self, iters: int, student: nn.Module) -> None:
        state = student.module.state_dict()
        with torch.no_grad():
            m = self.momentum * (1 - math.exp(-iters / 2000))
            for name, param in self.model.state_dict().items():
                if param.dtype.is_floating_point:
                    param *= m
                    param += (1.0 - m) * state[name].detach()


def official_step_fn(base: nn.Module, device: torch.device, images: torch.Tensor,
                     targets: List[Dict[str, torch.Tensor]], lr: float, cfg: TrainConfig) -> Callable[[int], float]:
    model = copy.deepcopy(base).to(device).train()
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    # the family's official optimizer (SGD + Nesterov, or AdamW for Nano), one group per tensor
    optimizer = build_optimizer(cfg.replace(param_groups="per_tensor"), [model])
    ema = OfficialEMA(model)
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                              find_unused_parameters=True, **no_buffer_sync_kwargs())
    images = images.to(device)
    targets = [{k: v.to(device) for k, v in t.items()} for t in targets]

    def step(iteration: int) -> float:
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = ddp(images, targets)["total_loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ema.update(iteration, ddp)
        return float(loss.detach())  # upstream logs every loss with .item() each iteration

    return step


def our_step_fn(base: nn.Module, device: torch.device, images: torch.Tensor, targets: List[Dict[str, torch.Tensor]],
                lr: float, cfg: TrainConfig) -> Callable[[int], float]:
    model = copy.deepcopy(base).to(device).train()
    channels_last = cfg.channels_last
    if channels_last:
        model.to(memory_format=torch.channels_last)
    amp = AmpSettings.from_config(cfg, device)
    optimizer = build_optimizer(cfg, [model])
    scaler = torch.amp.GradScaler(device.type, enabled=amp.needs_scaler)
    ema = ModelEMA(model, cfg.ema_decay, cfg.ema_ramp_iters)
    step_module = TrainStep(model, [], amp)
    images = images.to(device)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    targets = [{k: v.to(device) for k, v in t.items()} for t in targets]

    def step(iteration: int) -> float:
        for group in optimizer.param_groups:
            group["lr"] = lr
        losses = step_module(images, targets, iteration, 1000, 0)
        scaler.scale(losses["total_loss"]).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        ema.update(model, iteration)
        return float(losses["total_loss"].detach())  # what the trainer's progress bar costs at most

    return step


def time_steps(step: Callable[[int], float], start: int, count: int, device: torch.device,
               flush_denormal: bool = False) -> List[float]:
    """Wall time of ``count`` steps; ``flush_denormal`` is set for them (a process-wide CPU setting)."""
    if device.type == "cpu":
        torch.set_flush_denormal(flush_denormal)
    times = []
    for i in range(count):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        step(start + i)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return times


def init_single_process_group(device: torch.device) -> None:
    """A one-process group so the official step can run under DDP, as upstream always does."""
    if dist.is_initialized():
        return
    store = tempfile.NamedTemporaryFile(prefix="bench_pg_", delete=False)
    store.close()
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", init_method=f"file://{store.name}",
                            rank=0, world_size=1)


def run(args: argparse.Namespace) -> Dict[str, Any]:
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = build_model(args.model, num_classes=args.num_classes, img_size=args.img_size)
    images, targets, source = make_batch(args, base.num_classes)
    overrides: Dict[str, Any] = {"param_groups": args.param_groups}
    if args.amp != "auto":
        overrides["amp"] = args.amp == "on"
    if args.channels_last != "auto":
        overrides["channels_last"] = args.channels_last == "on"
    cfg = TrainConfig.for_model(base.config, **overrides)
    lr = cfg.lr_per_image * args.batch_size
    init_single_process_group(device)
    steps = {"official": official_step_fn(base, device, images, targets, lr, cfg),
             "ours": our_step_fn(base, device, images, targets, lr, cfg)}
    flush = {"official": False, "ours": cfg.flush_denormal}  # upstream leaves denormals on
    first_loss = {}
    for name, fn in steps.items():  # also the first warm-up step
        time_steps(lambda it: first_loss.__setitem__(name, fn(it)), 0, 1, device, flush[name])
        time_steps(fn, 1, args.warmup, device, flush[name])
    times: Dict[str, List[float]] = {name: [] for name in steps}
    done = 0
    block = max(1, args.steps // args.blocks)
    while done < args.steps:
        for name, fn in steps.items():
            times[name] += time_steps(fn, 1 + args.warmup + done, block, device, flush[name])
        done += block
    dist.destroy_process_group()
    summary = {}
    for name, values in times.items():
        median = statistics.median(values)
        summary[name] = {"step_ms_median": round(1000 * median, 2), "step_ms_min": round(1000 * min(values), 2),
                         "images_per_s": round(args.batch_size / median, 2), "steps": len(values),
                         "first_loss": round(first_loss[name], 5)}
    amp = AmpSettings.from_config(cfg, device)
    return {
        "model": args.model, "img_size": args.img_size, "batch_size": args.batch_size, "batch": source,
        "device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "ours_settings": {"amp": amp.enabled, "amp_dtype": cfg.amp_dtype if amp.enabled else None,
                          "channels_last": cfg.channels_last,
                          "param_groups": cfg.param_groups, "ddp_wrapper": False,
                          "flush_denormal": cfg.flush_denormal and device.type == "cpu"},
        "optimizer": cfg.optimizer, "lr": lr,
        "official_settings": {"amp": False, "channels_last": False, "param_groups": "per_tensor",
                              "ddp_wrapper": True, "find_unused_parameters": True, "sync_bn": device.type == "cuda"},
        "official": summary["official"], "ours": summary["ours"],
        "ratio_ours_over_official": round(summary["ours"]["images_per_s"] / summary["official"]["images_per_s"], 3),
        "ratio_of_fastest_steps": round(summary["official"]["step_ms_min"] / summary["ours"]["step_ms_min"], 3),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
    }


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default="damoyolo-t", help="zoo id or config .json")
    parser.add_argument("--img-size", type=int, default=640)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-classes", type=int, default=80)
    parser.add_argument("--data", help="take the batch from this dataset's training split (default: synthetic)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--blocks", type=int, default=4, help="alternating timing blocks")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant")
    parser.add_argument("--param-groups", choices=["per_tensor", "merged"], default="per_tensor",
                        help="our optimizer groups (per_tensor = the TrainConfig default)")
    parser.add_argument("--amp", choices=["auto", "on", "off"], default="auto",
                        help="our mixed precision (auto: on for CUDA, as the trainer)")
    parser.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                        help="our memory format (auto: the TrainConfig default, channels_last)")
    parser.add_argument("--out", help="write the JSON result here")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
