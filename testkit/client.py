"""A Python client for callguard: the HTTP API and a WebRTC peer that joins a call.

Used by the tests and the benchmark; also a worked example for third-party clients
(docs/API.md is the contract).
"""

from __future__ import annotations

import asyncio
import bisect
import time
from typing import Any

import aiohttp
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from relay.config import IceServer
from relay.media.audio_format import FRAME_S, RATE, frames_per_packet
from relay.media.opus import OpusVoiceEncoder
from relay.webrtc.peer import rtc_configuration
from relay.webrtc.sdp import answered_ptime_ms
from relay.webrtc.tracks import AudioSource, PacedTrack, to_mono


class ApiFailure(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


class ApiClient:
    def __init__(self, base_url: str, session: aiohttp.ClientSession, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.token = token

    async def request(self, method: str, path: str, body: Any = None, token: str | None = None) -> dict[str, Any]:
        headers = {}
        if (token := token or self.token) is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with self.session.request(method, self.base_url + path, json=body, headers=headers) as response:
            data = await response.json(content_type=None)
            if response.status >= 400:
                raise ApiFailure(response.status, data.get("error", "?"), data.get("message", ""))
            reply: dict[str, Any] = data
            return reply

    async def login(self, username: str, password: str) -> dict[str, Any]:
        data = await self.request("POST", "/api/login", {"username": username, "password": password})
        self.token = data["token"]
        return data

    async def create_call(self) -> dict[str, Any]:
        return await self.request("POST", "/api/calls", {})

    async def call(self, call_id: str) -> dict[str, Any]:
        return await self.request("GET", f"/api/calls/{call_id}")

    async def hangup(self, call_id: str) -> dict[str, Any]:
        return await self.request("POST", f"/api/calls/{call_id}/hangup", {})

    async def mute(self, call_id: str, start: float, end: float) -> dict[str, Any]:
        return await self.request("POST", f"/api/calls/{call_id}/mutes", {"start": start, "end": end})

    async def offer(self, call_id: str, role: str, sdp: str) -> str:
        data = await self.request("POST", f"/api/calls/{call_id}/offer", {"role": role, "sdp": sdp, "type": "offer"})
        return str(data["sdp"])


class Recorder:
    """Received audio with the monotonic arrival time of each frame, up to `max_s` seconds."""

    def __init__(self, max_s: float, rate: int = RATE) -> None:
        self.rate = rate
        self._samples = np.zeros(int(max_s * rate), dtype=np.int16)
        self.length = 0
        # (index of the frame's first sample, arrival time) per frame
        self.frames: list[tuple[int, float]] = []
        self._starts: list[int] = []

    def add(self, samples: np.ndarray, arrival: float) -> None:
        room = len(self._samples) - self.length
        if room <= 0:
            return
        samples = samples[:room]
        self._samples[self.length : self.length + len(samples)] = samples
        self.frames.append((self.length, arrival))
        self._starts.append(self.length)
        self.length += len(samples)

    @property
    def samples(self) -> np.ndarray:
        return self._samples[: self.length]

    def received_s(self, start: float, end: float) -> float:
        """Seconds of audio in the frames that arrived within [start, end] (frames of any length)."""
        ends = self._starts[1:] + [self.length]
        count = sum(e - s for (s, at), e in zip(self.frames, ends) if start <= at <= end)
        return count / self.rate

    def arrival_of(self, index: int) -> float:
        """Arrival time of sample `index`: its frame's arrival plus its offset in the frame."""
        k = bisect.bisect_right(self._starts, index) - 1
        start, arrival = self.frames[max(k, 0)]
        return arrival + (index - start) / self.rate


class CallPeer:
    """One side of a call driven from Python: sends `source`, records what it receives."""

    def __init__(
        self, source: AudioSource, recorder: Recorder | None = None, ice_servers: list[IceServer] | None = None
    ) -> None:
        self.pc = RTCPeerConnection(rtc_configuration(ice_servers or []))
        self.recorder = recorder
        self._source = source
        self.sent = PacedTrack(source)
        self.pc.addTrack(self.sent)
        self._connected = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", lambda track: self._tasks.append(asyncio.ensure_future(self._read(track))))
        self.pc.on("connectionstatechange", self._state_changed)

    async def join(self, api: ApiClient, call_id: str, role: str) -> None:
        # aiortc gathers every candidate inside setLocalDescription: the offer is complete.
        await self.pc.setLocalDescription(await self.pc.createOffer())
        answer = await api.offer(call_id, role, self.pc.localDescription.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        # As a browser does (libwebrtc sets its Opus frame length from the answer's ptime),
        # send packets of the length the server asked for; nothing has been sent yet.
        ptime_ms = answered_ptime_ms(answer)
        if ptime_ms is not None and ptime_ms != round(FRAME_S * 1000):
            frames = frames_per_packet(ptime_ms)
            self.sent = PacedTrack(self._source, encoder=OpusVoiceEncoder(frames=frames), frames_per_packet=frames)
            (sender,) = [s for s in self.pc.getSenders() if s.track is not None and s.track.kind == "audio"]
            sender.replaceTrack(self.sent)

    async def wait_connected(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.pc.close()

    async def _state_changed(self) -> None:
        if self.pc.connectionState == "connected":
            self._connected.set()

    async def _read(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if self.recorder is not None and track.kind == "audio":
                    assert isinstance(frame, AudioFrame)  # an audio track yields frames
                    self.recorder.add(to_mono(frame), time.monotonic())
        except MediaStreamError:
            pass
