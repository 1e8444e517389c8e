"""Detection data: COCO JSON / Pascal VOC / YOLO datasets, the official training augmentation, evaluation inputs.

>>> from damo_pipeline.data import load_detection_dataset, TrainDataset, EvalDataset, TrainAugmentConfig
>>> train_ds = load_detection_dataset("path/to/data", split="train")              # doctest: +SKIP
>>> val_ds = load_detection_dataset("path/to/data", "val", class_names=train_ds.class_names)  # doctest: +SKIP
"""
from .augment_config import TrainAugmentConfig
from .dataset import DetectionDataset, ImageRecord, clean_image, load_detection_dataset
from .eval_dataset import EvalDataset, collate_detection
from .formats import DATASET_FORMATS, detect_format, register_format
from .image_io import decode_image, read_image_size
from .report import DataReport
from .train_dataset import TrainDataset

__all__ = [
    "DATASET_FORMATS", "DataReport", "DetectionDataset", "EvalDataset", "ImageRecord", "TrainAugmentConfig",
    "TrainDataset", "clean_image", "collate_detection", "decode_image", "detect_format", "load_detection_dataset",
    "read_image_size", "register_format",
]
