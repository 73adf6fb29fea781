#!/usr/bin/env python3
"""Write the synchronous SDK client from the asynchronous one: one source for both.

    scripts/unasync.py          # rewrite src/bud/client/_sync.py from _async.py
    scripts/unasync.py --check  # exit 1 when _sync.py is not what _async.py gives (CI)

The rewrite is textual: ``async def``/``async for``/``async with`` lose ``async``, ``await``
goes, and the names in ``NAMES`` become their synchronous twins (whole words only). The
module docstring is replaced, and the result is sorted and formatted with the project's ruff
settings, so the generated file passes ``scripts/check`` like any other. Anything that cannot
be said this way (the pagers, sleeping) lives in ``bud/client/_io.py``, written by hand.
"""

from __future__ import annotations

import argparse
import difflib
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "bud" / "client" / "_async.py"
TARGET = ROOT / "src" / "bud" / "client" / "_sync.py"

# Whole-word renames, async name -> sync name.
NAMES = {
    "AsyncBudClient": "BudClient",
    "AsyncPager": "Pager",
    "AsyncClient": "Client",
    "AsyncBaseTransport": "BaseTransport",
    "async_sleep": "sleep",
    "aclose": "close",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "asyncio": "synchronous",  # in prose only: the code imports no asyncio
}

DOCSTRING = '''"""The synchronous client, ``BudClient``: every resource and method of the SDK.

Generated from ``_async.py`` by ``scripts/unasync.py``: do not edit; change ``_async.py`` and
run the script again (``scripts/check`` fails while the two differ).
"""
'''

_KEYWORDS = re.compile(r"\basync\s+(?=def\b|for\b|with\b)|\bawait\s+")
_NAMES = re.compile(r"\b(" + "|".join(re.escape(name) for name in NAMES) + r")\b")


def unasync(source: str) -> str:
    """The synchronous module for an asynchronous one (before formatting)."""
    if not source.startswith('"""'):
        raise SystemExit(f"{SOURCE}: expected a module docstring first")
    body = source[source.index('"""', 3) + 3 :].lstrip("\n")
    body = _KEYWORDS.sub("", body)
    body = _NAMES.sub(lambda match: NAMES[match.group(1)], body)
    # "An synchronous client" reads wrong; the renames leave only this one article to fix.
    body = body.replace("An synchronous", "A synchronous")
    return DOCSTRING + "\n" + body


def _ruff(*args: str, code: str) -> str:
    command = [sys.executable, "-m", "ruff", *args, "--stdin-filename", str(TARGET), "-"]
    result = subprocess.run(command, input=code, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"ruff {' '.join(args)} failed on the generated code:\n{result.stderr}")
    return result.stdout


def generate() -> str:
    """The formatted text ``_sync.py`` must hold."""
    code = unasync(SOURCE.read_text(encoding="utf-8"))
    code = _ruff("check", "--fix", "--select", "I,F401", "--quiet", code=code)
    return _ruff("format", "--quiet", code=code)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report drift, write nothing")
    args = parser.parse_args()
    expected = generate()
    current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
    if args.check:
        if current == expected:
            return 0
        diff = difflib.unified_diff(
            current.splitlines(keepends=True),
            expected.splitlines(keepends=True),
            fromfile=f"{TARGET.relative_to(ROOT)} (as it is)",
            tofile=f"{TARGET.relative_to(ROOT)} (from _async.py)",
        )
        sys.stderr.writelines(diff)
        print(
            f"{TARGET.relative_to(ROOT)} differs from what {SOURCE.name} gives: "
            "edit _async.py, then run scripts/unasync.py",
            file=sys.stderr,
        )
        return 1
    if current != expected:
        TARGET.write_text(expected, encoding="utf-8")
        print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
