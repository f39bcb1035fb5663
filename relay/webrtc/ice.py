"""Which local addresses the server's ICE agents gather candidates on."""

from __future__ import annotations

import aioice.ice


def restrict_interfaces(addresses: list[str]) -> None:
    """Gather host candidates on exactly these addresses.

    aioice has no setting for this: it lists every interface except loopback. Loopback
    tests need 127.0.0.1 only, and a server with several interfaces should not offer
    ones customers cannot reach. aioice looks the function up at call time, so
    replacing it is the one hook there is; it is process-wide, like the ICE agents.
    """
    if not addresses:
        return
    chosen = list(addresses)

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses
