"""Training augmentation: geometry stays on the objects, flip/no-aug exactness, determinism, worker processes."""
import cv2
import numpy as np
import pytest
import torch

from damo_pipeline.data import (EvalDataset, TrainAugmentConfig, TrainDataset, collate_detection,
                                load_detection_dataset)
from damo_pipeline.data.mosaic import (Annotated, build_mosaic, mixup, random_affine, sample_affine,
                                       warp_boxes)
from damo_pipeline.models import get_model_config, list_models

COLOURS = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255)])
SMALL = dict(img_size=256, mosaic_size=256)


def _colour_mask(image: np.ndarray, label: int, tolerance: int = 60) -> np.ndarray:
    return (np.abs(image.astype(int) - COLOURS[label]).max(axis=2) < tolerance)


def _as_hwc(tensor: torch.Tensor) -> np.ndarray:
    return tensor.permute(1, 2, 0).numpy().astype(np.uint8)


def test_config_per_size_and_round_trip():
    official = {"damoyolo-t": (640, 0.2, (0.1, 2.0)), "damoyolo-s": (640, 2.0, (0.1, 2.0)),
                "damoyolo-m": (640, 2.0, (0.1, 2.0)), "damoyolo-l": (640, 2.0, (0.1, 2.0)),
                "damoyolo-ns": (416, 0.2, (0.75, 1.25)), "damoyolo-nm": (416, 0.2, (0.1, 2.0)),
                "damoyolo-nl": (416, 0.2, (0.1, 2.0))}
    assert set(official) == set(list_models())
    for name, (img_size, shear, scale) in official.items():
        cfg = TrainAugmentConfig.for_model(name)
        assert (cfg.img_size, cfg.shear, cfg.mosaic_scale, cfg.mosaic_size) == (img_size, shear, scale, 640), name
        assert (cfg.mosaic_prob, cfg.mixup_prob, cfg.degrees, cfg.translate, cfg.flip_prob) == (1.0, 0.15, 10, 0.2, .5)
        assert TrainAugmentConfig.for_model(get_model_config(name)) == cfg
    cfg = TrainAugmentConfig.for_model("ns", mixup_prob=0.0, img_size=320)
    assert cfg.mixup_prob == 0.0 and cfg.img_size == 320 and cfg.mosaic_scale == (0.75, 1.25)
    import json
    assert TrainAugmentConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="Unknown model size"):
        TrainAugmentConfig.for_model("yolov8")
    with pytest.raises(ValueError, match="mosaic_scale"):
        TrainAugmentConfig(mosaic_scale=(2.0, 1.0))
    with pytest.raises(ValueError, match="flip_prob"):
        TrainAugmentConfig(flip_prob=1.5)
    with pytest.raises(ValueError, match="Unknown augmentation keys"):
        TrainAugmentConfig.from_dict({"mosaic": 1})
    with pytest.raises(ValueError, match="sada_epochs"):
        TrainAugmentConfig(sada=True)


def test_mosaic_boxes_stay_on_their_objects(synthetic_coco):
    ds = load_detection_dataset(synthetic_coco)
    train = TrainDataset(ds, TrainAugmentConfig(mixup_prob=0.0, **SMALL), seed=1)
    colour_pixels = covered_pixels = 0
    fractions = []
    for epoch in range(3):
        train.set_epoch(epoch)
        for index in range(len(train)):
            tensor, target = train[index]
            image = _as_hwc(tensor)
            boxes, labels = target["boxes"].numpy(), target["labels"].numpy()
            assert tensor.shape == (3, 256, 256) and boxes.shape == (len(labels), 4)
            assert (boxes >= 0).all() and (boxes <= 256).all()
            assert ((boxes[:, 2] - boxes[:, 0]) > 2).all() and ((boxes[:, 3] - boxes[:, 1]) > 2).all()
            covered = np.zeros((3, 256, 256), bool)
            for (x1, y1, x2, y2), label in zip(boxes, labels):
                x1, y1, x2, y2 = int(np.floor(x1)), int(np.floor(y1)), int(np.ceil(x2)), int(np.ceil(y2))
                inside = _colour_mask(image[y1:y2, x1:x2], label).mean()
                fractions.append(inside)
                # A box of class k lies on pixels of colour k (rotation/shear/interpolation leave some margin;
                # a rotated object cut by the border can leave only a sliver in its corner-based box).
                if min(x1, y1) > 0 and max(x2, y2) < 256 and min(x2 - x1, y2 - y1) >= 10:
                    assert inside > 0.5, (epoch, index, inside)
                covered[label, y1:y2, x1:x2] = True
            for label in range(3):
                mask = _colour_mask(image, label, tolerance=30)
                colour_pixels += mask.sum()
                covered_pixels += (mask & covered[label]).sum()
    assert len(fractions) > 50 and np.mean(fractions) > 0.6
    assert covered_pixels / colour_pixels > 0.93  # and almost every object pixel is inside a box of its class


def test_mixup_blends_and_appends_boxes():
    base = Annotated(np.zeros((128, 128, 3), np.uint8), np.zeros((0, 4)), np.zeros(0))
    other_image = np.zeros((100, 200, 3), np.uint8)
    other_image[20:60, 50:150] = 254
    other = Annotated(other_image, [[50, 20, 150, 60]], [2])
    for seed in range(5):
        result = mixup(base, other, np.random.default_rng(seed), (0.5, 1.5))
        assert result.labels.tolist() == [2]
        x1, y1, x2, y2 = result.boxes[0]
        inner = result.image[int(np.ceil(y1)) + 1:int(y2) - 1, int(np.ceil(x1)) + 1:int(x2) - 1, 0]
        if inner.size:
            assert (inner == 127).mean() > 0.9, inner  # floor(0.5 * 0 + 0.5 * 254)
        outside = result.image[..., 0].copy()
        outside[int(y1):int(np.ceil(y2)) + 1, int(x1):int(np.ceil(x2)) + 1] = 0
        assert (outside > 100).sum() == 0


def test_polygons_give_tight_boxes_under_rotation():
    diamond = np.array([[30, 20], [40, 30], [30, 40], [20, 30]], np.float32)
    sample = Annotated(np.zeros((60, 60, 3), np.uint8), [[20, 20, 40, 40]], [0], diamond, np.array([4], np.int32))
    rotation = np.eye(3)
    rotation[:2] = cv2.getRotationMatrix2D((30, 30), 45, 1.0)
    tight = warp_boxes(sample, rotation, 60, use_polygons=True)[0]
    loose = warp_boxes(sample, rotation, 60, use_polygons=False)[0]
    half = 10 / np.sqrt(2)
    np.testing.assert_allclose(tight, [30 - half, 30 - half, 30 + half, 30 + half], atol=0.05)
    np.testing.assert_allclose(loose, [30 - 2 * half, 30 - 2 * half, 30 + 2 * half, 30 + 2 * half], atol=1e-3)


def test_mosaic_layout():
    tiles = []
    for k in range(4):
        image = np.full((50, 80, 3), 40 * (k + 1), np.uint8)
        tiles.append(Annotated(image, [[0, 0, 80, 50]], [k]))
    canvas = build_mosaic(tiles, center=(70, 90), size=64)
    assert canvas.image.shape == (128, 128, 3)
    assert canvas.image[89, 69, 0] == 40 and canvas.image[89, 70, 0] == 80
    assert canvas.image[90, 69, 0] == 120 and canvas.image[90, 70, 0] == 160
    np.testing.assert_allclose(canvas.boxes, [[6, 26, 70, 90], [70, 26, 128, 90], [6, 90, 70, 128],
                                              [70, 90, 128, 128]])
    matrix, scale = sample_affine(np.random.default_rng(0), (128, 128), 64, 0, 0, (1, 1), 0)
    warped = random_affine(canvas, matrix, scale, 64)  # identity scale: the centre 64 x 64 crop
    np.testing.assert_array_equal(warped.image, canvas.image[32:96, 32:96])


def test_flip_maps_x_exactly_and_no_aug_is_plain_stretch(synthetic_coco):
    ds = load_detection_dataset(synthetic_coco)
    plain = TrainDataset(ds, TrainAugmentConfig(flip_prob=0.0, **SMALL))
    flipped = TrainDataset(ds, TrainAugmentConfig(flip_prob=1.0, **SMALL))
    plain.set_mosaic(False)
    flipped.set_mosaic(False)
    for index in range(3):
        image, target = plain[index]
        expected = cv2.resize(ds.load_image(index), (256, 256), interpolation=cv2.INTER_LINEAR)
        np.testing.assert_array_equal(_as_hwc(image), expected)
        info = ds.image_info(index)
        scale = np.array([256 / info["width"], 256 / info["height"]] * 2, np.float32)
        np.testing.assert_allclose(target["boxes"].numpy(), ds.annotations(index)[0] * scale, rtol=1e-6)
        assert target["orig_size"] == (info["height"], info["width"]) and target["image_id"] == info["id"]
        mirror, mirror_target = flipped[index]
        np.testing.assert_array_equal(mirror.numpy(), image.numpy()[:, :, ::-1])
        boxes = target["boxes"].numpy()
        np.testing.assert_array_equal(mirror_target["boxes"].numpy()[:, [0, 2]], 256 - boxes[:, [2, 0]])
        np.testing.assert_array_equal(mirror_target["boxes"].numpy()[:, [1, 3]], boxes[:, [1, 3]])


def test_seeded_determinism(synthetic_coco):
    ds = load_detection_dataset(synthetic_coco)
    cfg = TrainAugmentConfig(mixup_prob=0.5, **SMALL)
    first, second, other_seed = TrainDataset(ds, cfg, seed=7), TrainDataset(ds, cfg, seed=7), TrainDataset(ds, cfg, 8)
    for index in range(4):
        a, b = first[index], second[index]
        assert torch.equal(a[0], b[0]) and torch.equal(a[1]["boxes"], b[1]["boxes"])
        assert not torch.equal(a[0], other_seed[index][0])
    before = first[0][0]
    first.set_epoch(1)
    assert not torch.equal(before, first[0][0])
    first.set_epoch(0)
    assert torch.equal(before, first[0][0])


def test_nano_sizes_mosaic_640_then_416(synthetic_coco):
    ds = load_detection_dataset(synthetic_coco)
    train = TrainDataset(ds, TrainAugmentConfig.for_model("damoyolo-ns"))
    image, target = train[0]
    assert image.shape == (3, 416, 416) and (target["boxes"] <= 416).all()


def test_dataloader_workers_follow_epoch_and_mosaic_switch(synthetic_coco):
    ds = load_detection_dataset(synthetic_coco)
    train = TrainDataset(ds, TrainAugmentConfig(**SMALL), seed=3)
    loader = torch.utils.data.DataLoader(train, batch_size=4, num_workers=2, collate_fn=collate_detection,
                                         persistent_workers=True)

    def run():
        images, targets = [], []
        for batch_images, batch_targets in loader:
            assert batch_images.shape == (len(batch_targets), 3, 256, 256) and batch_images.dtype == torch.float32
            images.append(batch_images)
            targets += batch_targets
        return torch.cat(images), targets

    images, targets = run()
    assert len(targets) == len(ds)
    for index in (0, 5, 11):  # workers give what the main process computes: worker count does not matter
        image, target = train[index]
        assert torch.equal(images[index], image) and torch.equal(targets[index]["boxes"], target["boxes"])
    train.set_epoch(4)
    train.set_mosaic(False)  # seen by the running (persistent) workers through shared memory
    images, targets = run()
    plain = TrainDataset(ds, TrainAugmentConfig(**SMALL), seed=3)
    plain.set_mosaic(False)
    plain.set_epoch(4)
    for index in (0, 7):
        assert torch.equal(images[index], plain[index][0])
        assert targets[index]["image_id"] == ds.image_info(index)["id"]


def test_eval_dataset_and_collate(synthetic_coco):
    ds = load_detection_dataset(synthetic_coco, "val")
    stretch = EvalDataset(ds, img_size=128)
    image, target = stretch[0]
    info = ds.image_info(0)
    sx, sy = 128 / info["width"], 128 / info["height"]
    assert image.shape == (3, 128, 128) and target["scale"] == (sx, sy) and target["valid"]
    assert target["orig_size"] == (info["height"], info["width"])
    np.testing.assert_allclose(target["boxes"].numpy() / np.array([sx, sy, sx, sy]), ds.annotations(0)[0],
                               rtol=1e-5)
    np.testing.assert_array_equal(_as_hwc(image), cv2.resize(ds.load_image(0), (128, 128)))
    letter = EvalDataset(ds, img_size=128, resize="letterbox")
    image, target = letter[0]
    ratio = min(128 / info["width"], 128 / info["height"])
    new_w, new_h = int(info["width"] * ratio), int(info["height"] * ratio)
    assert target["scale"] == (new_w / info["width"], new_h / info["height"])
    assert image[:, new_h:, :].abs().sum() == 0 and image[:, :, new_w:].abs().sum() == 0
    with pytest.raises(ValueError, match="letterbox"):
        EvalDataset(ds, resize="crop")
    batch, targets = collate_detection([(torch.ones(3, 40, 70), {"a": 1}), (torch.ones(3, 64, 33), {"a": 2})])
    assert batch.shape == (2, 3, 64, 96) and batch[0, :, 40:].abs().sum() == 0 and len(targets) == 2


def test_coco_polygons_make_tight_mosaic_boxes(tmp_path):
    """Diamonds annotated with polygons: after rotation and shear the boxes hug the diamonds' pixels."""
    import json

    rng = np.random.default_rng(0)
    root = tmp_path / "poly"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    images, annotations = [], []
    for image_id in range(1, 7):
        image = np.full((120, 120, 3), 60, np.uint8)
        for cx, cy in ((30, 30), (90, 90)):
            r = int(rng.integers(12, 25))
            diamond = np.array([[cx, cy - r], [cx + r, cy], [cx, cy + r], [cx - r, cy]], np.int32)
            cv2.fillPoly(image, [diamond], (0, 0, 255))
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                                "bbox": [cx - r, cy - r, 2 * r, 2 * r], "area": 2.0 * r * r,
                                "segmentation": [diamond.astype(float).ravel().tolist()]})
        cv2.imwrite(str(root / "images" / f"{image_id}.png"), image[:, :, ::-1])
        images.append({"id": image_id, "file_name": f"{image_id}.png", "height": 120, "width": 120})
    (root / "annotations" / "train.json").write_text(json.dumps(
        {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "diamond"}]}))
    ds = load_detection_dataset(root)
    assert ds.segments(0)[1].tolist() == [4, 4]
    config = TrainAugmentConfig(mixup_prob=0.0, mosaic_scale=(0.8, 1.2), degrees=30, shear=5, **SMALL)
    gaps = {True: [], False: []}
    for use_polygons in (True, False):
        train = TrainDataset(ds, config.replace(use_polygons=use_polygons), seed=5)
        for index in range(len(ds)):
            tensor, target = train[index]
            image = _as_hwc(tensor)
            for x1, y1, x2, y2 in target["boxes"].numpy():
                if min(x1, y1) <= 1 or max(x2, y2) >= 255:
                    continue
                crop = _colour_mask(image[int(y1):int(np.ceil(y2)), int(x1):int(np.ceil(x2))], 2, tolerance=100)
                ys, xs = np.nonzero(crop)
                extent = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]) + [int(x1), int(y1)] * 2
                gaps[use_polygons].append(np.abs(extent - np.array([x1, y1, x2, y2])).max())
    assert len(gaps[True]) >= 8 and max(gaps[True]) < 2.5  # polygon boxes: within interpolation of the pixels
    assert np.mean(gaps[False]) > np.mean(gaps[True]) + 2  # corner boxes of rotated diamonds are looser
