import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from moderation.stt_config import SttConfig
from relay.calls.speech_service import SttService
from testkit.stand_in_hub import COMMIT, StandInHub, serving


@pytest.fixture
def hub_for_base(tiny_whisper: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandInHub]:
    """The stand-in hub serving the tiny random Whisper as "base"."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with serving(StandInHub.of_folders({"Systran/faster-whisper-base": tiny_whisper})) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        yield hub


async def test_missing_model_leaves_the_service_unavailable_with_the_reason(tmp_path: Path) -> None:
    service = SttService(SttConfig(model=str(tmp_path / "nowhere"), device="cpu"))
    assert service.state == "loading"
    await service.load()
    assert service.state == "unavailable" and service.engine is None
    assert "nowhere" in service.detail and "does not exist" in service.detail
    service.close()


async def test_with_download_never_a_missing_model_is_not_fetched(tmp_path: Path, hub_for_base: StandInHub) -> None:
    service = SttService(SttConfig(model="base", models_dir=str(tmp_path), device="cpu", download="never"))
    await service.load()
    assert service.state == "unavailable" and "callguard models pull base" in service.detail
    assert hub_for_base.requests == [] and not (tmp_path / "base").exists()
    service.close()


async def test_a_first_start_fetches_the_model_then_loads_it(tmp_path: Path, hub_for_base: StandInHub) -> None:
    service = SttService(SttConfig(model="base", models_dir=str(tmp_path), device="cpu"))
    seen: list[dict[str, str]] = []
    loading = asyncio.create_task(service.load())
    while not loading.done():
        seen.append(service.view())
        await asyncio.sleep(0.005)
    assert service.state == "ready" and service.engine is not None
    assert (tmp_path / "base" / "model.bin").is_file() and f"base@{COMMIT[:12]}" in service.detail
    fetching = [v["detail"] for v in seen if v["state"] == "fetching"]
    assert fetching and fetching[0].startswith("fetching speech model base: ")
    service.close()


async def test_a_hub_that_cannot_be_reached_names_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    service = SttService(SttConfig(model="base", models_dir=str(tmp_path), device="cpu"))
    await service.load()
    assert service.state == "unavailable"
    assert "callguard models pull base" in service.detail and str(tmp_path / "base") in service.detail
    service.close()


async def test_switched_off_and_ready(tiny_whisper: Path) -> None:
    off = SttService(SttConfig(enabled=False))
    await off.load()
    assert off.view() == {"state": "off", "detail": "transcription is switched off in the config (stt.enabled)"}
    ready = SttService(SttConfig(model=str(tiny_whisper), device="cpu", workers=1))
    await ready.load()
    assert ready.state == "ready" and ready.engine is not None and str(tiny_whisper) in ready.detail
    ready.close()
    off.close()
