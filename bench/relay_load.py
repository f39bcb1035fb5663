#!/usr/bin/env python3
"""Load benchmark of the call relay: N concurrent calls, delay accuracy and server cost.

    python bench/relay_load.py --calls 16 --seconds 30 --json

Starts a real server (a subprocess with its own temporary data directory and config,
ICE on 127.0.0.1 only), opens N calls whose two parties are Python aiortc peers spread
over several client processes, and measures for `--seconds` of steady state (after every
call has connected and the delay line has filled):

- customer -> counselor delay of each 0.5 s marker (testkit/probe.py). Measured end to end
  it is D plus a fixed transport overhead (Opus, two aiortc jitter buffers of 4 packets,
  the network): `transport_overhead_ms` is the median of (delay - D) over every marker
  of every call. The delay error of a marker is its distance from that common D +
  overhead, so it shows both scheduling jitter within a call and offsets between calls;
  also reported: jitter around each call's own median, and drift over the window;
- counselor -> customer (undelayed) delay;
- the server process's CPU (cpu_times delta over the window, % of one core) and RSS;
  also per relayed call-second (`server_cpu_pct_per_relayed_call`: CPU over the audio the
  parties received in the window, both directions, `relayed_share` of what was due),
  which a starved server on a busy machine does not shrink;
- the client processes' CPU and event-loop lag, so that one can tell whether the clients
  kept up (a lagging client inflates every delay it measures).

Traffic goes to loopback only. Everything is bounded in time; the server and the client
processes are killed and the temporary directory removed at the end, also on error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # also in the spawned client processes, which re-import this file

from relay.config import WebRTCConfig  # noqa: E402
from testkit.local_server import prepare_server, stop_process  # noqa: E402

PASSWORD = "bench-password-not-secret"
MARKER_PERIOD_S = 0.5
# Expected fixed overhead of the delayed path (transport, Opus, the client's jitter buffer,
# which holds 4 packets: testkit/probe.py delayed_overhead_s) and of the live path;
# markers are paired within +-period/2 of these (see probe.py).
FORWARD_MARGIN_S = 0.02
RETURN_EXPECTED_S = 0.18
# A marker counts when it was sent so that it should have arrived this long before the end
# of the window (room for the overhead above plus its pairing tolerance).
ARRIVAL_MARGIN_S = 0.6
CONNECT_TIMEOUT_S = 40.0
CLIENT_START_TIMEOUT_S = 60.0
RESULT_TIMEOUT_S = 90.0


# ------------------------------------------------------------------------------ server side


class CpuMeter:
    """CPU seconds (user + system) of a process and, for the server, its children."""

    def __init__(self, pid: int, children: bool = False) -> None:
        import psutil

        self.process = psutil.Process(pid)
        self.children = children

    def _procs(self) -> list[Any]:
        procs = [self.process]
        if self.children:
            try:
                procs += self.process.children(recursive=True)
            except Exception:
                pass
        return procs

    def cpu_s(self) -> float:
        return sum(self.cpu_split_s())

    def cpu_split_s(self) -> tuple[float, float]:
        """(user, system) seconds: the system share is the kernel's (sockets, the timer waits)."""
        user = system = 0.0
        for p in self._procs():
            try:
                t = p.cpu_times()
                user += t.user
                system += t.system
            except Exception:
                pass
        return user, system

    def rss_mb(self) -> float:
        total = 0
        for p in self._procs():
            try:
                total += p.memory_info().rss
            except Exception:
                pass
        return total / 2**20


# ------------------------------------------------------------------------------ client side


def client_main(
    index: int,
    base_url: str,
    username: str,
    n_calls: int,
    delay_s: float,
    ptime_ms: int,
    record_s: float,
    deadline_s: float,
    nice: int,
    conn: Any,
    results: Any,
) -> None:
    """Entry point of one client process: `n_calls` calls, both parties of each, one event loop."""
    try:
        if nice:
            os.nice(nice)
        from relay.webrtc.ice import restrict_interfaces

        # Loopback only: these peers gather candidates on 127.0.0.1 and nothing else.
        restrict_interfaces(["127.0.0.1"])
        asyncio.run(_client(index, base_url, username, n_calls, delay_s, ptime_ms, record_s, deadline_s, conn, results))
    except BaseException:
        results.put({"kind": "error", "client": index, "error": traceback.format_exc()})


async def _client(
    index: int,
    base_url: str,
    username: str,
    n_calls: int,
    delay_s: float,
    ptime_ms: int,
    record_s: float,
    deadline_s: float,
    conn: Any,
    results: Any,
) -> None:
    import aiohttp

    from testkit.client import ApiClient, CallPeer, Recorder
    from testkit.probe import MarkerSource

    lags: list[tuple[float, float]] = []

    async def monitor_loop() -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append((t, time.monotonic() - t - 0.01))

    monitor = asyncio.ensure_future(monitor_loop())
    calls: list[dict[str, Any]] = []
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        api = ApiClient(base_url, http)
        try:
            await api.login(username, PASSWORD)

            async def open_call() -> dict[str, Any]:
                created = await api.create_call()
                call_id = created["call_id"]
                customer_source, counselor_source = MarkerSource(freq=600.0), MarkerSource(freq=900.0)
                c = {
                    "call_id": call_id,
                    "customer_source": customer_source,
                    "counselor_source": counselor_source,
                    "customer": CallPeer(customer_source, Recorder(record_s)),
                    "counselor": CallPeer(counselor_source, Recorder(record_s)),
                }
                calls.append(c)
                await c["customer"].join(ApiClient(base_url, http, created["invite"]["token"]), call_id, "customer")
                await c["counselor"].join(api, call_id, "counselor")
                await asyncio.gather(
                    c["customer"].wait_connected(CONNECT_TIMEOUT_S), c["counselor"].wait_connected(CONNECT_TIMEOUT_S)
                )
                return c

            await asyncio.wait_for(asyncio.gather(*(open_call() for _ in range(n_calls))), CONNECT_TIMEOUT_S + 10)
            results.put({"kind": "connected", "client": index, "calls": len(calls), "at": time.monotonic()})

            # Wait for the parent's stop (with the measurement window), bounded by our own deadline.
            window = None
            while window is None:
                if time.monotonic() > deadline_s:
                    raise TimeoutError("client deadline passed without a stop from the parent")
                if conn.poll():
                    try:
                        window = conn.recv()
                    except EOFError:
                        raise RuntimeError("parent went away") from None
                else:
                    await asyncio.sleep(0.1)
            if window.get("abort"):
                return
            start, end = window["start"], window["end"]

            server_stats = []
            for c in calls:
                try:
                    server_stats.append((await asyncio.wait_for(api.call(c["call_id"]), 10)).get("stats", {}))
                except Exception as exc:  # a figure, not a reason to lose the run
                    server_stats.append({"error": repr(exc)})
        finally:
            monitor.cancel()
            for c in calls:
                try:
                    await asyncio.wait_for(api.hangup(c["call_id"]), 10)
                except Exception:
                    pass
            for c in calls:
                for side in ("customer", "counselor"):
                    try:
                        await asyncio.wait_for(c[side].close(), 10)
                    except Exception:
                        pass

    per_call = [analyse_call(c, delay_s, ptime_ms, start, end) for c in calls]
    for figures, stats in zip(per_call, server_stats):
        figures["server_stats"] = stats
    window_lags = [lag for t, lag in lags if start <= t <= end]
    results.put({"kind": "result", "client": index, "calls": per_call, "loop_lag_s": window_lags})


def analyse_call(c: dict[str, Any], delay_s: float, ptime_ms: int, start: float, end: float) -> dict[str, Any]:
    """Markers of one call within the window [start, end] (monotonic seconds)."""
    from testkit.probe import delayed_overhead_s, find_markers

    overhead_s = delayed_overhead_s(ptime_ms) + FORWARD_MARGIN_S

    def path(source: Any, recorder: Any, expected_s: float, send_from: float, send_to: float) -> dict[str, Any]:
        # Notches sent within [send_from, send_to] should all have arrived inside the window.
        expected = []
        k = 0
        while (sent := source.send_wall(k * MARKER_PERIOD_S)) is not None:
            if send_from <= sent <= send_to:
                expected.append(k)
            k += 1
        wanted = set(expected)
        found: dict[int, float] = {}
        for m in find_markers(source, recorder, expected_s):
            k = round(m.media_s / MARKER_PERIOD_S)
            if k in wanted:
                found.setdefault(k, m.delay_s)
        delays = [found[k] for k in sorted(found)]
        return {"expected": len(expected), "found": len(found), "delays_s": delays, "marker_ks": sorted(found)}

    customer_source, counselor_source = c["customer_source"], c["counselor_source"]
    customer_rec, counselor_rec = c["customer"].recorder, c["counselor"].recorder
    forward = path(
        customer_source, counselor_rec, delay_s + overhead_s, start - delay_s, end - delay_s - ARRIVAL_MARGIN_S
    )
    back = path(counselor_source, customer_rec, RETURN_EXPECTED_S, start, end - ARRIVAL_MARGIN_S)

    # Sanity check free of the markers' 0.5 s ambiguity: when the customer's tone first
    # reached the counselor (the tone starts after a 10 ms notch at media time 0).
    onset = None
    samples = counselor_rec.samples
    loud = (abs(samples.astype("int32")) > 3000).nonzero()[0]
    if len(loud) and customer_source.sent_walls:
        onset = counselor_rec.arrival_of(int(loud[0])) - customer_source.send_wall(customer_source.notch_s)
    # Frames the paced sender skipped (its loop ran more than 0.2 s late), over the whole call.
    skips = 0
    for source in (customer_source, counselor_source):
        walls = source.sent_walls
        skips += sum(1 for a, b in zip(walls, walls[1:]) if b - a > 0.03)
    # Frames each party received within the window: what the server actually relayed.
    # In seconds, not frames: the delayed stream's packets (and so its frames) may be 60 ms.
    received = sum(rec.received_s(start, end) for rec in (customer_rec, counselor_rec))
    return {"forward": forward, "back": back, "onset_delay_s": onset, "send_skips": skips, "received_s": received}


# ------------------------------------------------------------------------------ the run


def machine_busy_s() -> float:
    import psutil

    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def start_profiler(path: str, pid: int, seconds: float) -> subprocess.Popen[bytes]:
    """py-spy over the server for the window: .svg flame graph, .json speedscope, else raw stacks."""
    exe = shutil.which("py-spy")
    if exe is None:
        raise RuntimeError("--profile needs py-spy (pip install py-spy)")
    fmt = {"svg": "flamegraph", "json": "speedscope"}.get(path.rsplit(".", 1)[-1], "raw")
    return subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, int(seconds))),
            "--rate",
            os.environ.get("PYSPY_RATE", "100"),
            "--nonblocking",
            "--threads",
            "--format",
            fmt,
            "--output",
            path,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000.0, 2)


def auto_client_procs(calls: int) -> int:
    # About 4 calls (8 peers) per client process, at most 8 processes.
    return max(1, min(8, math.ceil(calls / 4), calls))


def run(args: argparse.Namespace) -> dict[str, Any]:
    n = args.calls
    procs = args.client_procs or auto_client_procs(n)
    procs = max(1, min(procs, n))
    shares = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    warmup_s = args.delay + 2.0
    tmp = Path(tempfile.mkdtemp(prefix="callguard-bench-"))
    server: subprocess.Popen[bytes] | None = None
    profiler: subprocess.Popen[bytes] | None = None
    children: list[Any] = []
    pipes: list[Any] = []
    log_path = tmp / "server.log"
    try:
        # Each client process signs in as one counselor holding its share of the calls: the
        # bench's server lets one counselor hold that many (the product default is 3).
        local = prepare_server(
            tmp,
            args.delay,
            # (under [webrtc], where `extra` goes)
            extra=f"delayed_ptime_ms = {args.delayed_ptime_ms}\n"
            f"[calls]\nmax_concurrent = {max(32, n)}\nmax_per_counselor = {max(shares)}\n"
            f"connect_timeout_s = {CONNECT_TIMEOUT_S}\n",
        )
        base_url = local.base_url
        users = [f"bench{i}" for i in range(procs)]
        for user in users:
            local.add_user(user, "counselor", PASSWORD)
        server = local.start().process
        assert server is not None
        server_meter = CpuMeter(server.pid, children=True)

        # Idle figures: the started server with no call.
        time.sleep(1.0)
        idle_cpu0, idle_t0 = server_meter.cpu_s(), time.monotonic()
        time.sleep(2.0)
        idle_cpu_pct = 100.0 * (server_meter.cpu_s() - idle_cpu0) / (time.monotonic() - idle_t0)
        rss_idle = server_meter.rss_mb()

        ctx = mp.get_context("spawn")
        results = ctx.Queue()
        record_s = CLIENT_START_TIMEOUT_S + CONNECT_TIMEOUT_S + warmup_s + args.seconds + 20
        deadline = time.monotonic() + CLIENT_START_TIMEOUT_S + CONNECT_TIMEOUT_S + warmup_s + args.seconds + 120
        for i, share in enumerate(shares):
            parent_end, child_end = ctx.Pipe()
            p = ctx.Process(
                target=client_main,
                daemon=True,
                args=(
                    i,
                    base_url,
                    users[i],
                    share,
                    args.delay,
                    args.delayed_ptime_ms,
                    record_s,
                    deadline,
                    args.client_nice,
                    child_end,
                    results,
                ),
            )
            p.start()
            child_end.close()
            children.append(p)
            pipes.append(parent_end)

        connected = 0
        wait_until = time.monotonic() + CLIENT_START_TIMEOUT_S + CONNECT_TIMEOUT_S + 15
        reported = 0
        while reported < procs:
            left = wait_until - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"only {reported} of {procs} client processes connected their calls in time")
            try:
                msg = results.get(timeout=min(left, 1.0))
            except Exception:
                dead = [p for p in children if not p.is_alive()]
                if dead:
                    raise RuntimeError(
                        f"client process {children.index(dead[0])} died (exit {dead[0].exitcode})"
                    ) from None
                continue
            if msg["kind"] == "error":
                raise RuntimeError(f"client {msg['client']} failed:\n{msg['error']}")
            reported += 1
            connected += msg["calls"]

        time.sleep(warmup_s)

        client_meters = [CpuMeter(p.pid) for p in children]
        profiler = start_profiler(args.profile, server.pid, args.seconds) if args.profile else None
        t0 = time.monotonic()
        machine0 = machine_busy_s()
        user0, sys0 = server_meter.cpu_split_s()
        cpu0 = user0 + sys0
        ccpu0 = [m.cpu_s() for m in client_meters]
        rss_samples = []
        while time.monotonic() < t0 + args.seconds:
            time.sleep(min(1.0, max(0.0, t0 + args.seconds - time.monotonic())))
            rss_samples.append(server_meter.rss_mb())
        t1 = time.monotonic()
        user1, sys1 = server_meter.cpu_split_s()
        cpu1 = user1 + sys1
        ccpu1 = [m.cpu_s() for m in client_meters]
        machine1 = machine_busy_s()
        if profiler is not None:
            try:
                profiler.wait(timeout=30)
            except subprocess.TimeoutExpired:
                stop_process(profiler)
        wall = t1 - t0
        for pipe in pipes:
            pipe.send({"start": t0, "end": t1})

        per_client: dict[int, dict[str, Any]] = {}
        wait_until = time.monotonic() + RESULT_TIMEOUT_S
        while len(per_client) < procs:
            left = wait_until - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"only {len(per_client)} of {procs} client processes returned results")
            try:
                msg = results.get(timeout=min(left, 1.0))
            except Exception:
                continue
            if msg["kind"] == "error":
                raise RuntimeError(f"client {msg['client']} failed:\n{msg['error']}")
            if msg["kind"] == "result":
                per_client[msg["client"]] = msg
    finally:
        for pipe in pipes:
            try:
                pipe.send({"abort": True})
            except Exception:
                pass
        for p in children:
            p.join(timeout=20)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
        stop_process(profiler)
        stop_process(server)
        server_log = log_path.read_text(errors="replace") if log_path.exists() else ""
        for line in [ln for ln in server_log.splitlines() if " ERROR " in ln or "Traceback" in ln][:5]:
            print("server log:", line[:300], file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)

    calls = [c for r in per_client.values() for c in r["calls"]]
    if args.dump:
        Path(args.dump).write_text(json.dumps({"window": [t0, t1], "calls": calls}))
    overheads, jitter, drifts, back = [], [], [], []
    for c in calls:
        d = c["forward"]["delays_s"]
        overheads += [x - args.delay for x in d]
        if d:
            med = percentile(d, 50)
            jitter += [abs(x - med) for x in d]  # type: ignore[operator]
        if len(d) >= 20:
            drifts.append(sum(d[-10:]) / 10 - sum(d[:10]) / 10)
        back += c["back"]["delays_s"]
    overhead = percentile(overheads, 50)
    errors = [abs(x - overhead) for x in overheads] if overhead is not None else []
    lags = [lag for r in per_client.values() for lag in r["loop_lag_s"]]
    fexp = sum(c["forward"]["expected"] for c in calls)
    ffound = sum(c["forward"]["found"] for c in calls)
    bexp = sum(c["back"]["expected"] for c in calls)
    bfound = sum(c["back"]["found"] for c in calls)
    onsets = [c["onset_delay_s"] for c in calls if c["onset_delay_s"] is not None]
    stats = [c["server_stats"] for c in calls]

    def stat_sum(key: str) -> float:
        return round(sum(float(s.get(key) or 0) for s in stats), 4)

    server_cpu_total = 100.0 * (cpu1 - cpu0) / wall
    # Call-seconds of audio relayed (both directions) in the window. A starved server
    # relays less and spends less, so its CPU per call shrinks with it; per relayed
    # call-second it does not, which keeps runs on a busy machine comparable.
    relayed_call_s = sum(c["received_s"] for c in calls) / 2
    client_cpu = [100.0 * (b - a) / wall for a, b in zip(ccpu0, ccpu1)]
    machine_busy = 100.0 * (machine1 - machine0) / wall
    rss_steady = rss_samples[-1] if rss_samples else rss_idle
    drift = max(drifts, key=abs) if drifts else None
    lost_markers = (fexp - ffound) + (bexp - bfound)
    return {
        "calls": n,
        "calls_connected": connected,
        "seconds": round(wall, 2),
        "delay_s": args.delay,
        "delayed_ptime_ms": args.delayed_ptime_ms,
        "delay_error_p50_ms": ms(percentile(errors, 50)),
        "delay_error_p99_ms": ms(percentile(errors, 99)),
        "delay_error_max_ms": ms(max(errors) if errors else None),
        "transport_overhead_ms": ms(overhead),
        "delay_jitter_p99_ms": ms(percentile(jitter, 99)),
        "delay_jitter_max_ms": ms(max(jitter) if jitter else None),
        "drift_ms": ms(drift),
        "onset_delay_p50_ms": ms(percentile(onsets, 50)),
        "return_delay_p50_ms": ms(percentile(back, 50)),
        "return_delay_p99_ms": ms(percentile(back, 99)),
        "markers": ffound,
        "markers_expected": fexp,
        "return_markers": bfound,
        "return_markers_expected": bexp,
        "lost_markers": lost_markers,
        "server_cpu_pct_total": round(server_cpu_total, 2),
        "server_cpu_pct_per_call": round(server_cpu_total / n, 3),
        "server_cpu_system_share": round((sys1 - sys0) / (cpu1 - cpu0), 3) if cpu1 > cpu0 else None,
        "relayed_share": round(relayed_call_s / (n * wall), 3),
        "server_cpu_pct_per_relayed_call": round(100.0 * (cpu1 - cpu0) / relayed_call_s, 3) if relayed_call_s else None,
        "server_cpu_pct_idle": round(idle_cpu_pct, 2),
        "server_rss_mb_idle": round(rss_idle, 1),
        "server_rss_mb_steady": round(rss_steady, 1),
        "server_rss_mb_per_call": round((rss_steady - rss_idle) / n, 2),
        "server_late_frames": stat_sum("late_frames"),
        "server_lost_s": stat_sum("lost_s"),
        "server_underrun_s": stat_sum("underrun_s"),
        "server_reanchors": stat_sum("reanchors"),
        "client_procs": procs,
        "client_cpu_pct_total": round(sum(client_cpu), 2),
        "client_cpu_pct_max_proc": round(max(client_cpu), 2) if client_cpu else None,
        "client_loop_lag_p99_ms": ms(percentile(lags, 99)),
        "client_loop_lag_max_ms": ms(max(lags) if lags else None),
        "client_send_skips": sum(c["send_skips"] for c in calls),
        "client_nice": args.client_nice,
        # The clients' own timing is part of every delay they measure: trust the delay
        # figures only when their event loops kept up.
        "clients_kept_up": bool(lags)
        and (percentile(lags, 99) or 0) <= 0.02
        and sum(c["send_skips"] for c in calls) == 0,
        "machine_cpus": os.cpu_count(),
        "machine_cpu_pct_busy": round(machine_busy, 1),
        # CPU used by anything but the server and the clients (other jobs spoil the figures).
        "other_cpu_pct": round(machine_busy - server_cpu_total - sum(client_cpu), 1),
        "server_errors_in_log": sum(1 for line in server_log.splitlines() if " ERROR " in line or "Traceback" in line),
    }


def print_table(result: dict[str, Any]) -> None:
    rows = [
        ("calls (connected)", f"{result['calls']} ({result['calls_connected']})"),
        ("window", f"{result['seconds']} s, delay D = {result['delay_s']} s"),
        (
            "delay error p50 / p99 / max",
            f"{result['delay_error_p50_ms']} / {result['delay_error_p99_ms']} / "
            f"{result['delay_error_max_ms']} ms  (|delay - D - overhead|)",
        ),
        ("transport overhead", f"{result['transport_overhead_ms']} ms  (median of delay - D)"),
        (
            "delay jitter p99 / max",
            f"{result['delay_jitter_p99_ms']} / {result['delay_jitter_max_ms']} ms  (|delay - call median|)",
        ),
        ("drift (worst call)", f"{result['drift_ms']} ms  (last 10 markers - first 10)"),
        ("onset delay p50", f"{result['onset_delay_p50_ms']} ms  (first tone heard - sent)"),
        ("return delay p50 / p99", f"{result['return_delay_p50_ms']} / {result['return_delay_p99_ms']} ms"),
        (
            "markers found / expected",
            f"{result['markers']} / {result['markers_expected']} forward, "
            f"{result['return_markers']} / {result['return_markers_expected']} back",
        ),
        (
            "server CPU",
            f"{result['server_cpu_pct_total']} % total, {result['server_cpu_pct_per_call']} % per call, "
            f"{result['server_cpu_pct_idle']} % idle  (of one core)",
        ),
        (
            "server CPU per relayed call",
            f"{result['server_cpu_pct_per_relayed_call']} %  ({result['relayed_share']} of the window's audio relayed)",
        ),
        (
            "server RSS",
            f"{result['server_rss_mb_idle']} MB idle, {result['server_rss_mb_steady']} MB steady, "
            f"{result['server_rss_mb_per_call']} MB per call",
        ),
        ("server late frames / lost", f"{result['server_late_frames']} / {result['server_lost_s']} s"),
        (
            "clients",
            f"{result['client_procs']} processes, {result['client_cpu_pct_total']} % CPU "
            f"(max {result['client_cpu_pct_max_proc']} % one process)",
        ),
        (
            "machine CPU",
            f"{result['machine_cpu_pct_busy']} % busy of {100 * (result['machine_cpus'] or 1)} %, "
            f"{result['other_cpu_pct']} % by other processes",
        ),
        (
            "client loop lag p99 / max",
            f"{result['client_loop_lag_p99_ms']} / {result['client_loop_lag_max_ms']} ms, "
            f"{result['client_send_skips']} send skips, kept up: {result['clients_kept_up']}",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=8, help="concurrent calls (default 8)")
    parser.add_argument("--seconds", type=float, default=30.0, help="steady-state window in seconds (default 30)")
    parser.add_argument("--delay", type=float, default=1.5, help="configured delay D in seconds (default 1.5)")
    parser.add_argument(
        "--delayed-ptime-ms",
        type=int,
        choices=(20, 40, 60),
        default=WebRTCConfig().delayed_ptime_ms,
        help="the server's webrtc.delayed_ptime_ms (default: the server's default)",
    )
    parser.add_argument(
        "--client-procs",
        type=int,
        default=0,
        help="client processes to spread the calls over (default: auto, about 4 calls each)",
    )
    parser.add_argument(
        "--client-nice",
        type=int,
        default=0,
        metavar="N",
        help="run the client processes at this niceness (e.g. 10: the server gets the CPU first)",
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="record the server with py-spy during the window (.svg, .json, else raw stacks); "
        "py-spy's own CPU competes with the run",
    )
    parser.add_argument("--dump", metavar="FILE", help="write every call's marker delays and server stats as JSON")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.seconds < 5 or not 0 <= args.delay <= 30:
        parser.error("need --calls >= 1, --seconds >= 5 and 0 <= --delay <= 30")

    # A SIGTERM (e.g. from a timeout wrapper) still runs the cleanup in run()'s finally.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
