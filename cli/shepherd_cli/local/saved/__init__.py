"""Local mode's saved state, one JSON document per AWS service (see `persistence.py`)."""
