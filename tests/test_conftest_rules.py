"""The ../shared rule of tests/conftest.py: skip locally, fail under CI=true."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Dict, Optional

import pytest

CONFTEST = Path(__file__).resolve().parent / "conftest.py"


def _load_conftest() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_conftest_under_test", CONFTEST)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, "skip"), ({"CI": "false"}, "skip"), ({"CI": "1"}, "skip"), ({"CI": "true"}, "fail")],
)
def test_shared_missing_action(env: Dict[str, str], expected: str) -> None:
    assert _load_conftest()._shared_missing_action(env) == expected


def _run_copy(tmp_path: Path, ci: Optional[str], with_shared: bool) -> subprocess.CompletedProcess:
    """Run pytest on a copy of conftest.py in tmp_path/repo, with or without tmp_path/shared."""
    tests = tmp_path / "repo" / "tests"
    tests.mkdir(parents=True)
    shutil.copy(CONFTEST, tests / "conftest.py")
    (tests / "test_uses_shared.py").write_text(
        "def test_needs_shared(shared_dir):\n    assert shared_dir.name == 'shared'\n"
    )
    if with_shared:
        (tmp_path / "shared").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tests)],
        cwd=tmp_path / "repo",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_shared_skips_outside_ci(tmp_path: Path) -> None:
    result = _run_copy(tmp_path, ci=None, with_shared=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "../shared (parity references and datasets) not found beside the repo" in result.stdout


def test_missing_shared_fails_under_ci(tmp_path: Path) -> None:
    result = _run_copy(tmp_path, ci="true", with_shared=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 error" in result.stdout
    assert "clone it there to run these tests" in result.stdout


def test_present_shared_is_returned(tmp_path: Path) -> None:
    result = _run_copy(tmp_path, ci="true", with_shared=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
