"""Field metadata shared by ``schema.py`` and ``actions.py``.

A field's metadata is its one-line description (``doc``) plus the numeric bounds the loader
enforces (``minimum``, ``maximum``), so the declaration is the single source for
validation, reference docs and CLI help.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["doc"]


def doc(text: str, **bounds: int) -> Mapping[str, object]:
    """Metadata for a dataclass field: its description and, optionally, numeric bounds."""
    return {"doc": text, **bounds}
