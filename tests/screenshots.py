"""Where the browser tests write their screenshots, for a reviewer to look at without
running anything: $CALLGUARD_SCREENSHOTS, else /tmp/callguard-screenshots."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT = Path("/tmp/callguard-screenshots")


def screenshot_path(name: str) -> str:
    """The file for the screenshot `name` (e.g. "counselor-desktop-waiting.png"), its folder made."""
    folder = Path(os.environ.get("CALLGUARD_SCREENSHOTS") or DEFAULT)
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / name)
