"""SADA: scale-aware box-level augmentation (``spec/training.md`` §3.5), optional, off by default.

One of five sub-policies is drawn per image; its colour op is applied to the whole image and blended back only
around some boxes through Gaussian masks whose spread depends on the box size, and its geometric op transforms some
box crops in place (hflip, rotate, shear, Gaussian-blended) or pastes a shifted copy with a new ground-truth box
(translate). Each op fires with probability p * iter_ratio, a linear ramp over the mosaic epochs.

Differences from the official code, all deliberate: the ramp advances per epoch (``epoch / sada_epochs``) instead of
per estimated worker iteration; randomness comes from the sample's generator; a translated copy's new box is the
shifted box clipped to the image, the same region the pasted pixels cover (the official box and paste can disagree
near the border). Images are float32 H x W x 3 RGB in 0..255 throughout.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Sequence, Tuple

import cv2
import numpy as np

MAX_LEVEL = 10.0
# (colour op, image probability, level), (geometric op, image probability, level): the decoded default policy.
SADA_POLICIES: Tuple[Tuple[Tuple[str, float, int], Tuple[str, float, int]], ...] = (
    (("Color", 0.4, 2), ("translateX", 0.4, 4)),
    (("Brightness", 0.2, 4), ("rotate", 0.4, 2)),
    (("Sharpness", 0.4, 2), ("shearX", 0.2, 6)),
    (("SolarizeAdd", 0.2, 2), ("hflip", 0.5, 1)),
    (("Color", 0.0, 8), ("translateY", 0.2, 8)),
)
SCALE_SPLITS = (2048.0, 10240.0, 51200.0)  # box areas (px^2) at an 800-pixel reference side
AREA_RATIOS = (7, 5, 1)  # colour ops: box-selection weights per size bucket, and indices into GAUSSIAN_RHO
PROB_RATIOS = (3, 3, 3)  # geometric ops: box-selection weights per size bucket
GAUSSIAN_RHO = (0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0)
GEOMETRIC_FILL = np.array([102, 115, 122], np.float32) / 255.0


# ----------------------------------------------------------------------------------------------- colour ops (0..1)
def _blend(image1: np.ndarray, image2: np.ndarray, factor: float) -> np.ndarray:
    if factor == 0.0:
        return image1
    if factor == 1.0:
        return image2
    out = image1 + factor * (image2 - image1)
    return out if 0.0 < factor < 1.0 else np.clip(out, 0.0, 1.0)


def _gray(image: np.ndarray) -> np.ndarray:
    gray = image[..., 0] * 0.2989 + image[..., 1] * 0.5870 + image[..., 2] * 0.1140
    return np.repeat(gray[..., None], 3, axis=2)


def _factor(level: float) -> float:
    return level / MAX_LEVEL * 1.8 + 0.1


def _color(image: np.ndarray, level: float) -> np.ndarray:
    return _blend(_gray(image), image, _factor(level))


def _contrast(image: np.ndarray, level: float) -> np.ndarray:
    return _blend(np.full_like(image, _gray(image).mean()), image, max(_factor(level), 1e-6))


def _brightness(image: np.ndarray, level: float) -> np.ndarray:
    return _blend(np.zeros_like(image), image, _factor(level))


def _sharpness(image: np.ndarray, level: float) -> np.ndarray:
    kernel = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13.0
    smooth = cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    return _blend(smooth, image, _factor(level))


def _solarize_add(image: np.ndarray, level: float) -> np.ndarray:
    added = np.clip(image + level / MAX_LEVEL * 0.4296875, 0.0, 1.0)
    return np.where(image <= 0.5, added, image)


def _autocontrast(image: np.ndarray, level: float) -> np.ndarray:
    low = image.min(axis=(0, 1), keepdims=True)
    high = image.max(axis=(0, 1), keepdims=True)
    span = np.where(high > low, high - low, 1.0)
    return np.where(high > low, np.clip((image - low) / span, 0.0, 1.0), image)


def _equalize(image: np.ndarray, level: float) -> np.ndarray:
    out = np.empty_like(image)
    for channel in range(3):
        values = image[..., channel] * 255.0
        histogram = np.histogram(values, bins=256, range=(0, 255))[0].astype(np.float64)
        nonzero = histogram[histogram != 0]
        step = (nonzero.sum() - nonzero[-1]) // 255 if len(nonzero) else 0
        if step == 0:
            out[..., channel] = image[..., channel]
            continue
        lut = np.clip(np.concatenate([[0.0], ((np.cumsum(histogram) + step // 2) // step)[:-1]]), 0, 255)
        out[..., channel] = lut[values.astype(np.int64).clip(0, 255)] / 255.0
    return out


COLOUR_OPS: Dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "AutoContrast": _autocontrast, "Equalize": _equalize, "SolarizeAdd": _solarize_add, "Color": _color,
    "Contrast": _contrast, "Brightness": _brightness, "Sharpness": _sharpness,
}
GEOMETRIC_OPS = ("hflip", "rotate", "shearX", "shearY", "translateX", "translateY")


# ----------------------------------------------------------------------------------------------- box selection
def box_sample_probs(boxes: np.ndarray, ratios: Sequence[float], splits: np.ndarray, box_prob: float) -> np.ndarray:
    """Selection probability per box: ``box_prob`` x the normalised ratio of its size bucket (0 for empty boxes)."""
    weights = np.asarray(ratios, np.float64) / np.sum(ratios)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    bucket = np.where(areas < splits[0], 0, np.where(areas < splits[1], 1, 2))
    return np.where(areas == 0, 0.0, box_prob * weights[bucket])


def gaussian_masks(height: int, width: int, boxes: np.ndarray, splits: np.ndarray) -> np.ndarray:
    """Sum of the colour ops' axis-aligned Gaussians over ``boxes``, clamped to [0, 1]: float32 [H, W].

    Each Gaussian is centred at (row y1 + floor(h/2), col x1 + floor(w/2)) with std (h/H) r along rows and
    (w/W) r along columns, r = sqrt(k H W / 2 pi), k set by the box's size bucket (training.md §3.5).
    """
    if len(boxes) == 0:
        return np.zeros((height, width), np.float32)
    x1, y1 = boxes[:, 0], boxes[:, 1]
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    area = np.maximum(h * w, 1e-6)
    rho = np.array([GAUSSIAN_RHO[i] for i in AREA_RATIOS])
    k = np.where(area < splits[0], rho[0] * splits[0] / area,
                 np.where(area < splits[1], rho[1] * (splits[0] + splits[1]) / 2.0 / area,
                          np.where(area < splits[2], rho[2] * splits[2] / area, rho[2])))
    r = np.sqrt(k * height * width / (2 * math.pi))
    std_rows, std_cols = np.maximum(h / height * r, 1e-6), np.maximum(w / width * r, 1e-6)
    rows = np.exp(-((np.arange(height)[None] - (y1 + np.floor(h / 2))[:, None]) ** 2) / (2 * std_rows[:, None] ** 2))
    cols = np.exp(-((np.arange(width)[None] - (x1 + np.floor(w / 2))[:, None]) ** 2) / (2 * std_cols[:, None] ** 2))
    return np.clip(rows.T @ cols, 0.0, 1.0).astype(np.float32)  # separable: sum_k rows_k (x) cols_k


def _crop_gaussian(height: int, width: int) -> np.ndarray:
    """Isotropic Gaussian over a crop: centre (h//2, w//2), std sqrt(h w / 2 pi); float32 [h, w, 1]."""
    std = math.sqrt(height * width / (2 * math.pi))
    rows = np.exp(-((np.arange(height) - height // 2) ** 2) / (2 * std ** 2))
    cols = np.exp(-((np.arange(width) - width // 2) ** 2) / (2 * std ** 2))
    return np.outer(rows, cols).astype(np.float32)[..., None]


def _affine_crop(crop: np.ndarray, angle: float, shear: Tuple[float, float]) -> np.ndarray:
    """Rotate/shear a crop about its centre (torchvision ``affine`` matrix), bilinear, fill (102, 115, 122)."""
    height, width = crop.shape[:2]
    rot, sx, sy = math.radians(angle), math.radians(shear[0]), math.radians(shear[1])
    a = math.cos(rot - sy) / math.cos(sy)
    b = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
    c = math.sin(rot - sy) / math.cos(sy)
    d = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
    cx, cy = width * 0.5, height * 0.5
    matrix = np.array([[a, b, cx - a * cx - b * cy], [c, d, cy - c * cx - d * cy]], np.float64)
    return cv2.warpAffine(crop, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=tuple(float(v) for v in GEOMETRIC_FILL))


def _geometric(image: np.ndarray, op: str, level: float, boxes: np.ndarray, labels: np.ndarray, selected: np.ndarray,
               rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    height, width = image.shape[:2]
    sign = -1.0 if rng.random() < 0.5 else 1.0
    angle = sign * level / MAX_LEVEL * 30 if op == "rotate" else 0.0
    shear = (sign * level / MAX_LEVEL * 15 if op == "shearX" else 0.0,
             sign * level / MAX_LEVEL * 15 if op == "shearY" else 0.0)
    shift = (sign * level / MAX_LEVEL * 120.0 if op == "translateX" else 0.0,
             sign * level / MAX_LEVEL * 120.0 if op == "translateY" else 0.0)
    dx, dy = int(shift[0]), int(shift[1])
    out = image.copy()
    new_boxes, new_labels = [], []
    for box, label in zip(boxes[selected], labels[selected]):
        x1, y1, x2, y2 = (int(v) for v in box)
        if x1 >= x2 or y1 >= y2:
            continue
        crop = image[y1:y2, x1:x2]
        if op == "hflip":
            crop = crop[:, ::-1]
        elif op in ("rotate", "shearX", "shearY"):
            crop = _affine_crop(np.ascontiguousarray(crop), angle, shear)
        # Paste (Gaussian-blended) at the crop's place, shifted for translate; keep the part inside the image.
        px1, py1, px2, py2 = max(x1 + dx, 0), max(y1 + dy, 0), min(x2 + dx, width), min(y2 + dy, height)
        if px1 >= px2 or py1 >= py2:
            continue
        part = crop[py1 - (y1 + dy):py2 - (y1 + dy), px1 - (x1 + dx):px2 - (x1 + dx)]
        weight = _crop_gaussian(py2 - py1, px2 - px1)
        out[py1:py2, px1:px2] = weight * part + (1.0 - weight) * out[py1:py2, px1:px2]
        if dx or dy:
            shifted = np.clip(box + np.array([dx, dy, dx, dy], np.float32), 0, [width, height, width, height])
            if shifted[2] - shifted[0] > 1 and shifted[3] - shifted[1] > 1:
                new_boxes.append(shifted)
                new_labels.append(label)
    if new_boxes:
        boxes = np.concatenate([boxes, np.stack(new_boxes).astype(np.float32)])
        labels = np.concatenate([labels, np.asarray(new_labels, np.int64)])
    return out, boxes, labels


def sada_augment(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                 iter_ratio: float, box_prob: float = 0.3,
                 policies: Sequence = SADA_POLICIES) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply one randomly drawn SADA sub-policy.

    Args:
        image: [H, W, 3] RGB, 0..255 (uint8 or float).
        boxes / labels: float32 [K, 4] xyxy in image pixels, int64 [K].
        rng: the sample's generator.
        iter_ratio: training progress in [0, 1]; each op fires with probability p x iter_ratio; > 1: no-op.
        box_prob: base probability of selecting a box.
        policies: sub-policies as ``((colour, p, level), (geometric, p, level))``.

    Returns:
        ``(image float32 [H, W, 3] 0..255, boxes, labels)``; translate ops append boxes.
    """
    result = image.astype(np.float32)
    if iter_ratio > 1 or len(policies) == 0:
        return result, boxes, labels
    height, width = image.shape[:2]
    (colour, colour_p, colour_level), (geometric, geometric_p, geometric_level) = \
        policies[int(rng.integers(0, len(policies)))]
    splits = np.asarray(SCALE_SPLITS) * (min(height, width) / 800.0)
    if rng.random() <= colour_p * iter_ratio:
        if colour not in COLOUR_OPS:
            raise ValueError(f"Unknown SADA colour op {colour!r}; choose one of {sorted(COLOUR_OPS)}.")
        selected = rng.random(len(boxes)) < box_sample_probs(boxes, AREA_RATIOS, splits, box_prob)
        if selected.any():
            base = result / 255.0
            mask = gaussian_masks(height, width, boxes[selected].astype(np.float64), splits)[..., None]
            result = (base * (1.0 - mask) + COLOUR_OPS[colour](base, colour_level) * mask) * 255.0
    if rng.random() <= geometric_p * iter_ratio:
        if geometric not in GEOMETRIC_OPS:
            raise ValueError(f"Unknown SADA geometric op {geometric!r}; choose one of {list(GEOMETRIC_OPS)}.")
        selected = rng.random(len(boxes)) < box_sample_probs(boxes, PROB_RATIOS, splits, box_prob)
        if selected.any():
            base, boxes, labels = _geometric(result / 255.0, geometric, geometric_level, boxes, labels, selected, rng)
            result = base * 255.0
    return result.astype(np.float32), boxes, labels
