"""Strict, bounded JSON parsing with the standard library alone (no pydantic).

:mod:`fittorch.schemas` validates the JSON files of a run folder with pydantic models; this
module holds the part that needs no pydantic, so that a command which only lists runs
(``fittorch runs``) can parse ``run.json`` without paying pydantic's import and model building
(about 0.15 s of the 0.29 s that ``fittorch runs`` took, measured with ``python -X importtime``).
"""

from __future__ import annotations

import json

MAX_STR = 4096  # one name or text value in a JSON file fittorch reads
MAX_DEPTH = 64  # nesting of any JSON file fittorch reads


def _depth(obj, limit: int = MAX_DEPTH) -> int:
    stack, deepest = [(obj, 1)], 0
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if d > limit:
            return d
        if isinstance(node, dict):
            stack.extend((v, d + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, d + 1) for v in node)
    return deepest


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def loads(data: bytes | str, *, allow_nan: bool = False, max_depth: int = MAX_DEPTH):
    """Strict JSON: no NaN/Infinity (unless ``allow_nan``), nesting at most ``max_depth``. Raises ValueError."""
    try:
        obj = json.loads(data, **({} if allow_nan else {"parse_constant": _refuse_constant}))
    except RecursionError:
        raise ValueError(f"nested deeper than {max_depth} levels") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if _depth(obj, max_depth) > max_depth:
        raise ValueError(f"nested deeper than {max_depth} levels")
    return obj
