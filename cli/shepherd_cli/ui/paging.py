"""One page of a long list, and what the page's links need (the history is thousands of rows)."""

from __future__ import annotations

from typing import Any


def paginate(rows: list[Any], page: int, size: int, key: str = "rows") -> dict[str, Any]:
    """``rows`` cut to page ``page`` (from 1; one past the end shows the last page) under ``key``, with
    the page number, the page count and the total."""
    pages = max(1, -(-len(rows) // size))
    page = min(max(1, page), pages)
    start = (page - 1) * size
    return {key: rows[start : start + size], "page": page, "pages": pages, "total": len(rows), "page_size": size}


def page_number(value: str | None) -> int:
    """The ``?page=`` query parameter; anything but a positive number is the first page."""
    return int(value) if value is not None and value.isdigit() and int(value) > 0 else 1
