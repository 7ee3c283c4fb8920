"""A long run of hostile input against a real sidecar: no crash, no hang, no INTERNAL, memory flat.

One `sidecar serve` process (a temporary database), warmed by a hello with 300 real EURUSD H1
bars. Two lanes share the inputs: ZeroMQ (one REQ socket, sequential like the EA, lazy-pirate
reopen after a timeout) and HTTP `POST /v1/<type>` (`--http-clients` keep-alive connections in
threads). Every input is drawn from a seeded mix of mutations of every message type (hello, tick,
trade, calendar, heartbeat): random bytes, truncation, bit flips, invalid UTF-8, nesting up to
5,000 levels, duplicate keys, NaN / Infinity / 1e400 literals, huge, zero and negative numbers,
wrong types, missing and unknown fields, wrong version and type, unknown symbols, bodies over the
64 KiB limit, and valid messages sent again (duplicates).

Every reply must decode as a `verdict`, `ack` or `error` of the protocol (msgspec, strictly),
carry a known error code and never `INTERNAL`; over HTTP the status must match the code. Each
request is bounded (`--timeout-ms`, 5 s): a request without an answer in time is a hang. RSS of
the process is read from /proc at the start (after warm-up), every 10% of the run and at the
end. The baseline is valid ticks on the same lanes, measured in the same run in alternating
blocks: the figure printed is hostile inputs/s against valid ticks/s per lane. At the end the
process must be alive, still give verdicts, and its log hold no traceback and no internal
error. Exit 1 on any failure.

    python bench/bench_fuzz.py [--inputs 1000000] [--quick] [--seed 1] [--http-share 0.1]
                               [--http-clients 16] [--block 5000] [--json out.json]

`--quick` is 20,000 inputs.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import zmq

from sidecar.protocol import (
    ERROR_CODES,
    INTERNAL,
    MAX_MESSAGE_BYTES,
    ErrorReply,
    decode_reply,
    type_of,
)
from sidecar.service.http_app import STATUS
from sidecar.testing import messages as M
from sidecar.testing.client import HttpClient
from sidecar.testing.server import SidecarProcess

ROWS = M.eurusd_rows()[:300]
T0 = int(ROWS[-1][0]) + 3600
LOGIN = 12345678
MARK = b'"@@MARK@@"'  # stands for the value a mutation puts in place (a JSON string)


# ---------------------------------------------------------------- base messages


def _bases() -> dict[str, dict[str, Any]]:
    last = ROWS[-1]
    pos = M.position(501, price_open=1.09001, profit=12.5, comment="sc:9f2c")
    pos |= {"sl": 1.08701, "tp": 1.09601}
    bar = [T0, last[4], last[4] + 0.0004, last[4] - 0.0003, last[4] + 0.0001, 900.0, 7.0]
    tick = M.tick(
        T0 + 3601, 1.09121, 1.09128, login=LOGIN, equity=10012.5, positions=[pos], bars=[bar]
    )
    return copy.deepcopy(
        {
            "hello": M.hello(login=LOGIN, bars=ROWS[-30:], server=T0),
            "tick": tick,
            "trade": M.trade(90017, login=LOGIN, comment="sc:9f2c"),
            "calendar": M.calendar([M.calendar_event(T0 + 86_400)], login=LOGIN),
            "heartbeat": M.heartbeat(login=LOGIN, server=T0 + 30),
        }
    )


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _with(obj: Any, path: tuple[Any, ...], value: Any, delete: bool = False) -> Any:
    obj = copy.deepcopy(obj)
    parent = obj
    for p in path[:-1]:
        parent = parent[p]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return obj


class Templates:
    """Per message type: the valid bytes, one template per field with MARK in its place, one
    per field deleted and the numeric fields. Built once; each input is then a byte splice."""

    def __init__(self) -> None:
        self.valid: dict[str, bytes] = {}
        self.field: dict[str, list[bytes]] = {}
        self.numeric: dict[str, list[bytes]] = {}
        self.deleted: dict[str, list[bytes]] = {}
        self.top_keys: dict[str, list[str]] = {}
        for kind, msg in _bases().items():
            self.valid[kind] = orjson.dumps(msg)
            paths = _paths(msg)
            self.field[kind] = [json.dumps(_with(msg, p, "@@MARK@@")).encode() for p in paths]
            self.numeric[kind] = [
                json.dumps(_with(msg, p, "@@MARK@@")).encode()
                for p in paths
                if isinstance(_at(msg, p), int | float) and not isinstance(_at(msg, p), bool)
            ]
            self.deleted[kind] = [orjson.dumps(_with(msg, p, None, delete=True)) for p in paths]
            self.top_keys[kind] = list(msg)
        for kind, templates in self.field.items():
            assert all(t.count(MARK) == 1 for t in templates), kind


def _at(obj: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        obj = obj[p]
    return obj


# ---------------------------------------------------------------- the hostile mix

ODD_VALUES = [
    b"0",
    b"-1",
    b"-0.0",
    b"1e-320",
    b"9223372036854775808",
    b"-9223372036854775809",
    b"18446744073709551616",
    b"1" + b"0" * 400,
    b"1e308",
    b"1e400",
    b"-1e400",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"null",
    b"true",
    b"false",
    b'""',
    b'"x"',
    b"[]",
    b"{}",
    b"[1,2,3]",
    b'{"a":1}',
    b'"' + b"y" * 300 + b'"',
    b'"\\ud800"',
    b'"\\u0000"',
    b'"\xff"',
    b"01",
    b"1.",
    b"+1",
    b"0x10",
]


class Hostile:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.t = Templates()
        self.kinds = list(self.t.valid)
        self.ops: list[tuple[str, Callable[[str], bytes], int]] = [
            ("random_bytes", self.random_bytes, 8),
            ("odd_field_value", self.odd_field_value, 20),
            ("odd_number", self.odd_number, 10),
            ("missing_field", self.missing_field, 6),
            ("unknown_field", self.unknown_field, 6),
            ("invalid_utf8", self.invalid_utf8, 8),
            ("deep_nesting", self.deep_nesting, 6),
            ("truncated", self.truncated, 8),
            ("bit_flips", self.bit_flips, 10),
            ("duplicate_key", self.duplicate_key, 5),
            ("version_or_type", self.version_or_type, 4),
            ("unknown_symbol", self.unknown_symbol, 3),
            ("duplicate_delivery", self.duplicate_delivery, 5),
            ("nul_tail", self.nul_tail, 1),
        ]
        self.weights = [w for _, _, w in self.ops]

    def draw(self) -> tuple[str, str, bytes]:
        """(mutation, message type, payload); the rare oversize input comes in here too."""
        kind = self.rng.choice(self.kinds)
        if self.rng.random() < 0.0005:
            pad = b"x" * (MAX_MESSAGE_BYTES + self.rng.randint(1, 100_000))
            return "oversize", kind, self.t.valid[kind][:-1] + b',"pad":"' + pad + b'"}'
        name, op, _ = self.rng.choices(self.ops, self.weights)[0]
        return name, kind, op(kind)

    def random_bytes(self, kind: str) -> bytes:
        return self.rng.randbytes(self.rng.randint(0, 512))

    def odd_field_value(self, kind: str) -> bytes:
        return self.rng.choice(self.t.field[kind]).replace(MARK, self.rng.choice(ODD_VALUES))

    def odd_number(self, kind: str) -> bytes:
        return self.rng.choice(self.t.numeric[kind]).replace(MARK, self.rng.choice(ODD_VALUES[:14]))

    def missing_field(self, kind: str) -> bytes:
        return self.rng.choice(self.t.deleted[kind])

    def unknown_field(self, kind: str) -> bytes:
        key = self.rng.choice(['"x"', '""', '"ID"', '"v "', '"\\u0000"', '"tokn"', '"a`b"'])
        return self.t.valid[kind][:-1] + f",{key}:1}}".encode()

    def invalid_utf8(self, kind: str) -> bytes:
        raw = self.t.valid[kind]
        quotes = [i for i, c in enumerate(raw[:400]) if c == 34]
        i = self.rng.choice(quotes) + 1
        bad = self.rng.choice([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\x80"])
        return raw[:i] + bad + raw[i:]

    def deep_nesting(self, kind: str) -> bytes:
        depth = int(2 ** self.rng.uniform(0, 12.3))  # 1 .. ~5,000, log-uniform
        opener, closer = self.rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
        closed = self.rng.random() < 0.7
        nest = opener * depth + b"1" + (closer * depth if closed else b"")
        return self.rng.choice(self.t.field[kind]).replace(MARK, nest)

    def truncated(self, kind: str) -> bytes:
        raw = self.t.valid[kind]
        return raw[: self.rng.randrange(len(raw))]

    def bit_flips(self, kind: str) -> bytes:
        raw = bytearray(self.t.valid[kind])
        for _ in range(self.rng.randint(1, 4)):
            raw[self.rng.randrange(len(raw))] ^= 1 << self.rng.randrange(8)
        return bytes(raw)

    def duplicate_key(self, kind: str) -> bytes:
        key = self.rng.choice(self.t.top_keys[kind])
        return self.t.valid[kind][:-1] + f',"{key}":'.encode() + self.rng.choice(ODD_VALUES) + b"}"

    def version_or_type(self, kind: str) -> bytes:
        raw = self.t.valid[kind]
        if self.rng.random() < 0.5:
            return raw.replace(b'"v":1', b'"v":' + self.rng.choice([b"2", b"0", b'"1"', b"1.5"]), 1)
        bad = self.rng.choice([b'"nosuch"', b'"Tick"', b"null", b"1", b'""'])
        return raw.replace(f'"type":"{kind}"'.encode(), b'"type":' + bad, 1)

    def unknown_symbol(self, kind: str) -> bytes:
        name = "".join(self.rng.choices("ABCDEFXYZ#.", k=self.rng.randint(1, 12)))
        return self.t.valid["tick"].replace(b'"symbol":"EURUSD"', f'"symbol":"{name}"'.encode())

    def duplicate_delivery(self, kind: str) -> bytes:
        return self.t.valid[kind]  # the same message again: an ack (duplicate) or a verdict

    def nul_tail(self, kind: str) -> bytes:
        return self.t.valid[kind] + self.rng.choice([b"\x00", b"\r\n\x00", b" \x00\x00"])


# ---------------------------------------------------------------- checking replies


class Tally:
    def __init__(self) -> None:
        self.codes: Counter[str] = Counter()
        self.mutations: Counter[str] = Counter()
        self.failures: list[str] = []
        self.hangs = 0
        self.sent = 0
        self.lock = threading.Lock()

    def fail(self, what: str) -> None:
        with self.lock:
            if len(self.failures) < 20:
                self.failures.append(what)

    def check(self, mutation: str, payload: bytes, raw: bytes, status: int | None = None) -> None:
        try:
            reply = decode_reply(raw)
        except Exception as exc:  # anything undecodable fails
            self.fail(f"{mutation}: not a valid reply ({exc}): {raw[:200]!r} <- {payload[:120]!r}")
            return
        if isinstance(reply, ErrorReply):
            code = reply.error.code
            ok = code in ERROR_CODES and code != INTERNAL and reply.ok is False
            if status is not None and status != STATUS.get(code):
                ok = False
        else:
            code = type_of(reply)
            ok = reply.ok is True and (status is None or status == 200)
        with self.lock:
            self.sent += 1
            self.codes[code] += 1
            self.mutations[mutation] += 1
        if not ok:
            self.fail(f"{mutation}: {status} {raw[:200]!r} <- {payload[:120]!r}")


# ---------------------------------------------------------------- lanes


class ZmqLane:
    def __init__(self, name: str, endpoint: str, timeout_ms: int) -> None:
        self.name, self.endpoint, self.timeout_ms = name, endpoint, timeout_ms
        self.ctx = zmq.Context.instance()
        self.sock: zmq.Socket | None = None
        self._open()

    def _open(self) -> None:
        if self.sock is not None:
            self.sock.close(0)
        self.sock = self.ctx.socket(zmq.REQ)
        for opt, value in ((zmq.LINGER, 0), (zmq.RCVTIMEO, self.timeout_ms)):
            self.sock.setsockopt(opt, value)
        self.sock.setsockopt(zmq.SNDTIMEO, self.timeout_ms)
        self.sock.connect(self.endpoint)

    def run(self, items: list[tuple[str, str, bytes]], tally: Tally) -> None:
        assert self.sock is not None
        for mutation, _kind, payload in items:
            try:
                self.sock.send(payload)
                raw = self.sock.recv()
            except zmq.Again:
                tally.hangs += 1
                tally.fail(
                    f"{self.name}: no reply within {self.timeout_ms} ms <- {payload[:120]!r}"
                )
                self._open()
                continue
            tally.check(mutation, payload, raw)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close(0)


class HttpLane:
    def __init__(self, port: int, clients: int, timeout_ms: int) -> None:
        self.name = "http"
        self.clients = [
            HttpClient("127.0.0.1", port, timeout=timeout_ms / 1000) for _ in range(clients)
        ]

    def run(self, items: list[tuple[str, str, bytes]], tally: Tally) -> None:
        def worker(client: HttpClient, part: list[tuple[str, str, bytes]]) -> None:
            for mutation, kind, payload in part:
                try:
                    status, raw = client.raw(kind, payload)
                except TimeoutError:
                    tally.hangs += 1
                    tally.fail(f"http: no reply in time <- {payload[:120]!r}")
                    continue
                except Exception as exc:  # a dropped connection fails
                    tally.fail(f"http: {type(exc).__name__}: {exc} <- {payload[:120]!r}")
                    continue
                tally.check(mutation, payload, raw, status)

        n = len(self.clients)
        threads = [
            threading.Thread(target=worker, args=(c, items[i::n]))
            for i, c in enumerate(self.clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def close(self) -> None:
        for c in self.clients:
            c.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def valid_ticks(n: int) -> list[tuple[str, str, bytes]]:
    base = _bases()["tick"]
    out = []
    for i in range(n):
        msg = copy.deepcopy(base)
        msg["id"] = f"vt-{i}"
        msg["time"]["msc"] += i
        msg["bars"] = []
        out.append(("valid_tick", "tick", orjson.dumps(msg)))
    return out


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR")}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--inputs", type=int, default=1_000_000, help="hostile inputs in all")
    p.add_argument("--quick", action="store_true", help="20,000 inputs")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--http-share", type=float, default=0.1, help="share of inputs sent over HTTP")
    p.add_argument("--http-clients", type=int, default=16, help="keep-alive HTTP connections")
    p.add_argument("--block", type=int, default=5000, help="hostile inputs per lane per block")
    p.add_argument("--timeout-ms", type=int, default=5000, help="bound of one request")
    p.add_argument(
        "--rss-growth-mb",
        type=float,
        default=50.0,
        help="RSS growth over the run above which memory is not flat (a failure)",
    )
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    total = 20_000 if args.quick else args.inputs
    shares = {"zmq": 1 - args.http_share, "http": args.http_share}
    quota = {lane: round(total * s) for lane, s in shares.items()}

    gen = Hostile(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="bench-fuzz-"))
    proc = SidecarProcess(tmp / "sidecar.sqlite", env=_env()).start()
    assert proc.proc is not None
    pid = proc.proc.pid
    try:
        ack = proc.zmq().send(M.hello(login=LOGIN, bars=ROWS, server=T0))
        assert ack["type"] == "ack", ack
        lanes = {
            "zmq": ZmqLane("zmq", proc.zmq_endpoint, args.timeout_ms),
            "http": HttpLane(proc.http_port, args.http_clients, args.timeout_ms),
        }
        tallies = {lane: Tally() for lane in lanes}
        base_tallies = {lane: Tally() for lane in lanes}
        hostile_s = dict.fromkeys(lanes, 0.0)
        valid_s = dict.fromkeys(lanes, 0.0)
        # Warm-up: a few of each, then RSS at the start.
        for lane in lanes.values():
            lane.run([gen.draw() for _ in range(200)], Tally())
            lane.run(valid_ticks(200), Tally())
        rss = [rss_mb(pid)]
        print(
            f"bench_fuzz: {total:,} hostile inputs (seed {args.seed}): "
            + ", ".join(f"{lane} {n:,}" for lane, n in quota.items())
            + f"; RSS at start: {rss[0]:.1f} MB",
            flush=True,
        )
        done = dict.fromkeys(lanes, 0)
        next_mark = total // 10
        t_start = time.perf_counter()
        while any(done[lane] < quota[lane] for lane in lanes):
            for name, lane in lanes.items():
                n = min(args.block, quota[name] - done[name])
                if n <= 0:
                    continue
                items = [gen.draw() for _ in range(n)]
                t = time.perf_counter()
                lane.run(items, tallies[name])
                hostile_s[name] += time.perf_counter() - t
                done[name] += n
                # The baseline: valid ticks on the same lane, a tenth of the block.
                vt = valid_ticks(max(n // 10, 50))
                t = time.perf_counter()
                lane.run(vt, base_tallies[name])
                valid_s[name] += time.perf_counter() - t
            if sum(done.values()) >= next_mark:
                rss.append(rss_mb(pid))
                print(
                    f"  {sum(done.values()):>9,} inputs, {time.perf_counter() - t_start:6.0f} s, "
                    f"RSS {rss[-1]:.1f} MB",
                    flush=True,
                )
                next_mark += total // 10
        elapsed = time.perf_counter() - t_start
        rss.append(rss_mb(pid))

        # After the run: alive, still deciding, no traceback or internal error in the log.
        alive = proc.proc.poll() is None
        reply = proc.zmq().send(M.hello(login=LOGIN + 7, bars=ROWS, server=T0)) if alive else {}
        tick = orjson.loads(valid_ticks(1)[0][2]) | {"login": LOGIN + 7, "bars": []}
        verdict = proc.zmq().send(tick) if alive else {}
        log = proc.log()
        ok = (
            alive
            and reply.get("type") == "ack"
            and verdict.get("type") == "verdict"
            and "Traceback" not in log
            and "request.internal_error" not in log
        )
        log_mb = proc.log_path.stat().st_size / 2**20
        after = f"{'alive, still deciding, no traceback' if ok else 'FAILED'} (log {log_mb:.0f} MB)"
        if not ok:
            tallies["zmq"].fail(f"after the run: alive={alive} {reply} {verdict}")
        for lane in lanes.values():
            lane.close()
    finally:
        proc.stop()

    # ---------------------------------------------------------------- report
    print()
    print(
        f"{'lane':<13}{'inputs':>10}{'hostile/s':>11}{'valid/s':>10}{'ratio':>7}{'hangs':>7}"
        f"{'failures':>10}"
    )
    results: dict[str, Any] = {"inputs": total, "seed": args.seed, "elapsed_s": elapsed}
    all_codes: Counter[str] = Counter()
    all_mutations: Counter[str] = Counter()
    failures: list[str] = []
    for name in lanes:
        t, b = tallies[name], base_tallies[name]
        h_rate = t.sent / hostile_s[name] if hostile_s[name] else 0.0
        v_rate = b.sent / valid_s[name] if valid_s[name] else 0.0
        ratio = h_rate / v_rate if v_rate else float("nan")
        bad_base = [f for f in b.failures] + (
            [f"baseline {name}: {b.codes}"] if set(b.codes) != {"verdict"} else []
        )
        print(
            f"{name:<13}{t.sent:>10,}{h_rate:>11,.0f}{v_rate:>10,.0f}{ratio:>7.2f}{t.hangs:>7}"
            f"{len(t.failures) + len(bad_base):>10}"
        )
        all_codes += t.codes
        all_mutations += t.mutations
        failures += [f"{name}: {f}" for f in t.failures + bad_base]
        results[name] = {
            "inputs": t.sent,
            "hostile_per_s": h_rate,
            "valid_ticks_per_s": v_rate,
            "ratio": ratio,
            "hangs": t.hangs,
            "codes": dict(t.codes),
        }
    print("\nreplies:  " + ", ".join(f"{c} {n:,}" for c, n in all_codes.most_common()))
    print("inputs:   " + ", ".join(f"{m} {n:,}" for m, n in all_mutations.most_common()))
    growth = rss[-1] - rss[0]
    flat = growth <= args.rss_growth_mb
    print(
        f"RSS      start {rss[0]:.1f} MB, end {rss[-1]:.1f} MB "
        f"(growth {growth:+.1f} MB, max {max(rss):.1f} MB): "
        + ("flat" if flat else f"NOT flat (over {args.rss_growth_mb:g} MB)")
    )
    if not flat:
        failures.append(f"RSS grew {growth:+.1f} MB over the run")
    print("RSS samples (MB, every 10%): " + " ".join(f"{v:.0f}" for v in rss))
    print("after:    " + after)
    print(f"elapsed:  {elapsed:.0f} s; INTERNAL replies: {all_codes.get(INTERNAL, 0)}")
    results |= {"codes": dict(all_codes), "mutations": dict(all_mutations), "rss_mb": rss}
    results["failures"] = failures
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if failures:
        print(f"\n{len(failures)} FAILURES (first 20):", file=sys.stderr)
        for f in failures[:20]:
            print("  " + f, file=sys.stderr)
        return 1
    print("result:   OK (no crash, no hang, no INTERNAL, every reply valid, memory flat)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
