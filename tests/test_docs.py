"""Every runnable snippet of ``docs/*.md`` runs, as written, against the test backend.

A runnable snippet is a ```python block right after ``<!-- docs-example: NAME -->``. It
runs as a script in a subprocess with ``DYNAMODB_ENDPOINT`` set (and ``MOTO_ENDPOINT``,
moto's STS/KMS, for snippets that read it), must exit 0, and must print every line
listed in an ``<!-- docs-output: NAME -->`` block that follows it (a fenced block of
expected lines), so a snippet that silently does nothing fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dynamorm_async.testing import MotoServer

DOCS = Path(__file__).resolve().parent.parent / "docs"
GUIDES = (
    "entities",
    "repository",
    "batch",
    "transactions",
    "lambda",
    "partners",
    "idempotency",
    "encryption",
    "cost",
)
_SNIPPET = re.compile(r"<!-- docs-example: (\S+) -->\n```python\n(.*?)```", re.S)
_OUTPUT = re.compile(r"<!-- docs-output: (\S+) -->\n```\w*\n(.*?)```", re.S)


def _snippets() -> dict[str, tuple[str, list[str]]]:
    """``name -> (code, expected output lines)`` over every guide."""
    found: dict[str, tuple[str, list[str]]] = {}
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        outputs = {n: [ln for ln in body.splitlines() if ln] for n, body in _OUTPUT.findall(text)}
        for name, code in _SNIPPET.findall(text):
            assert name not in found, f"snippet {name} appears twice"
            found[name] = (code, outputs.get(name, []))
    return found


SNIPPETS = _snippets()


def test_every_guide_exists_and_has_a_runnable_snippet() -> None:
    for guide in GUIDES:
        text = (DOCS / f"{guide}.md").read_text(encoding="utf-8")
        names = [name for name, _ in _SNIPPET.findall(text)]
        assert names, f"docs/{guide}.md has no runnable snippet"
        assert all(SNIPPETS[n][1] for n in names), f"docs/{guide}.md: a snippet lacks output"


@pytest.fixture(scope="module")
def moto_endpoint(dynamodb_backend: str, dynamodb_endpoint: str) -> Iterator[str]:
    """moto (STS, KMS): the session server on the moto backend, else one for this module."""
    if dynamodb_backend == "moto":
        yield dynamodb_endpoint
        return
    with MotoServer() as moto:
        yield moto.endpoint_url


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_docs_snippet_runs(
    name: str, dynamodb_endpoint: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    code, expected = SNIPPETS[name]
    script = tmp_path / f"{name}.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "DYNAMODB_ENDPOINT": dynamodb_endpoint}
    if "MOTO_ENDPOINT" in code:
        env["MOTO_ENDPOINT"] = request.getfixturevalue("moto_endpoint")
    out = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    printed = out.stdout.splitlines()
    for line in expected:
        assert line in printed, f"{name}: expected {line!r} in output:\n{out.stdout}"
