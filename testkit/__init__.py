"""A kit for tests and benchmarks (API client, aiortc peers, a local server, delay probes). Not shipped in the wheel."""
