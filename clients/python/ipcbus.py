"""A reference ipcbus client for Python 3: the standard library plus cbor2.

Written from PROTOCOL.md as the worked example of its "Writing a client"
section. One connection, one reader thread; handlers run on worker threads,
so a handler may itself call ``request``.

    from ipcbus import connect
    peer = connect("/tmp/app.sock", name="py", token=None)
    peer.on("job", lambda data, sender: print("job", data, "from", sender))
    peer.handle("/py/add", lambda data, ctx: data["a"] + data["b"])
    print(peer.request("/ipcbus/echo", {"hello": "world"}))
    peer.send(0, "job", [1, 2, 3])
    peer.broadcast("tick", None)
    peer.close()
"""

import datetime
import itertools
import os
import re
import socket
import struct
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import cbor2

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024 * 1024
_FLOAT_BEYOND = 2**32  # PROTOCOL.md §3: envelope integers of 2**32 and beyond go as float64


class IpcError(Exception):
    """An error with the stable ``code`` of PROTOCOL.md §8.4."""

    def __init__(self, message, code="ipc_error", name="IpcError"):
        super().__init__(message)
        self.code = code
        self.name = name


class RemoteError(IpcError):
    """A request handler threw: ``remote_name`` and ``remote_code`` are the handler's own."""

    def __init__(self, message, remote_name, remote_code=None):
        super().__init__(message, "remote_error", "RemoteError")
        self.remote_name = remote_name
        self.remote_code = remote_code


def _envelope_value(value):
    # bool is an int in Python: leave it alone.
    if isinstance(value, int) and not isinstance(value, bool) and not -_FLOAT_BEYOND <= value < _FLOAT_BEYOND:
        if abs(value) > 2**53 - 1:
            raise ValueError(f"Envelope integer {value} is outside ±(2**53-1)")
        return float(value)
    return value


def encode_envelope(envelope):
    """One envelope as CBOR: integers outside -2**32..2**32-1 as float64, never with an 8-byte head."""
    return cbor2.dumps({key: _envelope_value(value) for key, value in envelope.items()})


def _tag_hook(decoder, tag):
    # cbor-x writes a JavaScript Map as tag 259 around a map: take the map.
    if tag.tag == 259:
        return dict(tag.value) if not isinstance(tag.value, dict) else tag.value
    return tag


def encode_data(data):
    """User data as one CBOR item (datetimes as tag 1, sets as tag 258, ints beyond 64 bits as bignums)."""
    return cbor2.dumps(data, datetime_as_timestamp=True, timezone=datetime.timezone.utc)


def decode_data(payload):
    """Decodes a ``d`` payload; tag 259 (a JavaScript Map) becomes a dict."""
    return cbor2.loads(payload, tag_hook=_tag_hook)


def _error_from_record(e):
    if not isinstance(e, dict):
        return IpcError(f"Malformed error record {e!r}", "protocol_error", "ProtocolError")
    if e.get("sys"):
        return IpcError(str(e.get("message")), str(e.get("code", "ipc_error")), str(e.get("name", "IpcError")))
    return RemoteError(str(e.get("message")), str(e.get("name", "Error")), e.get("code"))


def _pattern_record(pattern):
    if isinstance(pattern, re.Pattern):
        # The hub matches with ECMAScript regular expressions, in linear time: keep to the syntax both share, without
        # lookarounds or backreferences, which the hub refuses (protocol_error; PROTOCOL.md 8.1).
        return {"regexp": {"source": pattern.pattern, "flags": "i" if pattern.flags & re.IGNORECASE else ""}}
    if pattern.endswith("*"):
        return {"prefix": pattern[:-1]}
    return {"exact": pattern}


def _matches(record, route):
    if "exact" in record:
        return route == record["exact"]
    if "prefix" in record:
        return route.startswith(record["prefix"])
    flags = re.IGNORECASE if "i" in record["regexp"]["flags"] else 0
    return re.search(record["regexp"]["source"], route, flags) is not None


class Peer:
    """A connected peer. Make one with :func:`connect`."""

    def __init__(self, sock, max_frame_bytes=MAX_FRAME_BYTES):
        self._sock = sock
        self._max = max_frame_bytes
        self._write_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending = {}  # r -> [threading.Event, envelope or None, raw body or None]
        self._alerts = {}
        self._routes = []  # [(record, handler)]
        self._workers = ThreadPoolExecutor(max_workers=8)
        self._alert_worker = ThreadPoolExecutor(max_workers=1)  # alerts stay in order
        self.id = None
        self.peers = {}
        self.errors = deque(maxlen=1000)  # the latest error records: from the hub (kind "error") or local
        self.undeliverable = deque(maxlen=1000)  # the latest undeliverable envelopes
        self.closed = threading.Event()
        self.close_reason = None

    # ---- frames ----------------------------------------------------------------

    def _write(self, envelope):
        body = encode_envelope(envelope)
        if len(body) > self._max:
            raise IpcError(f"Frame of {len(body)} bytes exceeds maxFrameBytes {self._max}", "frame_too_large")
        with self._write_lock:
            self._sock.sendall(struct.pack(">I", len(body)) + body)

    def _read_exact(self, n):
        chunks = []
        while n > 0:
            chunk = self._sock.recv(min(n, 1 << 20))
            if not chunk:
                raise EOFError("connection closed")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _read_frame(self):
        (length,) = struct.unpack(">I", self._read_exact(4))
        if length > self._max:
            raise IpcError(f"Frame of {length} bytes exceeds maxFrameBytes {self._max}", "frame_too_large")
        body = self._read_exact(length)
        return body, cbor2.loads(body)

    def _handshake(self, hello, timeout):
        self._sock.settimeout(timeout)
        self._write(hello)
        _, m = self._read_frame()
        self._sock.settimeout(None)
        if m.get("k") == "welcome":
            self.id = m["id"]
            self.peers = {p["id"]: p for p in m["peers"]}
            threading.Thread(target=self._read_loop, daemon=True).start()
            return
        raise _error_from_record(m.get("e")) if m.get("k") in ("refuse", "error") else IpcError(f"Unexpected {m!r}")

    def _read_loop(self):
        try:
            while True:
                body, m = self._read_frame()
                self._dispatch(body, m)
        except Exception as err:  # the connection ended, or the hub sent something that is not CBOR
            self.close_reason = err
        finally:
            self.closed.set()
            for waiter in list(self._pending.values()):
                waiter[0].set()

    def _dispatch(self, body, m):
        k = m.get("k")
        if k == "a":
            handler = self._alerts.get(m["n"]) or self._alerts.get("*")
            if handler:
                self._alert_worker.submit(self._deliver, handler, m)
        elif k == "q":
            self._workers.submit(self._serve, m)
        elif k in ("p", "x"):
            waiter = self._pending.get(m.get("r"))
            if waiter:
                waiter[1], waiter[2] = m, body
                waiter[0].set()
        elif k == "join":
            self.peers[m["peer"]["id"]] = m["peer"]
        elif k == "leave":
            self.peers.pop(m["id"], None)
        elif k == "members":  # joins and leaves batched by the hub of a large bus, in order (PROTOCOL.md §5)
            for change in m["changes"]:
                if "join" in change:
                    self.peers[change["join"]["id"]] = change["join"]
                else:
                    self.peers.pop(change["leave"], None)
        elif k == "error":
            self.errors.append(m.get("e"))
        elif k == "undeliverable":
            self.undeliverable.append(m)
        # busy, room, close and kinds this client does not know: nothing to do (PROTOCOL.md §12).

    def _deliver(self, handler, m):
        try:
            data = decode_data(m["d"])
        except Exception as err:  # PROTOCOL.md §7: a payload that does not decode is discarded
            self.errors.append({"name": "ProtocolError", "message": f"Undecodable alert {m['n']}: {err}",
                                "code": "protocol_error"})
            return
        handler(data, m["f"])

    def _serve(self, m):
        answer = {"k": "p", "f": self.id, "t": m["f"], "r": m["r"]}
        for record, handler in self._routes:
            if _matches(record, m["u"]):
                try:
                    answer["d"] = encode_data(handler(decode_data(m["d"]), {"route": m["u"], "sender": m["f"]}))
                except Exception as err:
                    code = getattr(err, "code", None)
                    e = {"name": type(err).__name__, "message": str(err)}
                    if isinstance(code, str):
                        e["code"] = code
                    answer = {**answer, "k": "x", "e": e}
                break
        else:
            message = f"Peer {self.id} has no handler for route {m['u']}"
            answer = {**answer, "k": "x", "e": {"name": "NoResponderError", "message": message,
                                                 "code": "no_handler_found", "sys": True}}
        try:
            self._write(answer)
        except OSError:
            pass  # the connection is gone: the hub answers the requester with peer_left

    # ---- the API -----------------------------------------------------------------

    def _resolve(self, to):
        if isinstance(to, str):
            for info in self.peers.values():
                if info.get("name") == to:
                    return info["id"]
            raise IpcError(f"No peer named {to} is connected", "no_such_peer", "NoSuchPeerError")
        return to

    def send(self, to, name, data=cbor2.undefined):
        """Sends alert ``name`` to peer ``to`` (an id or a name); no data is sent as CBOR undefined, as ipcbus does."""
        self._write({"k": "a", "f": self.id, "t": self._resolve(to), "n": name, "d": encode_data(data)})

    def broadcast(self, name, data=cbor2.undefined):
        """Sends alert ``name`` to every peer, this one included."""
        self._write({"k": "a", "f": self.id, "n": name, "d": encode_data(data)})

    def on(self, name, handler):
        """Calls ``handler(data, sender)`` for each alert ``name`` ("*": alerts with no handler of their own)."""
        self._alerts[name] = handler

    def handle(self, pattern, handler):
        """Serves a route: "/x" exactly, "/x/*" by prefix, or a compiled ``re`` pattern. ``handler(data, ctx)``."""
        self._routes.append((_pattern_record(pattern), handler))
        self._write({"k": "handle", "patterns": [record for record, _ in self._routes]})

    def request(self, route, data=cbor2.undefined, to=None, timeout=10.0):
        """Sends a request and returns the answer's data; raises IpcError (code) or RemoteError."""
        m, _ = self.request_envelope(route, data, to=to, timeout=timeout)
        if m["k"] == "x":
            raise _error_from_record(m.get("e"))
        return decode_data(m["d"])

    def request_envelope(self, route, data=cbor2.undefined, to=None, timeout=10.0, rid=None, payload=None):
        """Like :meth:`request`, but returns the answer's envelope and raw body.

        ``rid``: the request id to use; ``payload``: the CBOR bytes of one item to send as ``d`` instead of ``data``.
        """
        r = next(self._ids) if rid is None else rid
        waiter = [threading.Event(), None, None]
        self._pending[r] = waiter
        try:
            d = encode_data(data) if payload is None else payload
            q = {"k": "q", "f": self.id, "r": r, "u": route, "d": d, "w": int(timeout * 1000)}
            if to is not None:
                q["t"] = self._resolve(to)
            self._write(q)
            if not waiter[0].wait(timeout) or waiter[1] is None:
                if self.closed.is_set():
                    raise IpcError(f"Connection closed before the answer to {route}", "closed", "ClosedError")
                raise IpcError(f"Request {route} timed out after {timeout} s", "timeout", "TimeoutError")
            return waiter[1], waiter[2]
        finally:
            self._pending.pop(r, None)

    def close(self):
        """Says bye and closes the connection."""
        try:
            self._write({"k": "bye"})
        except OSError:
            pass
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self.closed.wait(5)
        self._workers.shutdown(wait=False)
        self._alert_worker.shutdown(wait=False)


def connect(path, name=None, token=None, timeout=5.0, max_frame_bytes=MAX_FRAME_BYTES):
    """Connects to the hub at ``path`` and does the handshake; raises IpcError with the refusal's code."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(path)
    hello = {"k": "hello", "v": PROTOCOL_VERSION, "pid": os.getpid(), "runtime": "python"}
    if name is not None:
        hello["name"] = name
    if token is not None:
        hello["token"] = token
    peer = Peer(sock, max_frame_bytes)
    try:
        peer._handshake(hello, timeout)
    except BaseException:
        sock.close()
        raise
    return peer
