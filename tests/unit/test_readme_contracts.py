"""The README's event examples are the contracts' examples: each one must validate against its model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from shepherd.contracts import ANNOUNCEMENTS, COMMANDS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
EXAMPLE = re.compile(r"^#### `(?P<detail_type>[^`]+)`\n\n```json\n(?P<body>.*?)\n```", re.MULTILINE | re.DOTALL)
CONTRACTS = {contract.DETAIL_TYPE: contract for contract in (*COMMANDS, *ANNOUNCEMENTS)}
EXAMPLES = {match["detail_type"]: json.loads(match["body"]) for match in EXAMPLE.finditer(README)}


def test_every_contract_has_a_readme_example():
    assert sorted(EXAMPLES) == sorted(CONTRACTS)


@pytest.mark.parametrize("detail_type", sorted(EXAMPLES))
def test_the_readme_example_validates(detail_type):
    CONTRACTS[detail_type].model_validate(EXAMPLES[detail_type])
