"""Real-data problems: colour modes, EXIF orientation, boxes outside the image, unreadable files, the report."""
import numpy as np
import pytest
import torch
from PIL import Image

from damo_pipeline.data import (DataReport, EvalDataset, TrainAugmentConfig, TrainDataset, collate_detection,
                                decode_image, load_detection_dataset)

RED_BOX = (0, (4, 4, 24, 16))


def _save_modes(folder):
    """One file per colour mode, each 40 x 60 with a red-ish rectangle."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = np.full((40, 60, 3), 60, np.uint8)
    rgb[4:16, 4:24] = (255, 0, 0)
    base = Image.fromarray(rgb)
    base.convert("L").save(folder / "gray.jpg", quality=95)
    rgba = np.dstack([rgb, np.full((40, 60), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    base.convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    base.convert("P").save(folder / "palette.png")
    Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257).save(folder / "deep.png")  # 16-bit PNG
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display = stored rotated 90 degrees clockwise
    base.save(folder / "exif.jpg", quality=95, exif=exif)
    (folder / "garbage.jpg").write_bytes(b"this is not an image")
    good = folder / "good.jpg"
    base.save(good, quality=95)
    noisy = folder / "noisy.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(noisy, quality=95)
    (folder / "truncated.jpg").write_bytes(noisy.read_bytes()[:len(noisy.read_bytes()) // 2])  # header intact
    noisy.unlink()
    return rgb


def test_decode_image_modes(tmp_path):
    rgb = _save_modes(tmp_path)
    for name, flag_name in (("gray.jpg", "GRAYSCALE"), ("rgba.png", "RGBA"), ("cmyk.jpg", "CMYK"),
                            ("palette.png", "OTHER_MODE"), ("deep.png", "OTHER_MODE")):
        image, flags = decode_image(tmp_path / name)
        assert image.shape == (40, 60, 3) and image.dtype == np.uint8, name
        from damo_pipeline.data import report
        assert flags & getattr(report, f"FLAG_{flag_name}"), name
    assert np.abs(decode_image(tmp_path / "rgba.png")[0].astype(int) - rgb).max() == 0
    assert np.abs(decode_image(tmp_path / "cmyk.jpg")[0].astype(int) - rgb).mean() < 3
    assert decode_image(tmp_path / "deep.png")[0][10, 10, 0] == 255  # 16-bit scaled to 8 bits
    gray = decode_image(tmp_path / "gray.jpg")[0]
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    rotated, flags = decode_image(tmp_path / "exif.jpg")
    assert rotated.shape == (60, 40, 3)  # upright: height and width exchanged
    expected = np.rot90(rgb, k=-1)  # 90 degrees clockwise
    assert np.abs(rotated.astype(int) - expected).mean() < 3
    for name in ("garbage.jpg", "truncated.jpg", "missing.jpg"):
        image, flags = decode_image(tmp_path / name)
        assert image is None, name


def _robust_coco(make_coco, tmp_path):
    """A COCO set whose images are the mode files above, with out-of-image, degenerate and crowd boxes."""
    rgb = _save_modes(tmp_path / "coco" / "images")
    names = ["gray.jpg", "rgba.png", "cmyk.jpg", "palette.png", "deep.png", "exif.jpg", "garbage.jpg",
             "truncated.jpg", "good.jpg", "missing.jpg"]
    images = [(name, 40, 60, [RED_BOX]) for name in names]
    images[5] = ("exif.jpg", 60, 40, [(0, (24, 4, 36, 24))])  # annotated upright, as labelling tools show it
    root = make_coco({"train": images}, categories=[(1, "thing")], write_images=False)
    extra = [
        {"image_id": 90, "category_id": 1, "bbox": [50, 30, 20, 20], "iscrowd": 0},   # partly outside: clipped
        {"image_id": 90, "category_id": 1, "bbox": [-5, -5, 10, 10], "iscrowd": 0},   # partly outside: clipped
        {"image_id": 90, "category_id": 1, "bbox": [70, 10, 5, 5], "iscrowd": 0},     # fully outside: dropped
        {"image_id": 90, "category_id": 1, "bbox": [10, 10, 0, 5], "iscrowd": 0},     # zero width: dropped
        {"image_id": 90, "category_id": 1, "bbox": [10, 10, -4, 5], "iscrowd": 0},    # negative width: dropped
        {"image_id": 90, "category_id": 1, "bbox": [10, 10, None, 5], "iscrowd": 0},  # not a number: dropped
        {"image_id": 90, "category_id": 1, "bbox": [1, 1, 30, 30], "iscrowd": 1},     # crowd: not trained on
    ]
    import json
    path = root / "annotations" / "train.json"
    data = json.loads(path.read_text())
    data["annotations"] += [dict(a, id=100 + i) for i, a in enumerate(extra)]
    data["images"].append({"id": 110, "file_name": "good.jpg", "height": 40, "width": 60})  # no boxes
    path.write_text(json.dumps(data))
    return root, rgb


def test_boxes_cleaned_and_counted(make_coco, tmp_path):
    root, _ = _robust_coco(make_coco, tmp_path)
    ds = load_detection_dataset(root)
    boxes, labels = ds.annotations(8)  # good.jpg, id 90
    np.testing.assert_allclose(boxes, [[4, 4, 24, 16], [50, 30, 60, 40], [0, 0, 5, 5]])
    report = ds.report
    assert (report.clipped_boxes, report.degenerate_boxes, report.crowd_boxes) == (2, 4, 1)
    assert report.images == 11 and report.images_without_boxes == 1 and report.boxes == 12
    assert report.images_decoded == 0 and "decoded so far" in report.summary()


def test_image_problems_reported_once_and_training_goes_on(make_coco, tmp_path):
    root, rgb = _robust_coco(make_coco, tmp_path)
    ds = load_detection_dataset(root)
    config = TrainAugmentConfig(img_size=64, mosaic_size=64, mixup_prob=0.0)
    train = TrainDataset(ds, config)
    train.set_mosaic(False)
    for _ in range(2):  # two epochs: each image still counts once
        for index in range(len(train)):
            image, target = train[index]
            assert image.shape == (3, 64, 64) and target["boxes"].shape[1] == 4
    report = ds.report
    assert report.unreadable_images == 3 and report.images_decoded == 11
    assert (report.grayscale_images, report.rgba_images, report.cmyk_images) == (1, 1, 1)
    assert report.other_mode_images == 2 and report.exif_rotated_images == 1 and report.size_mismatch_images == 0
    # An unreadable image is replaced by another readable sample.
    unreadable = [i for i in range(len(ds)) if ds.is_unreadable(i)]
    assert [ds.image_info(i)["file_name"] for i in unreadable] == ["garbage.jpg", "truncated.jpg", "missing.jpg"]
    _, target = train[unreadable[0]]
    assert target["image_id"] != ds.image_info(unreadable[0])["id"] and len(target["labels"]) >= 0
    # The EXIF-rotated image keeps its (upright) box on the red pixels.
    exif_index = [ds.image_info(i)["file_name"] for i in range(len(ds))].index("exif.jpg")
    upright = ds.load_image(exif_index)
    x1, y1, x2, y2 = ds.annotations(exif_index)[0][0].astype(int)
    assert upright[y1 + 2:y2 - 2, x1 + 2:x2 - 2, 0].min() > 200
    line = report.summary()
    for text in ("3 unreadable images skipped", "1 grayscale->RGB", "1 CMYK->RGB", "1 EXIF-rotated",
                 "2 boxes clipped", "4 degenerate boxes dropped", "1 crowd boxes"):
        assert text in line, (text, line)
    assert DataReport.from_dict(report.to_dict()) == report


def test_eval_flags_unreadable_and_counts_reach_the_main_process(make_coco, tmp_path):
    root, _ = _robust_coco(make_coco, tmp_path)
    ds = load_detection_dataset(root)
    loader = torch.utils.data.DataLoader(EvalDataset(ds, img_size=64), batch_size=4, num_workers=2,
                                         collate_fn=collate_detection)
    flags = {}
    for images, targets in loader:
        assert images.shape[1:] == (3, 64, 64)
        flags.update({t["image_id"]: t["valid"] for t in targets})
    assert sorted(i for i, valid in flags.items() if not valid) == [70, 80, 100]
    report = ds.report  # decoded in worker processes, visible here through shared memory
    assert report.unreadable_images == 3 and report.grayscale_images == 1 and report.images_decoded == 11


def test_dataset_with_no_readable_image_raises(make_coco):
    root = make_coco({"train": [("x.png", 20, 20, [RED_BOX])]}, write_images=False)
    (root / "images").mkdir()
    (root / "images" / "x.png").write_bytes(b"broken")
    train = TrainDataset(load_detection_dataset(root), TrainAugmentConfig(img_size=32, mosaic_size=32))
    with pytest.raises(OSError, match="No image"):
        train[0]


def test_scan_images_header_only(make_coco, tmp_path):
    root, _ = _robust_coco(make_coco, tmp_path)
    ds = load_detection_dataset(root)
    report = ds.scan_images(decode=False, progress=False)
    assert report.images_decoded == 11 and report.grayscale_images == 1 and report.exif_rotated_images == 1
    assert report.unreadable_images == 2  # garbage and missing; a truncated file needs a full decode
    assert ds.scan_images(progress=False).unreadable_images == 3


def test_yolo_sizes_follow_exif(make_yolo):
    root = make_yolo({"train": [("a", 40, 60, ["0 0.5 0.5 0.5 0.5"])]}, names=["x"])
    image_path = root / "train" / "images" / "a.png"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.open(image_path).convert("RGB").save(image_path.with_suffix(".jpg"), exif=exif)
    image_path.unlink()
    (root / "train" / "labels" / "a.txt").rename(root / "train" / "labels" / "a.txt")
    ds = load_detection_dataset(root)
    assert (ds.image_info(0)["height"], ds.image_info(0)["width"]) == (60, 40)
    np.testing.assert_allclose(ds.annotations(0)[0], [[10, 15, 30, 45]])
