"""A small COCO-format dataset made of raccoon images (read in place through a symlink) for recipe tests."""
import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mini_raccoon(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``root/annotations/{train,val}.json`` with 8 and 4 raccoon images; ``root/images`` links to the originals."""
    source = data_dir / "raccoon"
    root = tmp_path_factory.mktemp("mini_raccoon")
    (root / "annotations").mkdir()
    (root / "images").symlink_to(source / "images", target_is_directory=True)
    for split, count in (("train", 8), ("val", 4)):
        data = json.loads((source / "annotations" / f"{split}.json").read_text())
        images = sorted(data["images"], key=lambda im: im["id"])[:count]
        ids = {im["id"] for im in images}
        data["images"] = images
        data["annotations"] = [a for a in data["annotations"] if a["image_id"] in ids]
        (root / "annotations" / f"{split}.json").write_text(json.dumps(data))
    return root
