"""ZMTP 3.0, REP side: what the builtin ZeroMQ engine accepts, answers and refuses, byte by byte.

The conversations with real libzmq peers are in test_zmtp_server.py; here the peer's bytes are
written out by hand, as RFC 23 lays them down, to reach cases a libzmq peer never produces."""

from __future__ import annotations

import struct

import pytest

from sidecar.service.zmtp import (
    RepConnection,
    ZmtpError,
    greeting,
    max_frame_bytes,
    ready,
    reply_frames,
)

LIMIT = 65536


def peer_greeting(major: int = 3, minor: int = 1, mechanism: bytes = b"NULL") -> bytes:
    return (
        b"\xff"
        + b"\0" * 8
        + b"\x7f"
        + bytes((major, minor))
        + mechanism.ljust(20, b"\0")
        + b"\0" * 32
    )


def command(name: bytes, data: bytes) -> bytes:
    body = bytes((len(name),)) + name + data
    return bytes((0x04, len(body))) + body


def ready_from(socket_type: bytes, identity: bytes | None = None) -> bytes:
    props = b"\x0bSocket-Type" + struct.pack(">I", len(socket_type)) + socket_type
    if identity is not None:
        props += b"\x08Identity" + struct.pack(">I", len(identity)) + identity
    return command(b"READY", props)


def frame(data: bytes, more: bool = False) -> bytes:
    flags = 0x01 if more else 0x00
    if len(data) < 256:
        return bytes((flags, len(data))) + data
    return bytes((flags | 0x02,)) + struct.pack(">Q", len(data)) + data


def request(body: bytes) -> bytes:
    """What a REQ socket sends: the empty delimiter, then the body."""
    return frame(b"", more=True) + frame(body)


def connected(socket_type: bytes = b"REQ") -> RepConnection:
    conn = RepConnection(LIMIT)
    assert conn.feed(peer_greeting() + ready_from(socket_type)) == []
    assert conn.ready
    return conn


def test_our_greeting_offers_zmtp_3_0_with_the_null_mechanism() -> None:
    g = greeting()
    assert len(g) == 64 and g[0] == 0xFF and g[9] == 0x7F
    assert g[10:12] == b"\x03\x00" and g[12:32] == b"NULL" + b"\0" * 16 and g[32] == 0
    # READY: a short command frame carrying Socket-Type=REP.
    r = ready()
    assert r[0] == 0x04 and r[1] == len(r) - 2 and r[2:8] == b"\x05READY"
    assert r[8:] == b"\x0bSocket-Type" + struct.pack(">I", 3) + b"REP"


def test_a_req_request_comes_out_whole_and_the_reply_carries_the_delimiter() -> None:
    conn = connected()
    (req,) = conn.feed(request(b'{"type":"tick"}'))
    assert req.envelope == (b"",) and req.body == b'{"type":"tick"}'
    assert reply_frames(req.envelope, b'{"ok":true}') == b"\x01\x00" + b"\x00\x0b" + b'{"ok":true}'


def test_bytes_arriving_one_at_a_time_give_the_same_requests() -> None:
    stream = peer_greeting() + ready_from(b"REQ") + request(b"a" * 300) + request(b"second")
    conn = RepConnection(LIMIT)
    got = []
    for i in range(len(stream)):
        got += conn.feed(stream[i : i + 1])
    assert [r.body for r in got] == [b"a" * 300, b"second"]


@pytest.mark.parametrize("size", [0, 1, 255, 256, 900, LIMIT, LIMIT + 1, 3 * LIMIT])
def test_a_request_read_whole_or_in_pieces_is_the_same_request(size: int) -> None:
    # One whole REQ message per read is the EA's case and takes a short path; a message split
    # over reads takes the general one. Both must agree, at the frame-size edges too.
    message = request(bytes(range(256)) * (size // 256) + b"z" * (size % 256))
    whole = connected().feed(message)
    split = connected()
    pieces = split.feed(message[:3]) + split.feed(message[3:])
    assert whole == pieces and len(whole) == 1 and len(whole[0].body) == size


def test_a_long_frame_and_a_multipart_body_are_joined() -> None:
    conn = connected()
    body = frame(b"", more=True) + frame(b"x" * 1000, more=True) + frame(b"yz")
    (req,) = conn.feed(body)
    assert req.body == b"x" * 1000 + b"yz"
    # A reply of 256 bytes or more goes out as a long frame (8-byte size).
    out = reply_frames((b"",), b"r" * 300)
    assert out[:2] == b"\x01\x00" and out[2] == 0x02 and struct.unpack(">Q", out[3:11])[0] == 300


def test_a_correlating_req_envelope_is_echoed_in_front_of_the_reply() -> None:
    # ZMQ_REQ_CORRELATE puts a request id before the delimiter; the reply must carry it back.
    conn = connected()
    (req,) = conn.feed(frame(b"\x00\x00\x00\x07", more=True) + request(b"{}"))
    assert req.envelope == (b"\x00\x00\x00\x07", b"")
    assert reply_frames(req.envelope, b"ok").startswith(b"\x01\x04\x00\x00\x00\x07\x01\x00")


def test_a_dealer_may_pipeline_requests() -> None:
    conn = connected(b"DEALER")
    assert [r.body for r in conn.feed(request(b"1") + request(b"2") + request(b"3"))] == [
        b"1",
        b"2",
        b"3",
    ]


def test_a_body_over_the_frame_bound_is_drained_and_stands_in_as_too_large() -> None:
    conn = connected()
    bound = max_frame_bytes(LIMIT)
    part = b"p" * (bound // 2 + 1)
    (req,) = conn.feed(frame(b"", more=True) + frame(part, more=True) + frame(part))
    # Neither part is over the frame bound, their sum is: the body the decoder sees is one
    # byte over the message limit, so it answers TOO_LARGE without the parts being kept.
    assert req.body == b"\0" * (LIMIT + 1)
    # The connection goes on.
    (req,) = conn.feed(request(b"next"))
    assert req.body == b"next"


def test_a_frame_over_the_bound_is_refused_from_its_header_alone() -> None:
    conn = connected()
    # 8 GiB announced: refused on the header, nothing is buffered waiting for it.
    with pytest.raises(ZmtpError, match="over the 1048576-byte limit"):
        conn.feed(b"\x02" + struct.pack(">Q", 8 << 30))


def test_ping_is_answered_with_pong_and_its_context() -> None:
    conn = connected()
    assert conn.feed(command(b"PING", b"\x00\x0a" + b"ctx")) == []
    assert bytes(conn.outgoing) == command(b"PONG", b"ctx")


@pytest.mark.parametrize(
    ("stream", "why"),
    [
        (b"GET / HTTP/1.1\r\n", "not a ZeroMQ peer"),
        (b"\xff" + b"\0" * 8 + b"\x00", "not a ZeroMQ peer"),  # ZMTP 1.0 framing
        (peer_greeting(major=2), "ZMTP version 2 peer"),
        (peer_greeting(mechanism=b"PLAIN"), "mechanism 'PLAIN': only NULL"),
        (peer_greeting(mechanism=b"CURVE"), "mechanism 'CURVE': only NULL"),
        (peer_greeting() + request(b"{}"), "message before the READY command"),
        (peer_greeting() + command(b"PING", b"\0\0"), "'PING' before READY"),
        (peer_greeting() + ready_from(b"REQ") + ready_from(b"REQ"), "second READY"),
        (peer_greeting() + ready_from(b"REQ") + b"\x08\x00", "reserved bits"),
        (peer_greeting() + ready_from(b"REQ") + b"\x05\x00", "command frame with the MORE"),
        (peer_greeting() + ready_from(b"REQ") + frame(b"{}"), "without the empty delimiter"),
        (peer_greeting() + ready_from(b"REQ") + frame(b"id", more=True) * 33, "over 32 frames"),
        (
            peer_greeting() + ready_from(b"REQ") + frame(b"r" * 256, more=True),
            "envelope frame of 256 bytes: routing ids are at most 255",
        ),
        (peer_greeting() + command(b"ERROR", b"\x04oops"), "peer sent ERROR 'oops'"),
        (peer_greeting() + b"\x04\x03\x05REA", "truncated command"),
        (peer_greeting() + command(b"READY", b"\x0bSocket-Type\x00\x00"), "truncated property"),
    ],
)
def test_what_a_rep_socket_refuses(stream: bytes, why: str) -> None:
    conn = RepConnection(LIMIT)
    with pytest.raises(ZmtpError, match=why):
        conn.feed(stream)


@pytest.mark.parametrize("peer", [b"PUB", b"REP", b"ROUTER", b"PAIR", b""])
def test_only_req_and_dealer_peers_are_accepted_and_others_are_told_why(peer: bytes) -> None:
    conn = RepConnection(LIMIT)
    with pytest.raises(ZmtpError, match="a REP socket talks to REQ or DEALER"):
        conn.feed(peer_greeting() + ready_from(peer))
    # The peer gets an ERROR command before the connection closes.
    assert bytes(conn.outgoing) == command(b"ERROR", b"\x13Invalid socket type")


def test_a_req_peer_with_an_identity_property_is_accepted() -> None:
    conn = RepConnection(LIMIT)
    conn.feed(peer_greeting(minor=0) + ready_from(b"REQ", identity=b"chart-1"))
    assert conn.ready and conn.feed(request(b"x"))[0].body == b"x"
