"""The training loop on a synthetic set: learning, run folder, resume equivalence, Ctrl-C, plugins, AMP."""
import json
import math

import pytest
import torch

from damo_pipeline.engine import Callback, LossPlugin, Trainer, load_training_checkpoint


class RecordLosses(Callback):
    """Per-step total loss and learning rate."""

    def __init__(self):
        self.steps = []

    def on_step_end(self, trainer, step):
        self.steps.append((step.iteration, step.epoch, step.losses["total_loss"].item(), step.lr))


class InterruptAt(Callback):
    """Raise KeyboardInterrupt after optimizer step ``iteration`` (0-based) or at the end of ``epoch``."""

    def __init__(self, iteration=None, epoch=None):
        self.iteration, self.epoch = iteration, epoch

    def on_step_end(self, trainer, step):
        if step.iteration == self.iteration:
            raise KeyboardInterrupt

    def on_epoch_end(self, trainer, epoch, record):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def _trainer(tiny_model, synthetic, cfg, out, callbacks=(), resume=None, val=True, plugins=(), flip=True, n=12):
    train = synthetic.SyntheticBoxes(n=n, size=128, seed=0, random_flip=flip)
    val_set = synthetic.SyntheticBoxes(n=4, size=128, seed=1) if val else None
    return Trainer(tiny_model(), train, cfg, out, val_dataset=val_set, collate_fn=synthetic.collate,
                   callbacks=list(callbacks), resume=resume, plugins=list(plugins), device="cpu")


def test_short_run_learns_and_writes_the_run_folder(tiny_model, synthetic, fast_config, tmp_path):
    cfg = fast_config(epochs=15, batch_size=4, optimizer="adamw", lr_per_image=0.0005, eval_interval=5,
                      no_aug_epochs=2, plots=True)
    rec = RecordLosses()
    trainer = _trainer(tiny_model, synthetic, cfg, tmp_path, callbacks=[rec], n=8)
    result = trainer.fit()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == list(range(1, 16))
    losses = [r["total_loss"] for r in records]
    # the loss falls: below where it started and well below its peak (it rises first, while the assigner
    # finds more positives)
    assert losses[-1] < losses[0] and losses[-1] < 0.75 * max(losses)
    assert records[-1]["loss_cls"] < 0.75 * records[0]["loss_cls"]
    evaluated = [r["epoch"] for r in records if "AP" in r]
    assert evaluated == [5, 10, 14, 15]  # every 5 epochs, then every no-aug epoch
    assert trainer.train_dataset.mosaic_calls == [True] * 13 + [False] * 2
    assert trainer.train_dataset.epochs_seen == list(range(15))
    assert result.iteration == 15 * 2 and len(rec.steps) == 30
    for name in ("last.pt", "best.pt", "metrics.csv", "results.json", "curves.png", "train_config.json"):
        assert (tmp_path / name).is_file(), name
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["per_class"]) == {"white", "red"} and results["epoch"] == result.best_epoch
    ckpt = load_training_checkpoint(tmp_path / "last.pt")
    assert ckpt["epoch"] == 15 and ckpt["iteration"] == 30 and ckpt["class_names"] == ["white", "red"]
    assert ckpt["model_config"]["img_size"] == 128 and ckpt["train_config"]["epochs"] == 15
    # the schedule the trainer used is the formula's
    sched = trainer.schedule
    assert [lr for *_, lr in rec.steps] == [sched(i) for i in range(30)]


def test_resume_after_an_epoch_reproduces_the_losses(tiny_model, synthetic, fast_config, tmp_path):
    cfg = fast_config(epochs=2)
    full = RecordLosses()
    _trainer(tiny_model, synthetic, cfg, tmp_path / "full", callbacks=[full]).fit()
    first = RecordLosses()
    with pytest.raises(KeyboardInterrupt):
        _trainer(tiny_model, synthetic, cfg, tmp_path / "cut", callbacks=[first, InterruptAt(epoch=0)]).fit()
    assert load_training_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 1
    second = RecordLosses()
    _trainer(tiny_model, synthetic, cfg, tmp_path / "cut", callbacks=[second], resume=True).fit()
    assert first.steps + second.steps == full.steps  # exact: same losses, same learning rates
    full_records = (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()
    cut_records = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    strip = lambda lines: [{k: v for k, v in json.loads(x).items() if "time" not in k and "per_s" not in k}
                           for x in lines]
    assert strip(full_records) == strip(cut_records)


def test_ctrl_c_mid_epoch_writes_a_resumable_checkpoint(tiny_model, synthetic, fast_config, tmp_path):
    cfg = fast_config(epochs=2)
    full = RecordLosses()
    _trainer(tiny_model, synthetic, cfg, tmp_path / "full", callbacks=[full], flip=False).fit()
    first = RecordLosses()
    with pytest.raises(KeyboardInterrupt):
        _trainer(tiny_model, synthetic, cfg, tmp_path / "cut", callbacks=[first, InterruptAt(iteration=4)],
                 flip=False).fit()
    ckpt = load_training_checkpoint(tmp_path / "cut" / "last.pt")
    assert (ckpt["epoch"], ckpt["iteration"], ckpt["epoch_step"]) == (1, 5, 2)
    second = RecordLosses()
    _trainer(tiny_model, synthetic, cfg, tmp_path / "cut", callbacks=[second], resume=True, flip=False).fit()
    assert first.steps + second.steps == full.steps


class FeatureNorm(LossPlugin):
    """A trainable per-level weight times the mean squared neck feature."""

    name = "feature_norm"

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.full((3,), 1e-3))

    def forward(self, ctx):
        assert len(ctx.features) == 3 and ctx.max_iterations == 6
        loss = sum(w * f.pow(2).mean() for w, f in zip(self.weight, ctx.features))
        return {"loss_feature_norm": loss}


def test_loss_plugin_is_trained_logged_and_checkpointed(tiny_model, synthetic, fast_config, tmp_path):
    plugin = FeatureNorm()
    trainer = _trainer(tiny_model, synthetic, fast_config(epochs=2, plots=True), tmp_path, plugins=[plugin],
                       val=False)
    trainer.fit()
    assert any(p is plugin.weight for g in trainer.optimizer.param_groups for p in g["params"])
    assert not torch.equal(plugin.weight.detach(), torch.full((3,), 1e-3))
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["loss_feature_norm"] > 0
    assert record["total_loss"] == pytest.approx(record["loss_cls"] + record["loss_bbox"] + record["loss_dfl"]
                                                 + record["loss_feature_norm"], rel=1e-5)
    ckpt = load_training_checkpoint(tmp_path / "last.pt")
    assert torch.equal(ckpt["plugins"]["feature_norm"]["weight"], plugin.weight.detach())
    assert not (tmp_path / "best.pt").exists()  # no evaluation, no best


def test_accumulation_steps_and_amp_on_cpu(tiny_model, synthetic, fast_config, tmp_path):
    rec = RecordLosses()
    cfg = fast_config(epochs=1, no_aug_epochs=0, batch_size=8, accumulate=4, amp=True, amp_dtype="bfloat16")
    trainer = _trainer(tiny_model, synthetic, cfg, tmp_path, callbacks=[rec], val=False)
    assert trainer.micro_batch == 2 and trainer.micro_per_epoch == 6 and trainer.iters_per_epoch == 2
    trainer.fit()
    assert len(rec.steps) == 2 and all(math.isfinite(loss) for _, _, loss, _ in rec.steps)
    assert trainer.amp.enabled and not trainer.amp.needs_scaler
    fp16 = fast_config(epochs=1, no_aug_epochs=0, amp=True, amp_dtype="float16")
    trainer = _trainer(tiny_model, synthetic, fp16, tmp_path / "fp16", val=False, n=4)
    trainer.fit()
    assert trainer.scaler.is_enabled()  # the GradScaler path runs on CPU too
    assert "scaler" in load_training_checkpoint(tmp_path / "fp16" / "last.pt")


def test_bad_inputs_are_reported(tiny_model, synthetic, fast_config, tmp_path):
    with pytest.raises(TypeError, match="TrainConfig"):
        Trainer(tiny_model(), synthetic.SyntheticBoxes(2), {"epochs": 1}, tmp_path)
    with pytest.raises(ValueError, match="divisible"):
        _trainer(tiny_model, synthetic, fast_config(batch_size=6, accumulate=4), tmp_path)
    with pytest.raises(FileNotFoundError, match="last.pt"):
        _trainer(tiny_model, synthetic, fast_config(), tmp_path / "new", resume=True).fit()
