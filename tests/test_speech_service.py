from pathlib import Path

from moderation.stt_config import SttConfig
from relay.calls.speech_service import SttService


async def test_missing_model_leaves_the_service_unavailable_with_the_reason(tmp_path: Path) -> None:
    service = SttService(SttConfig(model=str(tmp_path / "nowhere"), device="cpu"))
    assert service.state == "loading"
    await service.load()
    assert service.state == "unavailable" and service.engine is None
    assert "nowhere" in service.detail and "does not exist" in service.detail
    service.close()


async def test_a_model_name_that_is_not_pulled_is_not_downloaded(tmp_path: Path) -> None:
    service = SttService(SttConfig(model="base", models_dir=str(tmp_path), device="cpu"))
    await service.load()
    assert service.state == "unavailable" and "callguard models pull base" in service.detail
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
