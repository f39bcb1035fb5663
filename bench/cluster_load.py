#!/usr/bin/env python3
"""Cluster benchmark: N relay nodes on loopback sharing a PostgreSQL call log, M calls
spread over them, every pass transcribed by the Ray Serve inference tier.

    python bench/cluster_load.py --nodes 2 --calls 4 --seconds 30 --model tiny --json
    python bench/cluster_load.py --nodes 2 --calls 8 --model /tmp/whisper-base    # real weights

Starts a throwaway PostgreSQL (testkit/local_postgres.py), the tier (`callguard stt-tier`,
testkit/local_tier.py: a single-node Ray of its own, the model on CPU here), N relay
nodes (`callguard serve`, stt.backend = "ray", cluster.node = n0..), and M calls
round-robin over the nodes, both parties Python aiortc peers in this process sending the
marker tones of bench/relay_load.py (the tier transcribes them: the compute is real, the
text garbage). After the delay line fills it measures `--seconds`:

- calls, nodes, lost_calls (calls not active at the end of the window, or whose markers
  stopped), delay_error_p50_ms / _p99_ms (as in relay_load.py: |delay - D - overhead|);
- lag_p95_s: each call's transcription lag (moderation.lag_s, sampled once a second);
  undecided_pct: media played undecided / media played, over all calls (server stats);
  degraded_pct: samples where a call reported its moderation degraded;
- tier_batches, tier_items, tier_mean_batch, tier_max_batch, tier_dropped_late over the
  window; tier_passes_per_s;
- relay_cpu_pct_per_call (all relay nodes, % of one core), tier_cpu_pct (the tier's
  process tree), db_writes_per_call_s (PostgreSQL rows inserted + updated over the window,
  per call per second, from pg_stat_database).
Everything is bounded in time and removed at the end, also on error. A "size name"
(tiny, base, small) builds random weights of that size (tests/tiny_models.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from relay_load import CpuMeter, analyse_call, ms, percentile  # noqa: E402

from relay.config import WebRTCConfig  # noqa: E402
from testkit.local_postgres import prepare_postgres  # noqa: E402
from testkit.local_server import LocalServer, prepare_server, stop_process  # noqa: E402
from testkit.local_tier import LocalTier, prepare_tier  # noqa: E402

PASSWORD = "bench-password-not-secret"
CACHE = Path(os.environ.get("CALLGUARD_BENCH_CACHE", Path.home() / ".cache" / "callguard-bench"))
SIZES = ("tiny", "base", "small")
CONNECT_TIMEOUT_S = 40.0


def model_path(name: str) -> str:
    if name in SIZES:
        from tests import tiny_models

        return str(tiny_models.cached_whisper_ct2(CACHE, name, "int8"))
    return name


def start_node(tmp: Path, name: str, shared: Path, db_url: str, tier_url: str, args: argparse.Namespace) -> LocalServer:
    server = prepare_server(
        tmp / name,
        args.delay,
        # One counselor opens every call: let it hold them all (the product default is 3).
        extra=f"[calls]\nmax_concurrent = {max(32, args.calls)}\nmax_per_counselor = {max(3, args.calls)}\n"
        f'[database]\nurl = "{db_url}"\n'
        f'[cluster]\nnode = "{name}"\n[stt]\nbackend = "ray"\ntier_url = "{tier_url}"\n'
        f"tier_max_inflight = {max(32, args.calls)}\n"
        # Random weights transcribe the tones as random text: the checks would mute random
        # stretches and hide the markers. The passes (what the tier costs) run all the same.
        "[keywords]\nenabled = false\n[classifier]\nenabled = false\n",
    )
    text = server.config_path.read_text().replace(f'data_dir = "{server.data_dir}"', f'data_dir = "{shared}"')
    server.config_path.write_text(text)
    server.data_dir = shared
    return server.start()


async def drive(nodes: list[LocalServer], tier: LocalTier, pg_stat: Any, args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp

    from relay.webrtc.ice import restrict_interfaces
    from testkit.client import ApiClient, CallPeer, Recorder
    from testkit.probe import MarkerSource

    restrict_interfaces(["127.0.0.1"])
    record_s = CONNECT_TIMEOUT_S + args.delay + args.seconds + 30
    calls: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        apis = []
        for node in nodes:
            api = ApiClient(node.base_url, http)
            await api.login("bench", PASSWORD)
            apis.append(api)

        async def open_call(i: int) -> None:
            api = apis[i % len(apis)]
            created = await api.create_call()
            customer_source, counselor_source = MarkerSource(freq=600.0), MarkerSource(freq=900.0)
            c = {
                "call_id": created["call_id"],
                "api": api,
                "customer_source": customer_source,
                "counselor_source": counselor_source,
                "customer": CallPeer(customer_source, Recorder(record_s)),
                "counselor": CallPeer(counselor_source, Recorder(record_s)),
                "samples": [],
            }
            calls.append(c)
            token = created["invite"]["token"]
            await c["customer"].join(ApiClient(api.base_url, http, token), c["call_id"], "customer")
            await c["counselor"].join(api, c["call_id"], "counselor")
            await asyncio.gather(
                c["customer"].wait_connected(CONNECT_TIMEOUT_S), c["counselor"].wait_connected(CONNECT_TIMEOUT_S)
            )

        try:
            await asyncio.wait_for(asyncio.gather(*(open_call(i) for i in range(args.calls))), CONNECT_TIMEOUT_S + 10)
            await asyncio.sleep(args.delay + 2.0)
            meters = [CpuMeter(n.process.pid, children=True) for n in nodes if n.process]
            tier_meter = CpuMeter(tier.process.pid, children=True) if tier.process else None
            stats0 = await asyncio.to_thread(tier.get, "stats")
            writes0 = pg_stat()
            t0 = time.monotonic()
            cpu0 = [m.cpu_s() for m in meters]
            tcpu0 = tier_meter.cpu_s() if tier_meter else 0.0
            info0 = {c["call_id"]: (await c["api"].call(c["call_id"]))["stats"] for c in calls}
            while time.monotonic() < t0 + args.seconds:
                await asyncio.sleep(1.0)
                for c in calls:
                    try:
                        c["samples"].append((await c["api"].call(c["call_id"]))["moderation"])
                    except Exception as exc:  # noqa: BLE001 - a figure, not a reason to lose the run
                        c["samples"].append({"error": repr(exc)})
            t1 = time.monotonic()
            wall = t1 - t0
            relay_cpu = sum(m.cpu_s() - a for m, a in zip(meters, cpu0))
            tier_cpu = (tier_meter.cpu_s() - tcpu0) if tier_meter else 0.0
            stats1 = await asyncio.to_thread(tier.get, "stats")
            writes1 = pg_stat()
            final = {}
            for c in calls:
                try:
                    final[c["call_id"]] = await c["api"].call(c["call_id"])
                except Exception:  # noqa: BLE001
                    final[c["call_id"]] = {"state": "lost"}
        finally:
            for c in calls:
                for step in (c["api"].hangup(c["call_id"]), c["customer"].close(), c["counselor"].close()):
                    try:
                        await asyncio.wait_for(step, 10)
                    except Exception:  # noqa: BLE001
                        pass

    # The relay nodes run the default packet length of the delayed stream.
    figures = [analyse_call(c, args.delay, WebRTCConfig().delayed_ptime_ms, t0, t1) for c in calls]
    overheads = [d - args.delay for f in figures for d in f["forward"]["delays_s"]]
    overhead = percentile(overheads, 50)
    errors = [abs(x - overhead) for x in overheads] if overhead is not None else []
    lags = [float(s["lag_s"]) for c in calls for s in c["samples"] if "lag_s" in s]
    samples = [s for c in calls for s in c["samples"]]
    degraded = sum(1 for s in samples if s.get("state") != "ready")
    played = undecided = 0.0
    for c in calls:
        before, after = info0[c["call_id"]], final[c["call_id"]].get("stats", {})
        played += float(after.get("playout_media_s", 0) or 0) - float(before.get("playout_media_s", 0) or 0)
        undecided += float(after.get("undecided_s", 0) or 0) - float(before.get("undecided_s", 0) or 0)
    lost = sum(1 for c in calls if final[c["call_id"]].get("state") != "active")
    expected = sum(f["forward"]["expected"] for f in figures)
    found = sum(f["forward"]["found"] for f in figures)
    items = stats1["items"] - stats0["items"]
    batches = stats1["batches"] - stats0["batches"]
    return {
        "calls": args.calls,
        "nodes": len(nodes),
        "seconds": round(wall, 1),
        "delay_s": args.delay,
        "model": args.model,
        "delay_error_p50_ms": ms(percentile(errors, 50)),
        "delay_error_p99_ms": ms(percentile(errors, 99)),
        "transport_overhead_ms": ms(overhead),
        "lag_p95_s": round(percentile(lags, 95) or 0.0, 3) if lags else None,
        "undecided_pct": round(100.0 * undecided / played, 1) if played else None,
        "degraded_pct": round(100.0 * degraded / len(samples), 1) if samples else None,
        "lost_calls": lost,
        "markers": found,
        "markers_expected": expected,
        "final_states": sorted({str(f.get("state")) for f in final.values()}),
        "tier_batches": batches,
        "tier_items": items,
        "tier_mean_batch": round(items / batches, 2) if batches else None,
        "tier_max_batch_ever": stats1["max_batch_seen"],
        "tier_dropped_late": stats1["dropped_late"] - stats0["dropped_late"],
        "tier_passes_per_s": round(items / wall, 2),
        "tier_compute_s_per_pass": round((stats1["compute_s"] - stats0["compute_s"]) / items, 4) if items else None,
        "relay_cpu_pct_per_call": round(100.0 * relay_cpu / wall / args.calls, 2),
        "tier_cpu_pct": round(100.0 * tier_cpu / wall, 1),
        "db_writes_per_call_s": round((writes1 - writes0) / wall / args.calls, 2),
        "machine_cpus": os.cpu_count(),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="callguard-cluster-"))
    pg = prepare_postgres(tmp / "pg")
    if pg is None:
        raise SystemExit("PostgreSQL is not installed (scripts/install-test-deps installs it)")
    tier: LocalTier | None = None
    nodes: list[LocalServer] = []
    try:
        pg.start()
        import psycopg

        from relay.records.database import connect
        from relay.web.accounts import Accounts

        db = connect(tmp / "shared", pg.url)
        Accounts(db, 1024, 3600).add_user("bench", "counselor", PASSWORD)
        db.close()
        stat = psycopg.connect(pg.url, autocommit=True)

        def pg_stat() -> float:
            row = stat.execute(
                "SELECT tup_inserted + tup_updated FROM pg_stat_database WHERE datname = current_database()"
            ).fetchone()
            return float(row[0]) if row else 0.0

        tier_extra = f"batch_max = {args.batch_max}\nbatch_wait_s = {args.batch_wait_s}\n"
        tier = prepare_tier(tmp / "tier", model_path(args.model), tier_extra).start()
        nodes = [start_node(tmp, f"n{i}", tmp / "shared", pg.url, tier.url, args) for i in range(args.nodes)]
        result = asyncio.run(drive(nodes, tier, pg_stat, args))
        stat.close()
        return result
    finally:
        for node in nodes:
            stop_process(node.process)
        if tier is not None:
            tier.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--delay", type=float, default=1.5)
    parser.add_argument("--model", default="tiny", help="model folder, or tiny|base|small (random weights)")
    parser.add_argument("--batch-max", type=int, default=16)
    parser.add_argument("--batch-wait-s", type=float, default=0.01)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:28s} {value}")


if __name__ == "__main__":
    main()
