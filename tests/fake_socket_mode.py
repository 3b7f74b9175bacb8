"""A real WebSocket server on 127.0.0.1 speaking Slack's Socket Mode envelope protocol.

Just enough RFC 6455 for slack-sdk's built-in client: the upgrade handshake, unmasked text
frames from the server, masked frames from the client, ping → pong. FakeSlack's
`apps.connections.open` hands out this server's URL. Tests push envelopes and read the acks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import socket
import struct
import threading

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


def _frame(opcode: int, data: bytes) -> bytes:
    head = bytes([0x80 | opcode])
    if len(data) < 126:
        return head + bytes([len(data)]) + data
    if len(data) < 1 << 16:
        return head + bytes([126]) + struct.pack("!H", len(data)) + data
    return head + bytes([127]) + struct.pack("!Q", len(data)) + data


class FakeSocketMode:
    def __init__(self) -> None:
        self.acks: queue.Queue[dict] = queue.Queue()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._conn: socket.socket | None = None
        self._connected = threading.Event()
        self._send_lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._listener.getsockname()[1]}/link/?ticket=placeholder"

    def __enter__(self) -> FakeSocketMode:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        for sock in (self._conn, self._listener):
            if sock is not None:
                sock.close()

    def send(self, message: dict, timeout: float = 10) -> None:
        """Push one JSON message (hello, an envelope) once the client is connected."""
        if not self._connected.wait(timeout):
            raise TimeoutError("the Socket Mode client never connected")
        assert self._conn is not None
        with self._send_lock:
            self._conn.sendall(_frame(TEXT, json.dumps(message).encode()))

    def _serve(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        self._conn = conn
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(1024)
        headers = dict(
            line.split(": ", 1) for line in request.decode().split("\r\n")[1:] if ": " in line
        )
        key = headers["Sec-WebSocket-Key"].strip()
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()  # noqa: S324  (RFC 6455)
        conn.sendall(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        self._connected.set()
        self._read_frames(conn)

    def _read_exact(self, conn: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def _read_frames(self, conn: socket.socket) -> None:
        try:
            while True:
                first, second = self._read_exact(conn, 2)
                opcode, length = first & 0x0F, second & 0x7F
                if length == 126:
                    (length,) = struct.unpack("!H", self._read_exact(conn, 2))
                elif length == 127:
                    (length,) = struct.unpack("!Q", self._read_exact(conn, 8))
                mask = self._read_exact(conn, 4) if second & 0x80 else b"\0\0\0\0"
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(self._read_exact(conn, length)))
                if opcode == TEXT:
                    self.acks.put(json.loads(data))
                elif opcode == PING:
                    with self._send_lock:
                        conn.sendall(_frame(PONG, data))
                elif opcode == CLOSE:
                    return
        except (OSError, ConnectionError):
            return
