"""A minimal RTSP relay server for tests: what an IP camera (or a MediaMTX in front of it) sends.

No RTSP *server* can be installed from the package registries here (MediaMTX is a Go binary that
isn't packaged; ffmpeg's RTSP muxer is only a client), so the tests run this one: a publisher (ffmpeg
with ``-f rtsp -rtsp_transport tcp``) ANNOUNCEs a stream and RECORDs into it; readers DESCRIBE, SETUP
and PLAY it, and receive the publisher's RTP packets interleaved on their RTSP TCP connection
(RFC 2326 §10.12), exactly as from a camera. The video is encoded by the real ffmpeg, the reader is
the real OpenCV/FFmpeg RTSP client; only the relaying of packets is done here.

It runs as its own process (``python rtsp_relay.py PORT``) so a test can kill it outright, and it
reports a freeze honestly: when the publisher stops sending (SIGSTOP), readers stay connected and
receive nothing, which is what a frozen camera looks like on the wire.
"""

from __future__ import annotations

import socket
import socketserver
import sys
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class _Reader:
    sock: socket.socket
    channels: dict[int, int] = field(default_factory=dict)
    """track id -> interleaved RTP channel the reader asked for (RTCP is the next one)."""
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Path:
    sdp: bytes
    publisher_channels: dict[int, int] = field(default_factory=dict)
    readers: list[_Reader] = field(default_factory=list)


_paths: dict[str, _Path] = {}
_paths_lock = threading.Lock()


def _path_of(url: str) -> str:
    path = urlsplit(url).path.strip("/")
    return path


def _track_of(url: str) -> tuple[str, int]:
    """'rtsp://h/cam/streamid=0' -> ('cam', 0); ffmpeg names its tracks 'streamid=N'."""
    path = _path_of(url)
    head, _, last = path.rpartition("/")
    if last.startswith("streamid="):
        return head, int(last.split("=", 1)[1])
    if last.startswith("trackID="):
        return head, int(last.split("=", 1)[1])
    return path, 0


class _Handler(socketserver.BaseRequestHandler):
    def setup(self) -> None:
        self.sock: socket.socket = self.request
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = self.sock.makefile("rb")
        self.session = f"{id(self) & 0xFFFFFFF:08x}"
        self.publishing: str | None = None
        self.reader: _Reader | None = None
        self.reader_path: str | None = None

    def _reply(self, cseq: str, status: str = "200 OK", headers: dict[str, str] | None = None,
               body: bytes = b"") -> None:
        lines = [f"RTSP/1.0 {status}", f"CSeq: {cseq}", f"Session: {self.session};timeout=60"]
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        if body:
            lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        if self.reader is not None:
            with self.reader.lock:
                self.sock.sendall(data)
        else:
            self.sock.sendall(data)

    def handle(self) -> None:
        try:
            self._loop()
        except (OSError, ValueError):
            pass
        finally:
            self._cleanup()

    def _loop(self) -> None:
        while True:
            first = self.rfile.read(1)
            if not first:
                return
            if first == b"$":
                hdr = self.rfile.read(3)
                if len(hdr) < 3:
                    return
                channel, length = hdr[0], int.from_bytes(hdr[1:3], "big")
                payload = self.rfile.read(length)
                if len(payload) < length:
                    return
                if self.publishing is not None:
                    self._forward(channel, payload)
                continue  # readers' RTCP receiver reports: ignored
            line = first + self.rfile.readline()
            headers: dict[str, str] = {}
            while True:
                h = self.rfile.readline()
                if not h:
                    return
                if h in (b"\r\n", b"\n"):
                    break
                k, _, v = h.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            body = b""
            if "content-length" in headers:
                body = self.rfile.read(int(headers["content-length"]))
            method, url, _ = line.decode("latin-1").split(" ", 2)
            self._request(method, url, headers, body)

    def _request(self, method: str, url: str, headers: dict[str, str], body: bytes) -> None:
        cseq = headers.get("cseq", "0")
        if method == "OPTIONS":
            self._reply(cseq, headers={
                "Public": "OPTIONS, DESCRIBE, ANNOUNCE, SETUP, PLAY, RECORD, TEARDOWN, GET_PARAMETER"})
        elif method == "ANNOUNCE":
            path = _path_of(url)
            with _paths_lock:
                old = _paths.get(path)
                _paths[path] = _Path(sdp=body)
            if old:
                for r in old.readers:
                    r.sock.close()
            self.publishing = path
            self._reply(cseq)
        elif method == "SETUP":
            transport = headers.get("transport", "")
            if "TCP" not in transport.upper() or "interleaved=" not in transport:
                self._reply(cseq, "461 Unsupported Transport")
                return
            rtp = int(transport.split("interleaved=", 1)[1].split("-", 1)[0].split(";", 1)[0])
            path, track = _track_of(url)
            with _paths_lock:
                p = _paths.get(path)
            if p is None:
                self._reply(cseq, "404 Not Found")
                return
            if self.publishing is not None:
                p.publisher_channels[track] = rtp
            else:
                if self.reader is None:
                    self.reader = _Reader(self.sock)
                    self.reader_path = path
                self.reader.channels[track] = rtp
            self._reply(cseq, headers={"Transport": f"RTP/AVP/TCP;unicast;interleaved={rtp}-{rtp + 1}"})
        elif method == "DESCRIBE":
            with _paths_lock:
                p = _paths.get(_path_of(url))
            if p is None:
                self._reply(cseq, "404 Not Found")
                return
            base = url if url.endswith("/") else url + "/"
            self._reply(cseq, headers={"Content-Base": base, "Content-Type": "application/sdp"}, body=p.sdp)
        elif method == "RECORD":
            self._reply(cseq)
        elif method == "PLAY":
            assert self.reader is not None and self.reader_path is not None
            self._reply(cseq, headers={"Range": "npt=0.000-"})
            with _paths_lock:
                p = _paths.get(self.reader_path)
                if p is not None:
                    p.readers.append(self.reader)
        elif method == "TEARDOWN":
            self._reply(cseq)
            raise ValueError("teardown")
        else:  # GET_PARAMETER keep-alives and the rest
            self._reply(cseq)

    def _forward(self, channel: int, payload: bytes) -> None:
        assert self.publishing is not None
        with _paths_lock:
            p = _paths.get(self.publishing)
        if p is None:
            return
        for track, pub_rtp in p.publisher_channels.items():  # noqa: B007 - used after the loop
            if channel in (pub_rtp, pub_rtp + 1):
                offset = channel - pub_rtp
                break
        else:
            return
        for r in list(p.readers):
            ch = r.channels.get(track)
            if ch is None:
                continue
            frame = b"$" + bytes([ch + offset]) + len(payload).to_bytes(2, "big") + payload
            try:
                with r.lock:
                    r.sock.sendall(frame)
            except OSError:
                with _paths_lock:
                    if r in p.readers:
                        p.readers.remove(r)

    def _cleanup(self) -> None:
        with _paths_lock:
            if self.publishing is not None:
                p = _paths.pop(self.publishing, None)
                if p is not None:  # a camera that goes away takes its viewers' sessions with it
                    for r in p.readers:
                        try:
                            r.sock.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
            elif self.reader is not None:
                for p in _paths.values():
                    if self.reader in p.readers:
                        p.readers.remove(self.reader)


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main() -> None:
    port = int(sys.argv[1])
    with _Server(("127.0.0.1", port), _Handler) as srv:
        print("listening", flush=True)
        srv.serve_forever()


if __name__ == "__main__":
    main()
