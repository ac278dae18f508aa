"""The examples in the metric docstrings and in docs/metrics.md run as written."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = [
    "radioactive.metrics",
    "radioactive.metrics.overlap",
    "radioactive.metrics.surface",
    "radioactive.metrics.curves",
    "radioactive.metrics.instances",
    "radioactive.metrics.aggregate",
    "radioactive.metrics.timing",
    "radioactive.metrics.meta",
    "radioactive.report.bootstrap",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_docs_metrics_examples_run(capsys):
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, "docs/metrics.md has no Python example"
    namespace: dict = {}
    for code in blocks:
        exec(compile(code, "docs/metrics.md", "exec"), namespace)
