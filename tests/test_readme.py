"""The README's runnable examples run, as written, against the test backend."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"<!-- readme-example: (\S+) -->\n```python\n(.*?)```", re.S)


def _examples() -> dict[str, str]:
    return dict(_BLOCK.findall(README.read_text(encoding="utf-8")))


def test_readme_has_examples() -> None:
    assert "quickstart" in _examples()


@pytest.mark.parametrize("name", sorted(_examples()))
def test_readme_example_runs(name: str, dynamodb_endpoint: str, tmp_path: Path) -> None:
    """Each example runs once per session (it creates fixed table names)."""
    script = tmp_path / f"{name}.py"
    script.write_text(_examples()[name], encoding="utf-8")
    env = {**os.environ, "DYNAMODB_ENDPOINT": dynamodb_endpoint}
    out = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    if name == "quickstart":
        assert "o#1 paid 2" in out.stdout
        assert "paid: 1" in out.stdout
