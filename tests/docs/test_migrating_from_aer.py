"""docs/migrating-from-aer.md: its examples run as written (one rank), and its option table is the options table."""

import re
from pathlib import Path

import pytest

from aer_mpi.qobj.options import HONOURED, IGNORED, OPTIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "migrating-from-aer.md"
TEXT = DOC.read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)
#: | `name` | `default` | category | what |
ROWS = dict(re.findall(r"^\| `(\w+)` \| `[^`]*` \| ([^|]+?) \|", TEXT, flags=re.M))


def test_the_doc_has_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_migration_example_runs(index):
    code = compile(BLOCKS[index], f"{DOC.name}[block {index}]", "exec")
    exec(code, {"__name__": f"migrating_{index}"})


def test_every_aer_option_is_in_the_table_with_its_category():
    try:
        from qiskit_aer import AerSimulator

        aer = set(AerSimulator._default_options().__dict__)
    except ImportError:
        aer = {name for name, row in OPTIONS.items() if row.aer}
    assert aer <= set(ROWS)
    words = {HONOURED: "honoured", IGNORED: "accepted, ignored"}
    for name in aer:
        row = OPTIONS.get(name)
        # a row another change adds (noise_model) is checked once it has an Aer category
        expected = "not yet" if row is None else words.get(row.category)
        if expected is not None:
            assert ROWS[name] == expected, name
