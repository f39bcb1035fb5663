from relay.config import AuthConfig
from relay.web.sign_in_throttle import MAX_TRACKED, SignInThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


CONFIG = AuthConfig(account_free_failures=3, address_free_failures=10, backoff_base_s=1.0, backoff_max_s=8.0)


def test_backoff_is_capped_and_counts_down() -> None:
    clock = Clock()
    throttle = SignInThrottle(CONFIG, clock)
    for _ in range(8):
        throttle.failed("anna", "10.0.0.1")
    assert throttle.wait_s("anna", "10.0.0.1") == 8.0  # capped at backoff_max_s
    clock.now += 3.0
    assert throttle.wait_s("anna", "10.0.0.1") == 5.0


def test_the_sequence_of_waits() -> None:
    clock = Clock()
    throttle = SignInThrottle(CONFIG, clock)
    seen = []
    for _ in range(7):
        throttle.failed("anna", "10.0.0.1")
        seen.append(throttle.wait_s("anna", "10.0.0.1"))
    assert seen == [0.0, 0.0, 1.0, 2.0, 4.0, 8.0, 8.0]


def test_other_accounts_and_addresses_are_not_slowed() -> None:
    clock = Clock()
    throttle = SignInThrottle(CONFIG, clock)
    for _ in range(5):
        throttle.failed("anna", "10.0.0.1")
    assert throttle.wait_s("anna", "10.0.0.2") > 0  # the account, from anywhere
    assert throttle.wait_s("ben", "10.0.0.1") == 0  # the address has a larger allowance
    assert throttle.wait_s("ben", "10.0.0.2") == 0


def test_one_address_guessing_many_accounts_is_slowed() -> None:
    clock = Clock()
    throttle = SignInThrottle(CONFIG, clock)
    for i in range(11):
        throttle.failed(f"user{i}", "10.0.0.9")
    assert throttle.wait_s("someone-new", "10.0.0.9") == 2.0


def test_success_clears_and_quiet_forgets() -> None:
    clock = Clock()
    throttle = SignInThrottle(CONFIG, clock)
    for _ in range(5):
        throttle.failed("anna", "10.0.0.1")
    throttle.succeeded("anna", "10.0.0.1")
    assert throttle.wait_s("anna", "10.0.0.1") == 0
    for _ in range(5):
        throttle.failed("anna", "10.0.0.1")
    clock.now += 2 * CONFIG.backoff_max_s + 1
    assert throttle.wait_s("anna", "10.0.0.1") == 0
    throttle.failed("anna", "10.0.0.1")  # the count started afresh
    assert throttle.wait_s("anna", "10.0.0.1") == 0


def test_memory_is_bounded() -> None:
    throttle = SignInThrottle(CONFIG, Clock())
    for i in range(MAX_TRACKED + 50):
        throttle.failed(f"u{i}", f"a{i}")
    assert len(throttle._accounts._entries) == MAX_TRACKED
