"""ZMTP 3.0, the ZeroMQ wire protocol, for the REP side of one TCP connection (no I/O here).

The EA's REQ socket is libzmq itself; this module speaks its side of the conversation so the
sidecar can answer on a plain socket in the thread that computes the verdict. (libzmq's own
REP socket hands every message to and from an I/O thread: two thread wake-ups per request,
which on a 2-vCPU VM cost more than the rest of the transport; see bench/README.md.)

Only what a REP peer needs is implemented: the NULL security mechanism, the READY handshake
(peers must be REQ or DEALER), message frames, and the REP envelope (every frame up to the
first empty one is echoed back in front of the reply). PING is answered with PONG for peers
that send heartbeats anyway; other commands after the handshake are ignored, as ZMTP allows.
Spec: https://rfc.zeromq.org/spec/23/ (ZMTP 3.0) and /spec/37/ (3.1, PING/PONG).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

# Frames above this end the connection (libzmq's MAXMSGSIZE does the same); anything between the
# protocol limit and this is drained and answered with TOO_LARGE.
MAX_FRAME_BYTES = 1024 * 1024

# What may come before the delimiter: libzmq's routing ids are at most 255 bytes (a correlating
# REQ's are 4). Bounded so a connection holds at most ~8 KiB of envelope, not 32 big frames.
MAX_ROUTING_FRAME = 255
MAX_ENVELOPE_FRAMES = 32

GREETING_BYTES = 64
_SIGNATURE_FIRST, _SIGNATURE_LAST = 0xFF, 0x7F
_NULL_MECHANISM = b"NULL".ljust(20, b"\0")
_MORE, _LONG, _COMMAND = 0x01, 0x02, 0x04
_PEER_TYPES = (b"REQ", b"DEALER")  # what a REP socket may talk to
_LONG_SIZE = struct.Struct(">Q")
_PROPERTY_SIZE = struct.Struct(">I")


def max_frame_bytes(max_message_bytes: int) -> int:
    return max(MAX_FRAME_BYTES, 2 * max_message_bytes)


class ZmtpError(Exception):
    """The peer broke the protocol; the connection must be closed. The message says how."""


class Request(NamedTuple):
    envelope: tuple[bytes, ...]  # routing frames and the empty delimiter, echoed in the reply
    # The frames after the delimiter, joined; the decoder judges the size. When they add up to
    # more than one frame may hold, they are drained and this is a stand-in of limit + 1 bytes,
    # so the decoder still answers TOO_LARGE.
    body: bytes


def _frame_header(flags: int, size: int) -> bytes:
    if size < 256:
        return bytes((flags, size))
    return bytes((flags | _LONG,)) + _LONG_SIZE.pack(size)


def _command(name: bytes, data: bytes) -> bytes:
    body = bytes((len(name),)) + name + data
    return _frame_header(_COMMAND, len(body)) + body


def greeting() -> bytes:
    """Our greeting: signature, version 3.0, the NULL mechanism, not a server, filler."""
    return (
        bytes((_SIGNATURE_FIRST,))
        + b"\0" * 8
        + bytes((_SIGNATURE_LAST, 3, 0))
        + _NULL_MECHANISM
        + b"\0"
        + b"\0" * 31
    )


def ready() -> bytes:
    name = b"Socket-Type"
    return _command(b"READY", bytes((len(name),)) + name + _PROPERTY_SIZE.pack(3) + b"REP")


def error_command(reason: str) -> bytes:
    text = reason.encode("ascii", "replace")[:255]
    return _command(b"ERROR", bytes((len(text),)) + text)


_REQ_ENVELOPE = (b"",)  # what a plain REQ socket sends: the empty delimiter alone
_DELIMITER_FRAME = bytes((_MORE, 0))


def reply_frames(envelope: tuple[bytes, ...], body: bytes) -> bytes:
    if envelope == _REQ_ENVELOPE:  # the EA's case, once per tick: keep it short
        n = len(body)
        if n < 256:
            return _DELIMITER_FRAME + bytes((0, n)) + body
        return _DELIMITER_FRAME + b"\x02" + n.to_bytes(8, "big") + body
    parts = [_frame_header(_MORE, len(f)) + f for f in envelope]
    parts.append(_frame_header(0, len(body)))
    parts.append(body)
    return b"".join(parts)


def _properties(data: bytes) -> dict[bytes, bytes]:
    props, i = {}, 0
    while i < len(data):
        size = data[i]
        name = data[i + 1 : i + 1 + size]
        i += 1 + size
        if len(name) != size or i + 4 > len(data):
            raise ZmtpError("READY: truncated property")
        (value_size,) = _PROPERTY_SIZE.unpack_from(data, i)
        i += 4
        value = data[i : i + value_size]
        if len(value) != value_size:
            raise ZmtpError("READY: truncated property value")
        i += value_size
        props[name.lower()] = value
    return props


class RepConnection:
    """The protocol state of one connection: feed it bytes as they arrive, take the requests
    it returns, build each answer with `reply_frames`. `outgoing` collects what the protocol
    itself must send (PONG, ERROR); the server sends it before closing or replying."""

    def __init__(self, max_message_bytes: int) -> None:
        self.max_body = max_message_bytes
        self.max_frame = max_frame_bytes(max_message_bytes)
        self.ready = False  # greeting and READY received
        self.outgoing = bytearray()
        self._buf = bytearray()
        self._greeted = False
        # The message being assembled: envelope frames, then body frames.
        self._envelope: list[bytes] = []
        self._in_body = False
        self._body: list[bytes] = []
        self._body_size = 0
        self._held = 0  # bytes of the message being assembled kept in _envelope and _body

    def pending_bytes(self) -> int:
        """What this connection holds for a message not yet complete (0 between messages): the
        server bounds how long that may last and how much all connections hold together."""
        return len(self._buf) + self._held

    def feed(self, data: bytes) -> list[Request]:
        """Take received bytes; return the requests completed by them (usually one)."""
        if self.ready and not self._buf and not self._envelope:
            request = self._one_req_message(data)
            if request is not None:
                return [request]
        buf = self._buf
        buf += data
        if not self._greeted:
            if len(buf) < GREETING_BYTES:
                self._check_signature(bytes(buf))
                return []
            self._check_greeting(bytes(buf[:GREETING_BYTES]))
            del buf[:GREETING_BYTES]
            self._greeted = True
        requests: list[Request] = []
        pos, end = 0, len(buf)
        while end - pos >= 2:
            flags = buf[pos]
            if flags & ~(_MORE | _LONG | _COMMAND):
                raise ZmtpError(f"frame flags 0x{flags:02x}: reserved bits set")
            if flags & _LONG:
                if end - pos < 9:
                    break
                (size,) = _LONG_SIZE.unpack_from(buf, pos + 1)
                start = pos + 9
            else:
                size = buf[pos + 1]
                start = pos + 2
            if size > self.max_frame:
                raise ZmtpError(f"frame of {size} bytes: over the {self.max_frame}-byte limit")
            if end - start < size:
                break
            frame = bytes(buf[start : start + size])
            pos = start + size
            if flags & _COMMAND:
                if flags & _MORE:
                    raise ZmtpError("command frame with the MORE flag")
                self._command(frame)
                continue
            if not self.ready:
                raise ZmtpError("message before the READY command")
            request = self._frame(frame, bool(flags & _MORE))
            if request is not None:
                requests.append(request)
        if pos == end:
            self._buf = bytearray()  # let a big frame's buffer go, not only its bytes
        else:
            del buf[:pos]
        return requests

    def _one_req_message(self, data: bytes) -> Request | None:
        """The EA's case, once per tick: `data` is exactly one plain REQ request (delimiter,
        then one body frame). None sends it down the general path, which judges everything."""
        if len(data) < 4 or data[0] != _MORE or data[1] != 0:
            return None
        flags = data[2]
        if flags == 0:
            size, start = data[3], 4
        elif flags == _LONG and len(data) >= 11:
            size, start = int.from_bytes(data[3:11], "big"), 11
        else:
            return None
        if start + size != len(data) or size > self.max_body:
            return None
        return Request(_REQ_ENVELOPE, data[start:])

    def _check_signature(self, head: bytes) -> None:
        # Refuse a peer that is not ZMTP at all as soon as its first byte arrives (an HTTP
        # client or a port scanner), rather than after a handshake timeout.
        if head and head[0] != _SIGNATURE_FIRST:
            raise ZmtpError("not a ZeroMQ peer (bad signature)")
        if len(head) >= 10 and not head[9] & 1:
            raise ZmtpError("not a ZeroMQ peer (bad signature)")
        if len(head) >= 11 and head[10] < 3:
            raise ZmtpError(f"ZMTP version {head[10]} peer: libzmq 4 or later is needed")

    def _check_greeting(self, greeting_: bytes) -> None:
        self._check_signature(greeting_)
        if greeting_[12:32] != _NULL_MECHANISM:
            mechanism = greeting_[12:32].rstrip(b"\0").decode("ascii", "replace")
            raise ZmtpError(f"security mechanism {mechanism!r}: only NULL is supported")

    def _command(self, frame: bytes) -> None:
        if not frame or len(frame) < 1 + frame[0]:
            raise ZmtpError("truncated command")
        name, data = frame[1 : 1 + frame[0]], frame[1 + frame[0] :]
        if name == b"READY":
            if self.ready:
                raise ZmtpError("second READY command")
            peer = _properties(data).get(b"socket-type", b"")
            if peer not in _PEER_TYPES:
                shown = peer.decode("ascii", "replace") or "none"
                self.outgoing += error_command("Invalid socket type")
                raise ZmtpError(f"peer socket type {shown}: a REP socket talks to REQ or DEALER")
            self.ready = True
        elif name == b"ERROR":
            reason = data[1 : 1 + data[0]].decode("ascii", "replace") if data else ""
            raise ZmtpError(f"peer sent ERROR {reason!r}")
        elif not self.ready:
            raise ZmtpError(f"command {name.decode('ascii', 'replace')!r} before READY")
        elif name == b"PING" and len(data) >= 2:
            self.outgoing += _command(b"PONG", data[2:18])  # the ping's context, at most 16

    def _frame(self, frame: bytes, more: bool) -> Request | None:
        if not self._in_body:
            if more:
                if len(frame) > MAX_ROUTING_FRAME:
                    raise ZmtpError(
                        f"envelope frame of {len(frame)} bytes: routing ids are at most "
                        f"{MAX_ROUTING_FRAME}"
                    )
                self._envelope.append(frame)
                self._held += len(frame)
                if not frame:  # the delimiter: the body follows
                    self._in_body = True
                elif len(self._envelope) > MAX_ENVELOPE_FRAMES:
                    raise ZmtpError(f"request envelope of over {MAX_ENVELOPE_FRAMES} frames")
                return None
            # A last frame before any delimiter: no envelope to answer to (libzmq's REP drops
            # such messages; a peer that sends them is not a REQ socket).
            raise ZmtpError("request without the empty delimiter frame")
        self._body_size += len(frame)
        if self._body_size <= self.max_frame:
            self._body.append(frame)  # beyond one frame's bound, parts are drained, not kept
            self._held += len(frame)
        if more:
            return None
        if self._body_size > self.max_frame:
            body = b"\0" * (self.max_body + 1)
        else:
            body = b"".join(self._body)
        request = Request(tuple(self._envelope), body)
        self._envelope, self._in_body, self._body, self._body_size = [], False, [], 0
        self._held = 0
        return request
