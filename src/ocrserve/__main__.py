"""``python -m ocrserve``: the same as the ``ocrserve`` command."""

from __future__ import annotations

from ocrserve.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
