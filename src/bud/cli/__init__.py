"""The ``bud`` command line (typer + rich); ``main`` is the console script."""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    """Run the ``bud`` command line."""
    from bud.cli import app  # lazily: ``bud.cli.demo`` is imported by the server too

    app.main()
