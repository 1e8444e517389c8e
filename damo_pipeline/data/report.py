"""What the loader had to fix in a dataset: counts of clipped, dropped and converted items.

Annotation problems (clipped, degenerate and crowd boxes, images without boxes) are counted once, when the
dataset is parsed. Image problems (unreadable files, colour modes converted to RGB, EXIF rotations) are only
known once an image is decoded; they are recorded per image in a small shared-memory flag array, so decodes done
in DataLoader worker processes show up in the main process too, and each image counts once however many epochs
decode it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict
from ..config_dict import check_config_dict

# Per-image bit flags set by image decoding (see damo_pipeline.data.image_io).
FLAG_DECODED = 1
FLAG_UNREADABLE = 2
FLAG_GRAYSCALE = 4
FLAG_RGBA = 8
FLAG_CMYK = 16
FLAG_OTHER_MODE = 32
FLAG_EXIF_ROTATED = 64
FLAG_SIZE_MISMATCH = 128


@dataclass
class DataReport:
    """Counts of everything the loader fixed, dropped or converted in one split.

    Attributes:
        name: a label for the split (``raccoon/train``).
        images: images listed in the split.
        boxes: boxes kept for training (after clipping and dropping).
        classes: number of classes.
        clipped_boxes: boxes that reached outside their image by more than 0.01 px and were clipped.
        degenerate_boxes: boxes dropped because they had no area after clipping (x2 <= x1 or y2 <= y1, NaN).
        crowd_boxes: ``iscrowd=1`` annotations left out of training (still in the evaluation ground truth).
        images_without_boxes: images with no box left; they stay in the set as background samples.
        images_decoded: images decoded at least once so far (the image counts below cover only these).
        unreadable_images: files that are missing or could not be decoded; training skips them.
        grayscale_images / rgba_images / cmyk_images: images converted to RGB from L, RGBA/LA/PA and CMYK.
        other_mode_images: palette (P), 16-bit and float images converted to RGB.
        exif_rotated_images: images turned upright from their EXIF orientation tag.
        size_mismatch_images: images whose decoded size differs from the size the annotations record.
    """

    name: str = ""
    images: int = 0
    boxes: int = 0
    classes: int = 0
    clipped_boxes: int = 0
    degenerate_boxes: int = 0
    crowd_boxes: int = 0
    images_without_boxes: int = 0
    images_decoded: int = 0
    unreadable_images: int = 0
    grayscale_images: int = 0
    rgba_images: int = 0
    cmyk_images: int = 0
    other_mode_images: int = 0
    exif_rotated_images: int = 0
    size_mismatch_images: int = 0

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serialisable dict of every count."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "DataReport":
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError."""
        return cls(**check_config_dict(cls, data, "DataReport"))

    def summary(self) -> str:
        """One readable line, e.g. ``raccoon/train: 160 images, 175 boxes, 1 classes; fixed: 3 grayscale->RGB``."""
        head = f"{self.name or 'dataset'}: {self.images} images, {self.boxes} boxes, {self.classes} classes"
        fixes = []
        for count, text in (
            (self.clipped_boxes, "boxes clipped to the image"),
            (self.degenerate_boxes, "degenerate boxes dropped"),
            (self.crowd_boxes, "crowd boxes left out of training"),
            (self.images_without_boxes, "images without boxes (kept as background)"),
            (self.unreadable_images, "unreadable images skipped"),
            (self.grayscale_images, "grayscale->RGB"),
            (self.rgba_images, "RGBA->RGB"),
            (self.cmyk_images, "CMYK->RGB"),
            (self.other_mode_images, "palette/16-bit->RGB"),
            (self.exif_rotated_images, "EXIF-rotated"),
            (self.size_mismatch_images, "images whose size differs from the annotation file"),
        ):
            if count:
                fixes.append(f"{count} {text}")
        line = head + ("; " + ", ".join(fixes) if fixes else "; nothing to fix")
        if self.images_decoded < self.images:
            line += f" (image checks cover {self.images_decoded}/{self.images} images decoded so far)"
        return line
