"""No module in cxraug/ or plugins/ over 400 lines, no function over 80 (issue 36, item 4).

A module's size is its number of lines; a function's, from its ``def`` line to its last line
(decorators left out; its signature counts, so a command's options count too). Nested functions
and methods are functions. Parsed with ast, nothing imported.

``ALLOWED`` once listed what was over the limits in files other work was shrinking at the time;
it is empty now and may not grow: an entry may only shrink, and one back under its limit must
be removed.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULE_LINES = 400
FUNCTION_LINES = 80
# "path" or "path:function" -> an upper bound on its size (empty: everything is within the limits)
ALLOWED: dict[str, int] = {}


def sizes(root: Path = ROOT) -> dict[str, int]:
    """Lines of every module ("path") and function ("path:name") under cxraug/ and plugins/."""
    out: dict[str, int] = {}
    for path in sorted([*root.glob("cxraug/**/*.py"), *root.glob("plugins/**/*.py")]):
        rel = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8")
        out[rel] = len(text.splitlines())
        for node in ast.walk(ast.parse(text, filename=rel)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{rel}:{node.name}"
                out[name] = max(out.get(name, 0), (node.end_lineno or node.lineno) - node.lineno + 1)
    return out


def over_limits(found: dict[str, int], allowed: dict[str, int] = ALLOWED) -> list[str]:
    """Every module or function over its limit and not allowed (or grown past its allowance),
    and every allowance no longer needed."""
    problems = []
    for name, n in sorted(found.items()):
        limit = FUNCTION_LINES if ":" in name else MODULE_LINES
        if n <= limit:
            continue
        if name not in allowed:
            problems.append(f"{name}: {n} lines, over {limit}; split it by job")
        elif n > allowed[name]:
            problems.append(f"{name}: {n} lines, grew past its allowance of {allowed[name]}")
    for name in sorted(allowed):
        limit = FUNCTION_LINES if ":" in name else MODULE_LINES
        if found.get(name, 0) <= limit:
            problems.append(f"{name} is within {limit} lines now (or gone): remove it from ALLOWED")
    return problems


def test_no_module_or_function_is_over_its_limit() -> None:
    found = sizes()
    assert "cxraug/train.py:train" in found and "plugins/cxraug_cgan/__init__.py" in found, "the walk sees the code"
    assert over_limits(found) == []


def test_the_limits_are_checked() -> None:
    """Self-check on made-up sizes: the rule is not vacuous."""
    found = {"a.py": 401, "a.py:f": 81, "b.py": 400, "b.py:g": 80, "c.py:h": 90, "d.py": 300}
    allowed = {"c.py:h": 85, "d.py": 450}
    assert over_limits(found, allowed) == [
        "a.py: 401 lines, over 400; split it by job",
        "a.py:f: 81 lines, over 80; split it by job",
        "c.py:h: 90 lines, grew past its allowance of 85",
        "d.py is within 400 lines now (or gone): remove it from ALLOWED",
    ]
    src = "def f():\n    def g():\n        return 1\n\n    return g\n"
    (parsed,) = [n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.FunctionDef) and n.name == "f"]
    assert parsed.end_lineno - parsed.lineno + 1 == 5
