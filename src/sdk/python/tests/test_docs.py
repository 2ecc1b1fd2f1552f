"""Every ```python block of docs/sdk-python.md runs as a script against the
end-to-end orchestrator (CUMULUS_ORCHESTRATOR_URL points at it)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, List

import pytest

from bundle_helpers import PACKAGE_DIR, REPO_ROOT

DOC = REPO_ROOT / "docs/sdk-python.md"


def python_blocks() -> List[str]:
    return re.findall(r"^```python\n(.*?)^```$", DOC.read_text(), flags=re.S | re.M)


def test_the_guide_has_runnable_examples() -> None:
    assert len(python_blocks()) >= 6


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_doc_example_runs(orchestrator: Any, tmp_path: Path, index: int) -> None:
    code = python_blocks()[index]
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_DIR), CUMULUS_ORCHESTRATOR_URL=orchestrator.url)
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=str(tmp_path), env=env, capture_output=True, text=True,
        timeout=180, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, f"example {index} failed:\n{code}\n--- stderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.strip(), "every example prints something"
