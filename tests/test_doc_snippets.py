"""Every ```python block in README.md and docs/*.md runs as written.

Each block is executed in a fresh namespace, then every `test_*` function it defines is called
(a snippet that shows a pytest gate is run as the gate). A block is skipped only when it imports
a framework that is not installed; an undefined name, or any other error, fails. Bash blocks
are not run.
"""

from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
FRAMEWORKS = {"torch", "jax", "jaxlib", "triton", "transformers", "labml_nn", "matplotlib"}
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def blocks(text: str) -> list[tuple[int, str]]:
    """`(line, code)` of each ```python block in a Markdown text."""
    return [(text[:m.start()].count("\n") + 1, m.group(1)) for m in FENCE.finditer(text)]


def run_block(code: str, where: str) -> None:
    """Execute `code` and call its `test_*` functions; skip when a framework is missing."""
    namespace: dict = {"__name__": f"snippet:{where}"}
    try:
        exec(compile(code, where, "exec"), namespace)  # noqa: S102 (our own docs)
        for name, value in list(namespace.items()):
            if name.startswith("test_") and callable(value):
                value()
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in FRAMEWORKS:
            raise
        pytest.skip(f"{where} needs {e.name}, which is not installed")


SNIPPETS = [(f"{path.relative_to(ROOT)}:{line}", code)
            for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
            for line, code in blocks(path.read_text())]


def test_the_docs_have_python_snippets():
    assert any(where.startswith("README.md") for where, _ in SNIPPETS)


@pytest.mark.parametrize("where, code", SNIPPETS, ids=[w for w, _ in SNIPPETS])
def test_snippet_runs_as_written(where, code):
    run_block(code, where)


def test_a_snippet_with_an_undefined_name_fails():
    (line, code), = blocks("text\n```python\nimport numpy as np\ny = np.sum(x_jax)\n```\n")
    assert line == 2
    with pytest.raises(NameError, match="x_jax"):
        run_block(code, "example.md:2")


def test_a_name_undefined_inside_a_test_function_fails():
    (_, code), = blocks("```python\ndef test_gate():\n    MyMasker()\n```\n")
    with pytest.raises(NameError, match="MyMasker"):
        run_block(code, "example.md:1")
