"""Packaging for damo_pipeline.

This file must not import torch or the package itself: the version is parsed
from ``damo_pipeline/version.py`` as text, so ``pip install -e .`` works in a
fresh environment.
"""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent


def read_version() -> str:
    """Return ``__version__`` from damo_pipeline/version.py without importing it."""
    text = (HERE / "damo_pipeline" / "version.py").read_text(encoding="utf-8")
    match = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.MULTILINE)
    if match is None:
        raise RuntimeError("__version__ not found in damo_pipeline/version.py")
    return match.group(1)


ONNX_REQUIRES = ["onnx", "onnxruntime"]
# The test suite also covers ONNX export and the ONNX Runtime engine.
TEST_REQUIRES = ["pytest", "pytest-timeout"] + ONNX_REQUIRES

setup(
    name="damo_pipeline",
    version=read_version(),
    description="DAMO-YOLO object detectors made easy to use: model zoo, pipelines, training and export",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["damo_pipeline", "damo_pipeline.*", "hub_upload", "hub_upload.*"]),
    package_data={"damo_pipeline": ["models/structures/*.json", "hub/templates/*.md"]},
    python_requires=">=3.9",
    install_requires=[
        "torch>=2.1",
        "numpy",
        "pillow",
        "opencv-python-headless",
        "requests",
        "pycocotools",
        "huggingface_hub",
        "modelscope",
        "safetensors",
        "tqdm",
        "pyyaml",
        "jinja2",
        "filelock",
    ],
    extras_require={
        "test": TEST_REQUIRES,
        "onnx": ONNX_REQUIRES,
        "supervision": ["supervision"],
        "dev": TEST_REQUIRES,
    },
    entry_points={
        "console_scripts": [
            "damo-demo=damo_pipeline.demo:main",
            "damo-detect=damo_pipeline.cli.detect:main",
            "damo-export=damo_pipeline.export.cli:main",
            "damo-hub-upload=hub_upload.cli:main",
            "damo-nas=damo_pipeline.nas.recipe:main",
        ]
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
