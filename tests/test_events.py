from relay.calls.events import EventBus


def test_staff_only_events_skip_customers() -> None:
    bus = EventBus()
    staff, customer = bus.subscribe(staff=True), bus.subscribe(staff=False)
    bus.publish({"type": "stats"}, staff_only=True)
    bus.publish({"type": "state"})
    assert [staff.queue.get_nowait()["type"] for _ in range(2)] == ["stats", "state"]
    assert customer.queue.get_nowait()["type"] == "state" and customer.queue.empty()


def test_slow_subscriber_misses_stats_but_never_state() -> None:
    bus = EventBus()
    slow = bus.subscribe(staff=True)
    for _ in range(100):
        bus.publish({"type": "stats"}, staff_only=True, droppable=True)
    assert slow.queue.full() and not slow.overflowed and len(bus) == 1
    bus.publish({"type": "state"})
    # Rather than lose a state change, the subscriber is cut off (it reconnects and
    # gets the current state first); its queue ends with the end marker.
    assert slow.overflowed and len(bus) == 0
    items = [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]
    assert items[-1] is None


def test_close_ends_every_subscription() -> None:
    bus = EventBus()
    subs = [bus.subscribe(staff=i % 2 == 0) for i in range(3)]
    bus.close()
    assert all(s.queue.get_nowait() is None for s in subs) and len(bus) == 0
