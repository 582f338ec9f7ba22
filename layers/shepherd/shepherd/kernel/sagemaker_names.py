"""SageMaker's one rule for the names of models, endpoint configs, endpoints and production variants:
the pattern, and at most 63 characters (the pattern alone lets hyphens run on). Model names, endpoint
names in commands and every name Shepherd computes (`rollouts.naming`) are judged by it, so a name
accepted at the edge is one SageMaker accepts.
"""

import re
from typing import Annotated

from pydantic import StringConstraints

NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
MAX_NAME_LENGTH = 63
_NAME = re.compile(NAME_PATTERN)

# A name a command or a record carries: refused by validation unless SageMaker would accept it.
SageMakerName = Annotated[str, StringConstraints(max_length=MAX_NAME_LENGTH, pattern=NAME_PATTERN)]


def name_problem(name: str) -> str | None:
    """What is wrong with ``name`` as a SageMaker name, in words for the sender; None when it is valid."""
    if not _NAME.fullmatch(name):
        return f"must match {NAME_PATTERN} (SageMaker's name rule)"
    if len(name) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters (SageMaker's name rule)"
    return None


def is_valid_name(name: str) -> bool:
    """True when ``name`` is acceptable to SageMaker as a model, config, endpoint or variant name."""
    return name_problem(name) is None
