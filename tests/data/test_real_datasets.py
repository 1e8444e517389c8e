"""The shared datasets (coco128, raccoon, bccd in COCO JSON) load with the counts their SOURCE.md states."""
import numpy as np
import pytest

from damo_pipeline.data import EvalDataset, TrainAugmentConfig, TrainDataset, load_detection_dataset

EXPECTED = {  # name: (train images, train boxes, val images, val boxes, classes)
    "coco128": (102, 778, 26, 151, 80),
    "raccoon": (160, 175, 40, 42, 1),
    "bccd": (291, 3847, 73, 1039, 3),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shared_dataset_counts(data_dir, name):
    train_images, train_boxes, val_images, val_boxes, classes = EXPECTED[name]
    train = load_detection_dataset(data_dir / name, "train")
    val = load_detection_dataset(data_dir / name, "val", class_names=train.class_names)
    assert (len(train), len(val), train.num_classes, val.num_classes) == (train_images, val_images, classes, classes)
    assert (train.report.boxes, val.report.boxes) == (train_boxes, val_boxes)
    assert train.report.clipped_boxes == train.report.degenerate_boxes == train.report.crowd_boxes == 0
    gt = val.to_coco_gt()
    assert len(gt.getImgIds()) == val_images and len(gt.getAnnIds()) == val_boxes
    assert sorted(gt.getCatIds()) == sorted(val.category_ids)
    image, target = EvalDataset(val, img_size=320)[0]
    assert image.shape == (3, 320, 320) and target["valid"] and len(target["boxes"]) > 0


def test_shared_class_lists(data_dir):
    coco = load_detection_dataset(data_dir / "coco128", "train")
    assert coco.class_names[0] == "person" and coco.class_names[-1] == "toothbrush"
    assert coco.category_ids[:3] == [1, 2, 3] and coco.category_ids[-1] == 90
    assert coco.report.images_without_boxes == 2
    val = load_detection_dataset(data_dir / "coco128", "val", class_names=coco.class_names)
    labels = np.concatenate([val.annotations(i)[1] for i in range(len(val))])
    assert {coco.class_names.index("toilet"), coco.class_names.index("tv")} <= set(labels.tolist())
    assert load_detection_dataset(data_dir / "bccd", "train").class_names == ["RBC", "WBC", "Platelets"]
    assert load_detection_dataset(data_dir / "raccoon", "train").class_names == ["raccoon"]


def test_shared_grayscale_images_are_found(data_dir):
    raccoon = load_detection_dataset(data_dir / "raccoon", "train")
    report = raccoon.scan_images(decode=False, progress=False)
    assert report.grayscale_images == 3 and report.unreadable_images == 0 and report.images_decoded == 160
    coco = load_detection_dataset(data_dir / "coco128", "train")
    index = [coco.image_info(i)["file_name"] for i in range(len(coco))].index("000000000086.jpg")
    image = coco.load_image(index)
    assert image.ndim == 3 and image.shape[2] == 3 and coco.report.grayscale_images == 1


def test_shared_training_samples(data_dir):
    train = TrainDataset(load_detection_dataset(data_dir / "bccd", "train"), TrainAugmentConfig.for_model("t"))
    for index in range(3):
        image, target = train[index]
        assert image.shape == (3, 640, 640) and target["boxes"].shape == (len(target["labels"]), 4)
        assert (target["labels"] < 3).all()
