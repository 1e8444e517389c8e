"""COCO JSON, Pascal VOC and YOLO readers; one class list for every split; format detection; COCO ground truth."""
import json

import numpy as np
import pytest

from damo_pipeline.data import DATASET_FORMATS, detect_format, load_detection_dataset

TRAIN = [("a.png", 40, 60, [(0, (5, 5, 20, 30)), (2, (30, 10, 55, 35))]),
         ("b.png", 50, 50, [(1, (0, 0, 10, 10))]),
         ("c.png", 30, 30, [])]
VAL = [("v.png", 40, 40, [(2, (1, 2, 21, 22)), (1, (20, 20, 39, 39))])]


def test_coco_non_contiguous_category_ids(make_coco):
    root = make_coco({"train": TRAIN, "val": VAL})
    ds = load_detection_dataset(root, "train")
    assert ds.source_format == "coco" and len(ds) == 3
    assert ds.class_names == ["cat", "dog", "eel"] and ds.category_ids == [3, 7, 11]
    boxes, labels = ds.annotations(0)
    np.testing.assert_allclose(boxes, [[5, 5, 20, 30], [30, 10, 55, 35]])
    assert labels.tolist() == [0, 2] and boxes.dtype == np.float32 and labels.dtype == np.int64
    assert ds.image_info(1) == {"id": 20, "file_name": "b.png", "height": 50, "width": 50}
    assert ds.annotations(2)[0].shape == (0, 4)  # image without boxes is kept
    image = ds.load_image(0)
    assert image.shape == (40, 60, 3) and image.dtype == np.uint8
    assert tuple(image[10, 10]) == (255, 0, 0)  # RGB order: class 0 is red
    # The same split read from the JSON file directly.
    same = load_detection_dataset(root / "annotations" / "train.json")
    assert same.class_names == ds.class_names and len(same) == 3 and same.load_image(0) is not None


def test_coco_val_uses_train_mapping_with_other_order_and_subset(make_coco):
    root = make_coco({"train": TRAIN, "val": VAL},
                     category_order={"val": [2, 1, 0]})  # val lists eel, dog, cat
    train = load_detection_dataset(root, "train")
    val = load_detection_dataset(root, "val", class_names=train.class_names)
    assert val.class_names == train.class_names and val.category_ids == train.category_ids
    assert val.annotations(0)[1].tolist() == [2, 1]  # eel -> 2, dog -> 1 as in train
    # Val file declaring only a subset of the categories, with other ids: mapped by name.
    subset = json.loads((root / "annotations" / "val.json").read_text())
    subset["categories"] = [{"id": 1, "name": "eel"}, {"id": 2, "name": "dog"}]
    for ann in subset["annotations"]:
        ann["category_id"] = {11: 1, 7: 2}[ann["category_id"]]
    (root / "annotations" / "val.json").write_text(json.dumps(subset))
    val = load_detection_dataset(root, "val", class_names=train.class_names)
    assert val.annotations(0)[1].tolist() == [2, 1]
    assert val.category_ids[1:] == [2, 1] and val.category_ids[0] not in (1, 2)  # cat gets a fresh id


def test_coco_unknown_category_in_val_is_an_error(make_coco):
    root = make_coco({"train": TRAIN, "val": VAL})
    data = json.loads((root / "annotations" / "val.json").read_text())
    data["categories"].append({"id": 99, "name": "yak"})
    (root / "annotations" / "val.json").write_text(json.dumps(data))
    # Declared but unused: ignored.
    assert load_detection_dataset(root, "val", class_names=["cat", "dog", "eel"]).num_classes == 3
    data["annotations"][0]["category_id"] = 99
    (root / "annotations" / "val.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="yak"):
        load_detection_dataset(root, "val", class_names=["cat", "dog", "eel"])


def test_coco_errors_name_the_problem(make_coco, tmp_path):
    root = make_coco({"train": TRAIN})
    with pytest.raises(FileNotFoundError, match="split 'val'"):
        load_detection_dataset(root, "val", format="coco")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_detection_dataset(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="Unknown dataset format 'kitti'"):
        load_detection_dataset(root, format="kitti")
    bad = json.loads((root / "annotations" / "train.json").read_text())
    bad["annotations"][0]["category_id"] = 5
    (root / "annotations" / "train.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r"category ids \['5'\]"):
        load_detection_dataset(root)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="Cannot tell the dataset format"):
        load_detection_dataset(tmp_path / "empty")


def test_coco_instances_layout_and_roboflow_parent(tmp_path, make_coco):
    root = make_coco({"train": TRAIN}, root_name="c2")
    (root / "annotations" / "train.json").rename(root / "annotations" / "instances_train2017.json")
    (root / "images").rename(root / "train2017")
    assert len(load_detection_dataset(root, "train")) == 3
    # Roboflow: <split>/_annotations.coco.json beside the images, plus an unused parent category.
    rf = tmp_path / "rf" / "valid"
    rf.mkdir(parents=True)
    data = json.loads((root / "annotations" / "instances_train2017.json").read_text())
    data["categories"] = [{"id": 0, "name": "animals", "supercategory": "none"}] + [
        dict(c, supercategory="animals") for c in data["categories"]]
    (rf / "_annotations.coco.json").write_text(json.dumps(data))
    for image in (root / "train2017").iterdir():
        (rf / image.name).write_bytes(image.read_bytes())
    ds = load_detection_dataset(tmp_path / "rf", "val")
    assert ds.class_names == ["cat", "dog", "eel"] and ds.load_image(0) is not None


def test_voc(make_voc):
    root = make_voc({
        "train": [("img1", 40, 50, [("dog", (5, 5, 20, 30)), ("cat", (25, 5, 45, 35))]),
                  ("img2", 30, 30, None)],  # listed without an XML: a background image
        "val": [("img3", 40, 40, [("eel", (1, 1, 20, 20))])]})
    train = load_detection_dataset(root, "train")
    assert train.source_format == "voc"
    assert train.class_names == ["cat", "dog", "eel"]  # sorted over every XML, so val's 'eel' is included
    assert train.category_ids == [1, 2, 3]
    boxes, labels = train.annotations(0)
    np.testing.assert_allclose(boxes, [[5, 5, 20, 30], [25, 5, 45, 35]])  # taken as written, no -1
    assert labels.tolist() == [1, 0]
    assert len(train.annotations(1)[0]) == 0 and train.image_info(1)["height"] == 30  # size from the image
    val = load_detection_dataset(root, "val", class_names=train.class_names)
    assert val.annotations(0)[1].tolist() == [2]
    with pytest.raises(ValueError, match="'eel'"):
        load_detection_dataset(root, "val", class_names=["cat", "dog"])
    with pytest.raises(FileNotFoundError, match="ImageSets/Main"):
        load_detection_dataset(root, "test")


def test_voc_labels_file_fixes_the_order(make_voc):
    root = make_voc({"train": [("a", 30, 30, [("dog", (1, 1, 9, 9))])]}, labels_file=["dog", "cat"])
    ds = load_detection_dataset(root, "train")
    assert ds.class_names == ["dog", "cat"] and ds.annotations(0)[1].tolist() == [0]


def test_yolo(make_yolo):
    root = make_yolo({
        "train": [("a", 40, 80, ["1 0.5 0.5 0.5 0.25", "0 0.25 0.25 0.1 0.1"]),
                  ("b", 20, 20, None),  # no label file: background image
                  ("c", 50, 100, ["2 0.1 0.1 0.5 0.1 0.3 0.5"])],  # polygon label
        "val": [("d", 40, 40, ["2 0.5 0.5 0.5 0.5"])]},
        names={0: "cat", 1: "dog", 2: "eel"})
    ds = load_detection_dataset(root, "train")
    assert ds.source_format == "yolo" and ds.class_names == ["cat", "dog", "eel"] and ds.category_ids == [1, 2, 3]
    boxes, labels = ds.annotations(0)
    np.testing.assert_allclose(boxes, [[20, 15, 60, 25], [16, 8, 24, 12]], atol=1e-4)
    assert labels.tolist() == [1, 0]
    assert len(ds.annotations(1)[0]) == 0
    np.testing.assert_allclose(ds.annotations(2)[0], [[10, 5, 50, 25]], atol=1e-4)
    points, counts = ds.segments(2)
    assert counts.tolist() == [3] and points.shape == (3, 2)
    val = load_detection_dataset(root / "data.yaml", "val", class_names=["eel", "dog", "cat"])
    assert val.annotations(0)[1].tolist() == [0]  # mapped by name to the forced list
    # Ultralytics-style YAML: a 'path' that does not exist here, and names as a dict, splits as lists.
    (root / "data.yaml").write_text("path: ../datasets/elsewhere\ntrain: [train/images]\nval: val/images\n"
                                    "names:\n  0: cat\n  1: dog\n  2: eel\n")
    assert len(load_detection_dataset(root, "train")) == 3
    (root / "data.yaml").write_text("train: ../train/images\nval: ../val/images\nnc: 3\nnames: [cat, dog, eel]\n")
    assert len(load_detection_dataset(root, "val")) == 1  # Roboflow's '../' entries


def test_yolo_errors(make_yolo):
    root = make_yolo({"train": [("a", 20, 20, ["3 0.5 0.5 0.2 0.2"])]}, names=["cat", "dog"])
    with pytest.raises(ValueError, match=r"class indices \[3\]"):
        load_detection_dataset(root)
    (root / "train" / "labels" / "a.txt").write_text("0 0.5 0.5\n")
    with pytest.raises(ValueError, match="a.txt:1"):
        load_detection_dataset(root)
    with pytest.raises(ValueError, match="no entry for split 'val'"):
        load_detection_dataset(root, "val")


def test_detect_format(make_coco, make_voc, make_yolo):
    assert set(DATASET_FORMATS) >= {"coco", "voc", "yolo"}
    assert detect_format(make_coco({"train": TRAIN})) == "coco"
    assert detect_format(make_voc({"train": [("a", 20, 20, [("x", (1, 1, 5, 5))])]})) == "voc"
    assert detect_format(make_yolo({"train": [("a", 20, 20, None)]}, names=["x"])) == "yolo"


def test_to_coco_gt_matches_the_dataset(make_coco):
    crowd = {"image_id": 10, "category_id": 7, "bbox": [0, 0, 10, 10], "area": 100.0, "iscrowd": 1}
    root = make_coco({"train": TRAIN}, extra_annotations={"train": [crowd]})
    ds = load_detection_dataset(root)
    gt = ds.to_coco_gt()
    assert sorted(gt.getImgIds()) == [10, 20, 30]
    assert sorted(gt.getCatIds()) == [3, 7, 11]
    anns = gt.loadAnns(gt.getAnnIds(imgIds=[10]))
    assert sorted(a["category_id"] for a in anns) == [3, 7, 11]
    crowd_anns = [a for a in anns if a["iscrowd"]]
    assert len(crowd_anns) == 1 and crowd_anns[0]["bbox"] == [0.0, 0.0, 10.0, 10.0]
    assert 7 not in ds.annotations(0)[1].tolist() and len(ds.annotations(0)[0]) == 2  # crowd not trained on
    assert ds.report.crowd_boxes == 1
