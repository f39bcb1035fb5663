import asyncio

from relay.webrtc.forwarding import MAX_QUEUED, ForwardedTrack, PacketForwarder


class FakeClock:
    """Test double for the monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_packets_pass_unchanged_on_a_continuous_timeline() -> None:
    clock = FakeClock()
    forwarder = PacketForwarder(clock)
    track = ForwardedTrack(forwarder)
    for i in range(3):
        forwarder.push(5000 + i * 960, bytes([i]) * 10, source=1)
    packets = [await track.recv() for _ in range(3)]
    assert [p.pts for p in packets] == [0, 960, 1920]
    assert [bytes(p) for p in packets] == [bytes([i]) * 10 for i in range(3)]
    # A new connection restarts its timestamps; ours continue, moved on by the time since.
    clock.now += 2.0
    forwarder.push(0, b"x", source=2)
    forwarder.push(960, b"y", source=2)
    assert [(await track.recv()).pts for _ in range(2)] == [1920 + 96000, 1920 + 96960]


async def test_queue_is_bounded_and_a_new_track_starts_fresh() -> None:
    forwarder = PacketForwarder(FakeClock())
    for i in range(3 * MAX_QUEUED):
        forwarder.push(i * 960, b"p", source=1)
    assert forwarder.dropped == 2 * MAX_QUEUED
    track = ForwardedTrack(forwarder)  # a reconnected customer: stale packets are not sent
    waiting = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    forwarder.push(100 * 960, b"fresh", source=1)
    assert bytes(await asyncio.wait_for(waiting, 1.0)) == b"fresh"


async def test_a_packet_that_arrives_behind_a_later_one_is_not_sent() -> None:
    forwarder = PacketForwarder(FakeClock())
    track = ForwardedTrack(forwarder)
    for pts, payload in [(0, b"a"), (1920, b"c"), (960, b"b"), (1920, b"c"), (2880, b"d")]:
        forwarder.push(pts, payload, source=1)
    assert [bytes(await track.recv()) for _ in range(3)] == [b"a", b"c", b"d"]
    assert forwarder.late == 2 and forwarder.dropped == 0
