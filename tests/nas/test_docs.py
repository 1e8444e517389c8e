"""The Python examples of docs/nas.md run as written, in order (real CPU timing at 320 px, in a temp folder)."""
import re
from pathlib import Path

import pytest
import torch

DOC = Path(__file__).resolve().parents[2] / "docs" / "nas.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


@pytest.mark.slow  # about 20 s on an idle 2-core CPU (layer timing, calibration, 2000 candidates, finalists)
def test_docs_examples_run_in_order(tmp_path, monkeypatch):
    assert len(BLOCKS) == 2
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # keeps the timing part short on a busy machine
    try:
        namespace = {"__name__": "__main__"}
        for number, block in enumerate(BLOCKS):
            exec(compile(block, f"{DOC.name}[{number}]", "exec"), namespace)
    finally:
        torch.set_num_threads(threads)
    for name in ("config.json", "structure.json", "pareto.json", "pareto.png", "report.md"):
        assert (tmp_path / "runs" / "my-nas" / name).is_file()
    assert (tmp_path / "runs" / "my-nas-fast.json").is_file() and (tmp_path / "runs" / "latency-cpu.json").is_file()
