"""The evaluator against pycocotools on hand-made cases, and the box rescaling to original pixels."""
import json

import pytest
import torch
from torch import nn

from damo_pipeline.engine import COCOEvaluator, coco_evaluate
from damo_pipeline.engine.evaluator import detections_to_coco, rescale_boxes


def _gt(boxes_per_image):
    """COCO ground truth from {image_id: [(category_id, [x, y, w, h]), ...]}."""
    from pycocotools.coco import COCO

    images, anns = [], []
    for image_id, boxes in boxes_per_image.items():
        images.append({"id": image_id, "file_name": f"{image_id}.jpg", "height": 200, "width": 300})
        for cat, bbox in boxes:
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat, "bbox": bbox,
                         "area": bbox[2] * bbox[3], "iscrowd": 0})
    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns,
                  "categories": [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}, {"id": 9, "name": "emu"}]}
    gt.createIndex()
    return gt


GT = {1: [(3, [10, 10, 50, 40]), (7, [100, 50, 60, 80])], 2: [(3, [20, 30, 100, 120])]}


def test_perfect_predictions_score_one():
    gt = _gt(GT)
    dets = [{"image_id": i, "category_id": c, "bbox": b, "score": 0.9} for i, v in GT.items() for c, b in v]
    result = coco_evaluate(gt, dets)
    assert result.ap == pytest.approx(1.0) and result.ap50 == pytest.approx(1.0)
    assert result.metrics["AP75"] == pytest.approx(1.0)
    assert result.per_class == {"cat": pytest.approx(1.0), "dog": pytest.approx(1.0), "emu": None}
    assert result.num_detections == 3 and result.num_images == 2
    assert "| cat | 1.0000 | 1.0000 |" in result.table() and "| emu | n/a | n/a |" in result.table()


def test_known_partial_case():
    """Cat: one of its two boxes found -> precision 1 up to recall 0.5 -> 51 of 101 recall points."""
    gt = _gt(GT)
    dets = [{"image_id": 1, "category_id": 3, "bbox": [10, 10, 50, 40], "score": 0.9},
            {"image_id": 1, "category_id": 7, "bbox": [100, 50, 60, 80], "score": 0.8}]
    result = coco_evaluate(gt, dets)
    assert result.per_class["cat"] == pytest.approx(51 / 101)
    assert result.per_class["dog"] == pytest.approx(1.0)
    assert result.ap == pytest.approx((51 / 101 + 1.0) / 2)
    # a higher-scoring false positive halves the precision at that recall
    dets.append({"image_id": 2, "category_id": 7, "bbox": [0, 0, 10, 10], "score": 0.95})
    assert coco_evaluate(gt, dets).per_class["dog"] == pytest.approx(0.5)


def test_no_detections_is_zero_not_a_crash():
    result = coco_evaluate(_gt(GT), [])
    assert result.ap == 0.0 and result.per_class["cat"] == 0.0 and result.per_class["emu"] is None


def test_rescale_per_axis_and_coco_conversion():
    boxes = torch.tensor([[64.0, 32.0, 128.0, 96.0]])
    # network 128 x 128, original 200 (h) x 400 (w): x * 400/128, y * 200/128
    out = rescale_boxes(boxes, {"orig_size": (200, 400)}, (128, 128))
    torch.testing.assert_close(out, torch.tensor([[200.0, 50.0, 400.0, 150.0]]))
    out = rescale_boxes(boxes, {"orig_size": (200, 400), "scale": (0.5, 0.25)}, (128, 128))
    torch.testing.assert_close(out, torch.tensor([[128.0, 128.0, 256.0, 384.0]]))
    out = rescale_boxes(boxes, {"orig_size": (200, 400), "scale": (0.5, 0.5), "pad": (4.0, 2.0)}, (128, 128))
    torch.testing.assert_close(out, torch.tensor([[120.0, 60.0, 248.0, 188.0]]))
    dets = detections_to_coco(out, torch.tensor([0.5]), torch.tensor([1]), 42, [3, 7])
    assert dets == [{"image_id": 42, "category_id": 7, "bbox": [120.0, 60.0, 128.0, 128.0], "score": 0.5}]


class _Oracle(nn.Module):
    """A 'detector' that outputs the ground-truth boxes of the synthetic set (in network pixels)."""

    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset
        self.config = None

    def forward(self, images):
        n = images.shape[0]
        scores = torch.zeros(n, 4, 2)
        boxes = torch.zeros(n, 4, 4)
        for i in range(n):
            index = int(images[i, 0, 0, 0].item())  # the collate below writes the index there
            for j, (box, label) in enumerate(zip(self.dataset.boxes[index], self.dataset.labels[index])):
                boxes[i, j] = torch.as_tensor(box)
                scores[i, j, int(label)] = 0.9
        return scores, boxes


def test_evaluator_end_to_end_with_rescaling(synthetic, tmp_path):
    data = synthetic.SyntheticBoxes(n=5, size=64, orig_scale=(3.0, 1.5))

    def collate(samples):
        images, targets = synthetic.collate(samples)
        for i, t in enumerate(targets):
            images[i, 0, 0, 0] = t["image_id"] - 1
        return images, targets

    evaluator = COCOEvaluator(data, batch_size=2, collate_fn=collate, score_threshold=0.05, iou_threshold=0.7,
                              max_detections=100, progress=False)
    result = evaluator.evaluate(_Oracle(data), detections_path=tmp_path / "dets.json")
    assert result.ap == pytest.approx(1.0)
    assert result.num_images == 5
    dets = json.loads((tmp_path / "dets.json").read_text())
    assert {d["category_id"] for d in dets} <= {3, 7}
    saved = result.save(tmp_path / "results.json", {"epoch": 3})
    assert json.loads(saved.read_text())["metrics"]["AP"] == pytest.approx(1.0)
