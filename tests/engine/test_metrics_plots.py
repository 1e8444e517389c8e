"""metrics.jsonl / metrics.csv logging (and its truncation on resume) and the curves image."""
import csv
import json

import cv2

from damo_pipeline.engine.metrics_log import MetricsLogger, read_metrics
from damo_pipeline.engine.plots import _panels, _plot_cv2, plot_curves

RECORDS = [{"epoch": e, "iteration": 10 * e, "lr": 0.01 / e, "total_loss": 3.0 - 0.2 * e, "loss_cls": 1.0 / e,
            **({"AP": 0.05 * e, "AP50": 0.1 * e} if e % 2 == 0 else {})} for e in range(1, 7)]


def test_jsonl_and_csv(tmp_path):
    log = MetricsLogger(tmp_path, tensorboard=False)
    for record in RECORDS[:4]:
        log.log(record)
    log.close()
    assert read_metrics(tmp_path / "metrics.jsonl") == RECORDS[:4]
    with (tmp_path / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and rows[1]["AP"] == "0.1" and rows[0]["AP"] == ""
    # resuming at epoch 2 (two epochs done) drops the records of later epochs written before the interruption
    resumed = MetricsLogger(tmp_path, tensorboard=False, resume=True, start_epoch=3)
    assert [r["epoch"] for r in resumed.records] == [1, 2]
    resumed.log({"epoch": 3, "total_loss": float("nan")})
    assert read_metrics(tmp_path / "metrics.jsonl")[-1] == {"epoch": 3, "total_loss": None}


def test_curves_with_and_without_matplotlib(tmp_path):
    panels = _panels(RECORDS)
    assert [title for title, _ in panels] == ["training losses (epoch mean)", "validation AP (pycocotools)",
                                              "learning rate"]
    assert [label for label, _, _ in panels[1][1]] == ["AP", "AP50"] and panels[1][1][0][1] == [2.0, 4.0, 6.0]
    plot_curves(RECORDS, tmp_path / "curves.png")
    _plot_cv2(panels, tmp_path / "curves_cv2.png")  # the fallback when matplotlib is not installed
    for name in ("curves.png", "curves_cv2.png"):
        image = cv2.imread(str(tmp_path / name))
        assert image is not None and image.shape[1] > image.shape[0] > 200
        assert (image < 128).any()  # something was drawn
