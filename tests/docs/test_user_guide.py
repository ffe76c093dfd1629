"""Every Python block of docs/user-guide.md runs as written (one rank)."""

import re
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "user-guide.md"
BLOCKS = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S)


def test_the_guide_has_examples():
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_user_guide_example_runs(index):
    code = compile(BLOCKS[index], f"{GUIDE.name}[block {index}]", "exec")
    exec(code, {"__name__": f"user_guide_{index}"})
