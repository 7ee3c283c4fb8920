"""The builtin ZeroMQ engine over real sockets: libzmq peers (pyzmq's REQ and DEALER sockets,
the library the EA loads) talking to it, and peers that misbehave.

Where a whole sidecar is not the point, the server answers with a plain function; everything
else runs a real `sidecar serve` process."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from sidecar.config import ConfigError, load_config
from sidecar.service.zmtp import greeting, ready
from sidecar.service.zmtp_server import BuiltinZmqServer
from sidecar.testing import messages
from sidecar.testing.client import ZmqClient
from sidecar.testing.server import SidecarProcess, free_port

ROWS = messages.eurusd_rows()[:120]
T0 = int(ROWS[-1][0]) + 3600
OUR_OPENING = greeting() + ready()


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarProcess]:
    with SidecarProcess(tmp_path_factory.mktemp("zmtp") / "s.sqlite") as proc:
        yield proc


@pytest.fixture
def echo() -> Iterator[BuiltinZmqServer]:
    server = BuiltinZmqServer(f"tcp://127.0.0.1:{free_port()}", lambda raw: raw)
    server.start()
    yield server
    server.stop()


def socket_of(kind: int, endpoint: str, **options: int) -> zmq.Socket:
    """A libzmq socket connected to `endpoint`; `options` (e.g. RCVHWM=4) are set before the
    connect, which is when libzmq applies them to the connection."""
    sock = zmq.Context.instance().socket(kind)
    for name, value in options.items():
        sock.setsockopt(getattr(zmq, name), value)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    sock.setsockopt(zmq.SNDTIMEO, 5000)
    sock.connect(endpoint)
    return sock


def raw_connection(endpoint: str) -> socket.socket:
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=5)
    return sock


def wait_for_log(proc: SidecarProcess, *texts: str) -> str:
    """The sidecar's log as soon as it holds every text (its logs go out through a queue
    thread, so a line may land a moment after the reply)."""
    deadline = time.monotonic() + 10
    while True:
        log = proc.log()
        if all(t in log for t in texts) or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


def read_until_closed(sock: socket.socket) -> bytes:
    got = b""
    while chunk := sock.recv(4096):
        got += chunk
    return got


def test_eas_on_many_charts_at_once_each_get_their_own_verdicts(sidecar: SidecarProcess) -> None:
    errors: list[str] = []

    def chart(n: int) -> None:
        client = ZmqClient(sidecar.zmq_endpoint)
        login = 7100 + n
        try:
            ack = client.send(messages.hello(login=login, bars=ROWS, server=T0))
            if ack.get("type") != "ack":
                errors.append(f"{login}: {ack}")
            for i in range(40):
                tick = messages.tick(server=T0 + i, bid=1.1, login=login, msg_id=f"{login}-{i}")
                reply = client.send(tick)
                if reply.get("id") != f"{login}-{i}" or reply.get("type") != "verdict":
                    errors.append(f"{login}-{i}: {reply}")
        except Exception as exc:  # a timeout in a thread must fail the test, not only warn
            errors.append(f"{login}: {exc!r}")
        finally:
            client.close()

    threads = [threading.Thread(target=chart, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


def test_a_correlating_req_socket_gets_its_replies(echo: BuiltinZmqServer) -> None:
    # REQ_CORRELATE adds a request id to the envelope; REQ_RELAXED lets a new request go out
    # before the last reply came. The id must come back for libzmq to match the reply.
    sock = socket_of(zmq.REQ, echo.bound or "", REQ_CORRELATE=1, REQ_RELAXED=1)
    for i in range(5):
        sock.send(f"request {i}".encode())
        assert sock.recv() == f"request {i}".encode()
    sock.close()


def test_a_dealer_may_pipeline_and_gets_the_replies_in_order(echo: BuiltinZmqServer) -> None:
    sock = socket_of(zmq.DEALER, echo.bound or "")
    for i in range(50):
        sock.send_multipart([b"", f"{i}".encode()])
    assert [sock.recv_multipart() for _ in range(50)] == [[b"", f"{i}".encode()] for i in range(50)]
    sock.close()


def test_a_multipart_request_is_answered_as_one_message(sidecar: SidecarProcess) -> None:
    sock = socket_of(zmq.REQ, sidecar.zmq_endpoint)
    body = json.dumps(messages.trade(88001, login=7301, comment="sc:mp")).encode()
    sock.send_multipart([body[:10], body[10:]])
    reply = json.loads(sock.recv())
    assert reply["type"] == "ack" and reply["id"] == json.loads(body)["id"]
    sock.close()


def test_a_peer_that_is_not_zeromq_is_dropped_and_the_ea_is_still_answered(
    sidecar: SidecarProcess,
) -> None:
    ea = ZmqClient(sidecar.zmq_endpoint)
    assert ea.send(messages.hello(login=7401, bars=ROWS, server=T0))["type"] == "ack"
    web = raw_connection(sidecar.zmq_endpoint)
    web.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_until_closed(web) == OUR_OPENING  # our greeting went out first, then the close
    web.close()
    reply = ea.send(messages.tick(server=T0 + 1, bid=1.1, login=7401, msg_id="after-web"))
    assert reply["type"] == "verdict" and reply["id"] == "after-web"
    ea.close()
    log = wait_for_log(sidecar, '"event":"zmq.peer_refused"', "not a ZeroMQ peer (bad signature)")
    assert '"event":"zmq.peer_refused"' in log and "not a ZeroMQ peer (bad signature)" in log


def test_a_frame_over_the_bound_ends_that_connection_only(sidecar: SidecarProcess) -> None:
    # libzmq's own REP socket does the same with MAXMSGSIZE: the peer is disconnected.
    rogue = raw_connection(sidecar.zmq_endpoint)
    rogue.sendall(
        greeting()[:12] + b"NULL".ljust(20, b"\0") + b"\0" * 32 + ready().replace(b"REP", b"REQ")
    )
    rogue.sendall(b"\x01\x00" + b"\x02" + (1 << 40).to_bytes(8, "big"))
    assert read_until_closed(rogue) == OUR_OPENING
    rogue.close()
    ea = ZmqClient(sidecar.zmq_endpoint)
    assert ea.send(messages.trade(88002, login=7302, comment="sc:x"))["type"] == "ack"
    ea.close()
    assert "over the 1048576-byte limit" in wait_for_log(sidecar, "over the 1048576-byte limit")


def test_a_socket_type_a_rep_cannot_talk_to_is_told_so(echo: BuiltinZmqServer) -> None:
    peer = raw_connection(echo.bound or "")
    peer.sendall(greeting() + ready().replace(b"REP", b"PUB"))
    got = read_until_closed(peer)
    assert got.startswith(OUR_OPENING) and got.endswith(b"\x05ERROR\x13Invalid socket type")
    peer.close()


def test_a_connection_that_never_finishes_the_handshake_is_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = BuiltinZmqServer(
        f"tcp://127.0.0.1:{free_port()}", lambda raw: raw, handshake_seconds=0.2
    )
    server.start()
    try:
        with caplog.at_level(logging.WARNING, logger="sidecar.zmq"):
            silent = raw_connection(server.bound or "")
            silent.sendall(b"\xff")  # a signature's first byte, then nothing
            assert read_until_closed(silent) == OUR_OPENING
            silent.close()
        assert any("no ZeroMQ handshake within 0.2 s" in r.getMessage() for r in caplog.records)
        # A proper peer connecting afterwards is served.
        sock = socket_of(zmq.REQ, server.bound or "")
        sock.send(b"hi")
        assert sock.recv() == b"hi"
        sock.close()
    finally:
        server.stop()


def test_when_every_connection_is_taken_one_silent_long_enough_makes_room(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Dead peers and idle squatters must never lock a live EA out; an EA whose idle connection
    # is closed reconnects by itself.
    server = BuiltinZmqServer(
        f"tcp://127.0.0.1:{free_port()}",
        lambda raw: raw,
        max_connections=2,
        evict_idle_seconds=0.5,
    )
    server.start()
    try:
        with caplog.at_level(logging.WARNING, logger="sidecar.zmq"):
            squatter = raw_connection(server.bound or "")
            opening = squatter.recv(len(OUR_OPENING))
            ea = socket_of(zmq.REQ, server.bound or "")
            ea.send(b"1")
            assert ea.recv() == b"1"
            time.sleep(0.6)  # the squatter has now been silent for longer than 0.5 s
            ea.send(b"2")
            assert ea.recv() == b"2"  # and the EA has just spoken
            newcomer = socket_of(zmq.REQ, server.bound or "")
            newcomer.send(b"new")
            assert newcomer.recv() == b"new"
            assert opening + read_until_closed(squatter) == OUR_OPENING  # closed, nothing else
            ea.send(b"still")
            assert ea.recv() == b"still"
        assert server.evictions == 1
        assert any("closing one silent for 0.5 s" in r.getMessage() for r in caplog.records)
        for sock in (ea, newcomer):
            sock.close()
        squatter.close()
    finally:
        server.stop()


def test_a_connection_that_spoke_recently_is_never_evicted_the_newcomer_waits() -> None:
    # At the cap with every connection recently active, a newcomer is not accepted yet (it
    # waits in the listen backlog, its libzmq retrying on its own) rather than evicting a live
    # EA, which would come back and evict another: the loop of issue 18.
    server = BuiltinZmqServer(
        f"tcp://127.0.0.1:{free_port()}", lambda raw: raw, max_connections=2, evict_idle_seconds=60
    )
    server.start()
    try:
        eas = [socket_of(zmq.REQ, server.bound or "") for _ in range(2)]
        for i, ea in enumerate(eas):
            ea.send(b"ea %d" % i)
            assert ea.recv() == b"ea %d" % i
        newcomer = socket_of(zmq.REQ, server.bound or "")
        newcomer.setsockopt(zmq.RCVTIMEO, 500)
        newcomer.send(b"new")
        with pytest.raises(zmq.Again):
            newcomer.recv()  # no room: it waits
        for i, ea in enumerate(eas):  # the EAs are still served on their own connections
            ea.send(b"again %d" % i)
            assert ea.recv() == b"again %d" % i
        assert server.evictions == 0
        eas[0].close()  # a connection ends: the newcomer takes its place
        newcomer.setsockopt(zmq.RCVTIMEO, 10000)
        assert newcomer.recv() == b"new"
        assert server.evictions == 0
        eas[1].close()
        newcomer.close()
    finally:
        server.stop()


def test_300_idle_live_eas_cause_no_eviction_churn_and_all_are_answered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Issue 18, defect 3: with 300 idle, live REQ peers the engine evicted ~290 connections a
    # second for as long as they stayed (each evicted EA came back and evicted another), and
    # when all 300 asked once, some got no reply.
    server = BuiltinZmqServer(f"tcp://127.0.0.1:{free_port()}", lambda raw: raw)
    server.start()
    ctx = zmq.Context(io_threads=2)
    peers: list[zmq.Socket] = []
    try:
        with caplog.at_level(logging.WARNING, logger="sidecar.zmq"):
            for _ in range(300):
                sock = ctx.socket(zmq.REQ)
                sock.setsockopt(zmq.LINGER, 0)
                sock.connect(server.bound or "")
                peers.append(sock)
            deadline = time.monotonic() + 15
            while len(server._conns) < 256 and time.monotonic() < deadline:
                time.sleep(0.05)

            def evicted() -> int:
                return sum(r.getMessage().find("closing") >= 0 for r in caplog.records)

            time.sleep(1.0)
            first = evicted()
            time.sleep(1.5)
            second = evicted() - first
            # Bounded, and not growing per second once every peer has had its chance.
            assert second <= 5, f"{second} evictions in 1.5 s of 300 idle peers"
            assert first <= 300
            assert len(caplog.records) <= 60, f"{len(caplog.records)} warnings"
            for i, sock in enumerate(peers):
                sock.send(b"ask %d" % i)
            poller = zmq.Poller()
            for sock in peers:
                poller.register(sock, zmq.POLLIN)
            answered: dict[int, bytes] = {}
            deadline = time.monotonic() + 30
            while len(answered) < len(peers) and time.monotonic() < deadline:
                for sock, _ in poller.poll(500):
                    i = peers.index(sock)
                    answered[i] = sock.recv()
                    poller.unregister(sock)
            missing = sorted(set(range(len(peers))) - set(answered))
            assert missing == [], f"{len(missing)} of 300 got no reply within 30 s"
            assert all(answered[i] == b"ask %d" % i for i in answered)
    finally:
        for sock in peers:
            sock.close()
        ctx.term()
        server.stop()


def test_per_connection_warnings_are_rate_limited_with_a_count_of_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Issue 18: one garbage run wrote 16,784 warnings, one per refused peer.
    server = BuiltinZmqServer(f"tcp://127.0.0.1:{free_port()}", lambda raw: raw)
    server.start()
    try:
        with caplog.at_level(logging.WARNING, logger="sidecar.zmq"):
            for _ in range(200):
                web = raw_connection(server.bound or "")
                web.sendall(b"GET / HTTP/1.1\r\n\r\n")
                read_until_closed(web)
                web.close()
            ea = socket_of(zmq.REQ, server.bound or "")
            ea.send(b"still here")
            assert ea.recv() == b"still here"
            ea.close()
            server.stop()  # flushes the count of what was left out
        refused = [r for r in caplog.records if "not a ZeroMQ peer" in r.getMessage()]
        assert 1 <= len(refused) <= 20
        summaries = [r for r in caplog.records if getattr(r, "event", "") == "zmq.log_suppressed"]
        assert sum(r.suppressed for r in summaries) == 200 - len(refused)
    finally:
        server.stop()


def test_peers_stalling_halfway_through_a_big_frame_are_closed_and_their_memory_bounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Issue 18, defect 4: 200 peers each holding a partial 1 MiB frame took the RSS from 79 to
    # 326 MB, for as long as they liked. Now an incomplete message must be complete within
    # message_seconds, and all of them together hold at most pending_bytes.
    budget = 20 * 1024 * 1024  # 40 of the 50 half frames: the budget closes some, time the rest
    server = BuiltinZmqServer(f"tcp://127.0.0.1:{free_port()}", lambda raw: raw)
    server.message_seconds, server.pending_bytes = 2.0, budget
    server.start()
    stalled: list[socket.socket] = []
    try:
        with caplog.at_level(logging.WARNING, logger="sidecar.zmq"):
            ea = socket_of(zmq.REQ, server.bound or "")
            handshake = greeting() + ready().replace(b"REP", b"REQ")
            header = b"\x01\x00" + b"\x02" + (1024 * 1024).to_bytes(8, "big")
            for _ in range(50):
                peer = raw_connection(server.bound or "")
                peer.sendall(handshake + header + b"x" * (512 * 1024))  # half the frame's body
                stalled.append(peer)
            begun = time.monotonic()
            # The EA is served throughout.
            i = 0
            while time.monotonic() - begun < 1.0:
                ea.send(b"tick %d" % i)
                assert ea.recv() == b"tick %d" % i
                i += 1
            assert getattr(server, "_held_total", 0) <= budget  # (an attribute of the fix)
            for peer in stalled:
                peer.settimeout(10)
                assert read_until_closed(peer).startswith(OUR_OPENING)
            assert time.monotonic() - begun < 10
            ea.send(b"after")
            assert ea.recv() == b"after"
            ea.close()
        messages_ = [r.getMessage() for r in caplog.records]
        assert any("left incomplete for 2 s" in m for m in messages_)
        assert any("over the 20971520-byte budget" in m for m in messages_)
        deadline = time.monotonic() + 5
        while server._held_total and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server._held_total == 0 and not server._held
    finally:
        for peer in stalled:
            peer.close()
        server.stop()


def test_a_peer_dripping_its_handshake_is_closed_when_the_handshake_time_is_up() -> None:
    server = BuiltinZmqServer(
        f"tcp://127.0.0.1:{free_port()}", lambda raw: raw, handshake_seconds=0.5
    )
    server.start()
    try:
        drip = raw_connection(server.bound or "")
        greeting_ = greeting()
        sent = 0
        with contextlib.suppress(OSError):
            for byte in greeting_:  # 64 bytes at 0.1 s each: 6.4 s if nobody stopped it
                drip.sendall(bytes((byte,)))
                sent += 1
                time.sleep(0.1)
        assert sent < len(greeting_), "a dripping peer kept the connection past the deadline"
        drip.close()
    finally:
        server.stop()


def test_stop_ends_a_connection_whose_peer_does_not_read() -> None:
    server = BuiltinZmqServer(f"tcp://127.0.0.1:{free_port()}", lambda raw: raw)
    server.start()
    hog = socket_of(zmq.DEALER, server.bound or "")
    hog.setsockopt(zmq.SNDTIMEO, 1000)
    with contextlib.suppress(zmq.Again):
        for _ in range(8192):  # until its connection thread is stuck sending unread replies
            hog.send_multipart([b"", b"h" * 16384])
    server.stop()
    assert not any(t.name == "sidecar-zmq-conn" and t.is_alive() for t in threading.enumerate())
    hog.close()


def test_a_peer_that_does_not_read_its_replies_does_not_hold_up_the_others(
    echo: BuiltinZmqServer,
) -> None:
    # A DEALER that keeps sending 16 KiB requests and reads nothing: its replies fill the
    # socket buffers, the server stops reading from it (so its sends stall too), and an EA on
    # another connection is still answered.
    # RCVHWM: libzmq stops reading the TCP socket once 4 replies wait unread.
    hog = socket_of(zmq.DEALER, echo.bound or "", RCVHWM=4)
    hog.setsockopt(zmq.SNDTIMEO, 1000)
    body = b"h" * 16384
    sent = 0
    while sent < 8192:
        try:
            hog.send_multipart([b"", body])
        except zmq.Again:
            break
        sent += 1
    assert 0 < sent < 8192, "the server kept reading a peer that reads none of its replies"
    ea = socket_of(zmq.REQ, echo.bound or "")
    for i in range(20):
        ea.send(f"tick {i}".encode())
        assert ea.recv() == f"tick {i}".encode()
    # Once the hog reads, every reply it was owed arrives, in order and whole.
    assert all(hog.recv_multipart() == [b"", body] for _ in range(sent))
    ea.close()
    hog.close()


def test_stop_closes_the_port_and_a_restart_binds_it_again() -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    for round_ in range(2):
        server = BuiltinZmqServer(endpoint, lambda raw: raw)
        server.start()
        sock = socket_of(zmq.REQ, endpoint)
        sock.send(b"round %d" % round_)
        assert sock.recv() == b"round %d" % round_
        server.stop()
        sock.close()


def test_a_port_in_use_is_reported_with_the_endpoint(echo: BuiltinZmqServer) -> None:
    with pytest.raises(OSError, match=r"server\.zmq: cannot bind tcp://127\.0\.0\.1:\d+"):
        BuiltinZmqServer(echo.bound or "", lambda raw: raw).start()


def test_the_ipv6_loopback_is_served() -> None:
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    server = BuiltinZmqServer(f"tcp://[::1]:{free_port()}", lambda raw: raw)
    server.start()
    try:
        assert server.bound is not None and server.bound.startswith("tcp://[::1]:")
        sock = zmq.Context.instance().socket(zmq.REQ)
        sock.setsockopt(zmq.IPV6, 1)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, 5000)
        sock.connect(server.bound)
        sock.send(b"v6")
        assert sock.recv() == b"v6"
        sock.close()
    finally:
        server.stop()


def test_the_builtin_engine_takes_tcp_endpoints_only_and_says_what_to_use_instead() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, env={"SIDECAR_ZMQ": "ipc:///tmp/sidecar.ipc"})
    assert "server.zmq: expected tcp://HOST:PORT" in str(err.value)
    assert 'server.zmq_engine = "libzmq"' in str(err.value)
    config = load_config(
        None, env={"SIDECAR_ZMQ": "ipc:///tmp/sidecar.ipc", "SIDECAR_ZMQ_ENGINE": "libzmq"}
    )
    assert config.server.zmq_engine == "libzmq"
    with pytest.raises(ConfigError, match="port: expected 0-65535"):
        load_config(None, env={"SIDECAR_ZMQ": "tcp://127.0.0.1:70000"})


def test_the_libzmq_engine_answers_byte_for_byte_the_same(tmp_path: Path) -> None:
    """The fallback engine, for ipc:// or a peer the builtin one cannot talk to: the same
    conversation gets the same bytes back from both."""
    stream = [json.dumps(messages.hello(login=7501, bars=ROWS, server=T0)).encode()]
    stream += [
        json.dumps(
            messages.tick(server=T0 + i, bid=1.1 + i * 1e-4, login=7501, msg_id=f"t{i}")
        ).encode()
        for i in range(30)
    ]
    stream += [b"{not json", b"x" * 70000, b'{"v":9,"type":"tick","id":"v9"}\x00']
    replies = {}
    for engine in ("builtin", "libzmq"):
        env = {"SIDECAR_ZMQ_ENGINE": engine}
        with SidecarProcess(tmp_path / f"{engine}.sqlite", env=env) as proc:
            client = ZmqClient(proc.zmq_endpoint)
            replies[engine] = [client.raw(raw) for raw in stream]
            client.close()
            assert f'"engine":"{engine}"' in proc.log()
    assert replies["builtin"] == replies["libzmq"]
    assert json.loads(replies["builtin"][-2])["error"]["code"] == "TOO_LARGE"
