"""The package boundaries the layout promises, checked in a fresh interpreter each.

- moderation/ takes PCM and text and gives words and decisions: it never loads relay/ or
  aiortc, so QA replay, offline evaluation and a remote inference tier can run it alone;
- the live server (relay/ without the command line's offline commands) never loads the
  offline tools;
- the test kit is not part of what ships.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from .conftest import ROOT

_LOADED = """
import importlib, json, pkgutil, sys
for name in {packages!r}:
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(getattr(package, "__path__", []), name + "."):
        importlib.import_module(info.name)
print(json.dumps(sorted(sys.modules)))
"""


def _modules_loaded_by(*packages: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", _LOADED.format(packages=list(packages))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


def _tops(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_every_moderation_module_loads_without_relay_or_aiortc() -> None:
    loaded = _tops(_modules_loaded_by("moderation"))
    assert "moderation" in loaded
    assert not loaded & {"relay", "aiortc", "aiohttp", "offline", "testkit"}


def test_the_live_server_never_loads_the_offline_tools() -> None:
    live = ("relay.media", "relay.webrtc", "relay.calls", "relay.web", "relay.records")
    loaded = _modules_loaded_by(*live) | _modules_loaded_by("relay.cli")
    assert "relay.web.app" in loaded
    assert not _tops(loaded) & {"offline", "testkit"}


def test_the_command_line_loads_the_web_app_and_media_stack_only_to_serve() -> None:
    # Every `callguard users ...` would otherwise wait over a second for aiortc and PyAV.
    loaded = _modules_loaded_by("relay.cli")
    assert "relay.cli" in loaded
    assert not _tops(loaded) & {"aiortc", "av", "aiohttp"} and "relay.web.app" not in loaded


def test_the_wheel_ships_pages_config_and_lists_but_not_the_test_kit(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=180,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("callguard-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in (
        "relay/default.toml",
        "relay/web/static/counselor.html",
        "relay/web/static/qa.js",
        "moderation/keyword_lists/profanity.txt",
        "moderation/keyword_lists/allow.txt",
        "moderation/keyword_lists/hate.txt",
        "moderation/text_model_data/model.json",
        "moderation/text_model_data/weights.npz",
        "moderation/text_model_data/MODEL_CARD.md",
        "offline/replay.py",
        "relay/media/delay_line.py",
    ):
        assert shipped in names, shipped
    assert not [n for n in names if n.startswith(("testkit/", "tests/"))]
