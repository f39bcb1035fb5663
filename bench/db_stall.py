#!/usr/bin/env python3
"""What a stalled PostgreSQL costs a call: one relay node on a throwaway PostgreSQL, M calls,
and the call log's tables locked (ACCESS EXCLUSIVE, from another session) for --stall s.

    python bench/db_stall.py --calls 2 --stall 10 --json

Prints, for the markers the customers sent before/during/after the stall: how many came
through of those sent, and the median and worst |delay - median| in ms (this process's
own aiortc peers: on a loaded machine they starve, and markers go missing in every phase);
the server's own late frames, lost and underrun seconds and delay p95 per call; the database
thread's backlog at its peak (queued writes, retries) and how long after the lock was
released it was empty; and the rows: stats events logged with a time inside the stall
(every call logs one every 5 s), against the number expected. Bounded in time; everything
is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testkit.local_postgres import prepare_postgres  # noqa: E402
from testkit.local_server import prepare_server  # noqa: E402

PASSWORD = "stall-password-not-secret"
TABLES = "calls, call_events, call_recordings, call_recording_sync, call_words, call_decisions"


def metric(text: str, name: str) -> float:
    return next((float(line.split()[1]) for line in text.splitlines() if line.startswith(name + " ")), 0.0)


async def drive(server: Any, url: str, args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp
    import psycopg

    from relay.webrtc.ice import restrict_interfaces
    from testkit.client import ApiClient, CallPeer, Recorder
    from testkit.probe import MarkerSource, delayed_overhead_s, find_markers

    restrict_interfaces(["127.0.0.1"])
    final: list[dict[str, Any]] = []
    total_s = args.before + args.stall + args.after
    async with aiohttp.ClientSession() as http:
        api = ApiClient(server.base_url, http)
        await api.login("bench", PASSWORD)
        calls = []
        for _ in range(args.calls):
            created = await api.create_call()
            source = MarkerSource(freq=600.0)
            customer = CallPeer(source, Recorder(total_s + 10))
            counselor = CallPeer(MarkerSource(freq=900.0), Recorder(total_s + 10))
            await customer.join(
                ApiClient(server.base_url, http, created["invite"]["token"]), created["call_id"], "customer"
            )
            await counselor.join(api, created["call_id"], "counselor")
            await asyncio.wait_for(asyncio.gather(customer.wait_connected(), counselor.wait_connected()), 30)
            calls.append((created["call_id"], source, customer, counselor))
        await asyncio.sleep(args.before)
        peak_queued = peak_retries = 0.0
        with psycopg.connect(url, autocommit=True) as holder:
            holder.execute("BEGIN")
            holder.execute(f"LOCK TABLE {TABLES} IN ACCESS EXCLUSIVE MODE")
            wall_from, mono_from = time.time(), time.monotonic()
            while time.monotonic() - mono_from < args.stall:
                await asyncio.sleep(0.5)
                async with http.get(f"{server.base_url}/metrics") as r:
                    text = await r.text()
                peak_queued = max(peak_queued, metric(text, "callguard_database_queued_writes"))
                peak_retries = max(peak_retries, metric(text, "callguard_database_write_retries_total"))
            holder.execute("COMMIT")
            wall_to, mono_to = time.time(), time.monotonic()
        drained_s = None
        while time.monotonic() - mono_to < args.after:
            async with http.get(f"{server.base_url}/metrics") as r:
                text = await r.text()
            if drained_s is None and metric(text, "callguard_database_queued_writes") == 0:
                drained_s = time.monotonic() - mono_to
            await asyncio.sleep(0.1)
        final = [(await api.call(call_id))["stats"] for call_id, *_ in calls]
        for call_id, _, customer, counselor in calls:
            await customer.close()
            await counselor.close()
            await api.hangup(call_id)

    phases: dict[str, list[float]] = {"before": [], "stall": [], "after": []}
    sent = dict.fromkeys(phases, 0)
    for _, source, _, counselor in calls:
        markers = find_markers(source, counselor.recorder, expected_delay_s=server.delay_s + delayed_overhead_s())
        for m in markers:
            at = source.send_wall(m.media_s)
            if at is not None:
                phases["before" if at < mono_from else "stall" if at < mono_to else "after"].append(m.delay_s)
        first = source.sent_walls[0]
        last = min(source.sent_walls[-1], mono_to + args.after - server.delay_s - 0.5)
        sent["before"] += int((mono_from - first) / source.period_s)
        sent["stall"] += int((mono_to - mono_from) / source.period_s)
        sent["after"] += max(0, int((last - mono_to) / source.period_s))
    median = statistics.median([d for v in phases.values() for d in v] or [0.0])
    out: dict[str, Any] = {"calls": args.calls, "stall_s": args.stall}
    for name, delays in phases.items():
        out[f"{name}_markers"] = f"{len(delays)}/{sent[name]}"
        out[f"{name}_delay_median_ms"] = round(statistics.median(delays) * 1000, 1) if delays else None
        out[f"{name}_delay_worst_ms"] = round(max(abs(d - median) for d in delays) * 1000, 1) if delays else None
    out["peak_queued_writes"] = peak_queued
    out["write_retries"] = peak_retries
    out["backlog_empty_after_s"] = None if drained_s is None else round(drained_s, 2)
    await asyncio.sleep(1.0)
    with psycopg.connect(url) as db:
        ids = [c[0] for c in calls]
        rows = db.execute(
            "SELECT COUNT(*) FROM call_events WHERE kind = 'stats' AND call_id = ANY(%s) AND at BETWEEN %s AND %s",
            (ids, wall_from, wall_to),
        ).fetchone()
    out["stats_rows_logged_in_stall"] = f"{rows[0] if rows else 0}/~{args.calls * int(args.stall / 5)}"
    # The server's own view of its playout (free of this process's own scheduling).
    for key in ("late_frames", "lost_s", "underrun_s", "delay_p95_s", "reanchors", "frames_in", "stretched_s"):
        out[f"server_{key}"] = [f[key] for f in final]
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="callguard-dbstall-") as tmp:
        pg = prepare_postgres(Path(tmp) / "pg")
        if pg is None:
            raise SystemExit("PostgreSQL is not installed (scripts/install-test-deps)")
        pg.start()
        server = None
        try:
            url = pg.database("stall")
            from relay.records.database import connect
            from relay.web.accounts import Accounts

            db = connect(Path(tmp), url)
            Accounts(db, 1024, 3600).add_user("bench", "counselor", PASSWORD)
            db.close()
            prepared = prepare_server(Path(tmp) / "node", extra=f'[database]\nurl = "{url}"\n')
            server = prepared.start()
            return asyncio.run(asyncio.wait_for(drive(server, url, args), 120 + args.stall))
        finally:
            if server is not None:
                server.stop()
            pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2)
    parser.add_argument("--stall", type=float, default=10.0, help="seconds the tables stay locked")
    parser.add_argument("--before", type=float, default=4.0)
    parser.add_argument("--after", type=float, default=6.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:32} {v}")


if __name__ == "__main__":
    main()
