"""A TCP proxy between an MQTT client and a real broker that the test controls.

It parses MQTT packet boundaries (fixed header + remaining length) in the broker->client direction so
it can drop whole PUBACK packets (and PUBLISH packets, i.e. HQ's acks to the post) at a chosen rate,
and it can cut every connection on demand. Nothing
else is altered: it is the link, not a fake broker.
"""

from __future__ import annotations

import random
import socket
import threading

PUBACK = 0x40
PUBLISH = 0x30


def _split_packets(buf: bytearray) -> list[bytes]:
    """Remove and return every complete MQTT packet at the front of ``buf``."""
    out: list[bytes] = []
    while True:
        if len(buf) < 2:
            return out
        length = 0
        mult = 1
        i = 1
        while True:
            if i >= len(buf):
                return out
            b = buf[i]
            length += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
            if i > 4:
                raise ValueError("malformed remaining length")
        total = i + length
        if len(buf) < total:
            return out
        out.append(bytes(buf[:total]))
        del buf[:total]


class MqttProxy:
    def __init__(self, broker_host: str, broker_port: int, *, drop_puback: float = 0.0,
                 drop_publish: float = 0.0, seed: int = 1) -> None:
        self.broker = (broker_host, broker_port)
        self.drop_puback = drop_puback
        self.drop_publish = drop_publish
        self.dropped_publishes = 0
        self.rng = random.Random(seed)
        self.dropped = 0
        self.forwarded_pubacks = 0
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind(("127.0.0.1", 0))
        self._lsock.listen(8)
        self.port = int(self._lsock.getsockname()[1])
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False
        t = threading.Thread(target=self._accept, daemon=True, name="proxy-accept")
        t.start()
        self._threads.append(t)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._lsock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.broker, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for src, dst, filt in ((client, upstream, False), (upstream, client, True)):
                t = threading.Thread(target=self._pump, args=(src, dst, filt), daemon=True, name="proxy-pump")
                t.start()
                self._threads.append(t)

    def _pump(self, src: socket.socket, dst: socket.socket, filt: bool) -> None:
        buf = bytearray()
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not filt:
                    dst.sendall(data)
                    continue
                buf += data
                for pkt in _split_packets(buf):
                    if pkt[0] & 0xF0 == PUBACK:
                        with self._lock:
                            drop = self.rng.random() < self.drop_puback
                            if drop:
                                self.dropped += 1
                            else:
                                self.forwarded_pubacks += 1
                        if drop:
                            continue
                    elif pkt[0] & 0xF0 == PUBLISH and self.drop_publish:
                        with self._lock:
                            drop = self.rng.random() < self.drop_publish
                            self.dropped_publishes += drop
                        if drop:
                            continue
                    dst.sendall(pkt)
        except (OSError, ValueError):
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        """Break every open connection (both sides see the link drop)."""
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self._closed = True
        self._lsock.close()
        self.cut()
        for t in self._threads:
            t.join(2)
