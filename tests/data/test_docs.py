"""Every Python example in docs/data.md runs as written (from the repository root, with ../shared/data)."""
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "data.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_docs_example_runs(number, data_dir, monkeypatch):
    monkeypatch.chdir(DOC.parents[1])
    exec(compile(BLOCKS[number], f"{DOC.name}[{number}]", "exec"), {"__name__": "__main__"})
