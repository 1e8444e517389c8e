#!/usr/bin/env bash
# Create the second virtual environment that runs ModelScope's own DAMO-YOLO as the latency baseline.
#
# Why a second venv: ModelScope's tinynas_detection code imports torchvision, and no PyPI torchvision
# imports beside the torch build of the project venv. This venv pairs torch and torchvision releases
# that belong together and installs the same modelscope release as the project venv, plus what its
# DAMO-YOLO pipeline needs at run time. benchmarks/modelscope_baseline.py runs under it, in a
# subprocess started by benchmarks/latency.py.
#
# Usage:
#   bash benchmarks/setup_modelscope_venv.sh            # creates benchmarks/.venv-modelscope
#   bash benchmarks/setup_modelscope_venv.sh --force    # reinstalls even if the stamp file is current
#   bash benchmarks/setup_modelscope_venv.sh --with-ultralytics   # adds ultralytics (latency.py's optional peer)
#   MODELSCOPE_VENV=/some/dir PYTHON=python3.11 bash benchmarks/setup_modelscope_venv.sh
#
# Idempotent: a stamp file inside the venv records the requirement list it was built from; when it
# matches, the script prints the venv's python and exits without touching anything.
# Size: about 5.5 GB (torch 2.14.1 is a CUDA build; it runs on the CPU as well).
set -euo pipefail

readonly script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly venv_dir="${MODELSCOPE_VENV:-${script_dir}/.venv-modelscope}"
readonly base_python="${PYTHON:-python3.11}"

# torch/torchvision: a matching pair (torchvision 0.29 belongs to torch 2.14); a CUDA build that also runs on the CPU.
# modelscope: the release in the project venv, so both sides run the same ModelScope code.
# The rest: what `pipeline(Tasks.image_object_detection, model=<local DAMO-YOLO folder>)` imports at run time,
# found by running benchmarks/modelscope_baseline.py until it built and ran: datasets (modelscope.pipelines
# imports MsDataset), simplejson, sortedcontainers and addict (ModelScope's Config,
# reading configuration.json), easydict (the model config), thop and timm
# (tinynas_detection), matplotlib (the pipeline's result drawing), opencv and pillow (image loading).
# Pinned to the versions this was checked with.
requirements=(
  "torch==2.14.1"
  "torchvision==0.29.1"
  "modelscope==1.40.2"
  "numpy==2.4.6"
  "opencv-python-headless==5.0.0.93"
  "pillow==13.0.0"
  "pyyaml==6.0.4"
  "addict==2.4.0"
  "easydict==1.14"
  "simplejson==4.3.0"
  "sortedcontainers==2.4.0"
  "datasets==5.2.0"
  "thop==0.1.1.post2209072238"
  "timm==1.0.31"
  "matplotlib==3.11.2"
)

force=0
for argument in "$@"; do
  case "${argument}" in
    --force) force=1 ;;
    --with-ultralytics) requirements+=("ultralytics==8.4.190") ;;
    -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup_modelscope_venv.sh: unknown argument '${argument}' (valid: --force, --with-ultralytics, --help)" >&2; exit 2 ;;
  esac
done

readonly stamp_file="${venv_dir}/.damo_pipeline_stamp"
readonly wanted_stamp="$(printf '%s\n' "${requirements[@]}")"

if [[ "${force}" -eq 0 && -f "${stamp_file}" && "$(cat "${stamp_file}")" == "${wanted_stamp}" ]]; then
  echo "ModelScope baseline venv is up to date: ${venv_dir}/bin/python"
  exit 0
fi

if ! command -v "${base_python}" >/dev/null 2>&1; then
  echo "setup_modelscope_venv.sh: '${base_python}' not found; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

if [[ ! -x "${venv_dir}/bin/python" ]]; then
  echo "Creating ${venv_dir} with ${base_python}"
  "${base_python}" -m venv "${venv_dir}"
fi

echo "Installing into ${venv_dir} (several minutes; torch alone is a few GB)"
"${venv_dir}/bin/python" -m pip install --quiet --upgrade pip
"${venv_dir}/bin/python" -m pip install --quiet "${requirements[@]}"

echo "Checking that torch, torchvision and modelscope import together"
"${venv_dir}/bin/python" - <<'PY'
import torch
import torchvision
import modelscope
from modelscope.pipelines import pipeline  # noqa: F401
from modelscope.utils.constant import Tasks  # noqa: F401
import modelscope.models.cv.tinynas_detection.tinynas_damoyolo  # noqa: F401  (the DAMO-YOLO model)
import modelscope.pipelines.cv.tinynas_detection_pipeline  # noqa: F401  (its pipeline)
import modelscope.preprocessors.image  # noqa: F401  (its preprocessor)
import modelscope.fileio.format.jsonplus  # noqa: F401  (reads configuration.json)
print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, modelscope {modelscope.__version__}")
PY

printf '%s' "${wanted_stamp}" > "${stamp_file}"
echo "ModelScope baseline venv ready: ${venv_dir}/bin/python"
