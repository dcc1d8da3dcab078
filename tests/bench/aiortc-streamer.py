#!/usr/bin/python3
"""The benchmark's baseline: a seed-style WebRTC streamer written with
Debian's python3-aiortc, as the project's seed would have been.

Each viewer gets its own VideoStreamTrack that draws a moving test picture
(SMPTE-like bars sliding 4 pixels a frame, like videotestsrc
horizontal-speed=4), writes the same latency stamp as picamrtc's
latencystamp element (docs/latency.md: sync word, capture time in µs,
frame counter, CRC-32, 16-pixel blocks at the top) and is paced by aiortc's
own asyncio.sleep() clock at 30 fps; aiortc encodes it (its H.264 encoder:
libx264 through PyAV, one encoder per viewer) and sends it.

It answers the seed's HTTP shape, the one picamrtc-gateway keeps
(docs/http-api.md): POST /api/start-webrtc {"type":"offer","sdp":...} ->
{"webrtc_answer":..., "session":...}, POST /api/stop-webrtc, GET
/api/devices and /api/turn-credentials, and serves the web client, so the
same page and the same benchmark harness measure both. WHEP is not served
(404), so the page falls back to the bulk API as it does with the seed.

    /usr/bin/python3 tests/bench/aiortc-streamer.py --www data/www \
        --listen 127.0.0.1:8090 [--width 1280 --height 720 --fps 30]

Only for the benchmark: loopback only, no authentication.
"""

import argparse
import asyncio
import json
import logging
import mimetypes
import os
import secrets
import sys
import zlib

import aioice.ice
import aiortc.mediastreams
import numpy as np
from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from av import VideoFrame

STAMP_SYNC = 0xACE1
STAMP_BITS = 144
BLOCK = 16
Y_BLACK, Y_WHITE = 16, 235

# SMPTE colour bars (75 %) as Y, U, V
BARS = [(180, 128, 128), (162, 44, 142), (131, 156, 44), (112, 72, 58),
        (84, 184, 198), (65, 100, 212), (35, 212, 114)]


def stamp_bits(time_us, frame):
    payload = time_us.to_bytes(8, "big") + (frame & 0xFFFFFFFF).to_bytes(4, "big")
    crc = zlib.crc32(payload)
    word = (STAMP_SYNC << 128) | (int.from_bytes(payload, "big") << 32) | crc
    return [(word >> (STAMP_BITS - 1 - i)) & 1 for i in range(STAMP_BITS)]


class Picture:
    """The moving bars, precomputed twice as wide so that a frame is a
    slice (no per-frame drawing beyond the stamp)."""

    def __init__(self, width, height):
        self.width, self.height = width, height
        x = np.arange(2 * width)
        bar = (x % width) * len(BARS) // width
        ys = np.array([b[0] for b in BARS], np.uint8)[bar]
        us = np.array([b[1] for b in BARS], np.uint8)[bar[::2]]
        vs = np.array([b[2] for b in BARS], np.uint8)[bar[::2]]
        # a luma ramp down the picture, so the content is not flat
        ramp = (np.arange(height) * 40 // height).astype(np.uint8)
        self.y = (ys[None, :] + ramp[:, None]).clip(16, 235).astype(np.uint8)
        self.u = np.repeat(us[None, :], height // 2, axis=0)
        self.v = np.repeat(vs[None, :], height // 2, axis=0)
        self.cols = width // BLOCK
        self.rows = -(-STAMP_BITS // self.cols)

    def frame(self, index, time_us):
        w, h = self.width, self.height
        off = (4 * index) % w
        buf = np.empty((h * 3 // 2, w), np.uint8)
        buf[:h] = self.y[:, off:off + w]
        # yuv420p as PyAV lays it out: U then V, each w/2 x h/2, packed
        # two chroma rows per array row
        half = off // 2
        u = self.u[:, half:half + w // 2].reshape(h // 4, w)
        v = self.v[:, half:half + w // 2].reshape(h // 4, w)
        buf[h:h + h // 4] = u
        buf[h + h // 4:] = v
        band = self.rows * BLOCK
        buf[:band] = Y_BLACK
        # the band's chroma rows (band/2 of them) are neutral
        buf[h:h + band // 4] = 128
        buf[h + h // 4:h + h // 4 + band // 4] = 128
        for i, bit in enumerate(stamp_bits(time_us, index)):
            if bit:
                x0 = (i % self.cols) * BLOCK
                y0 = (i // self.cols) * BLOCK
                buf[y0:y0 + BLOCK, x0:x0 + BLOCK] = Y_WHITE
        return buf


class StampedTrack(VideoStreamTrack):
    """One per viewer, as in the seed: its own frames, its own encoder."""

    def __init__(self, picture):
        super().__init__()
        self.picture = picture
        self.count = 0

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        # the frame's scheduled time, as picamrtc stamps its frame's PTS:
        # a late wake-up of the asyncio loop counts as latency for both
        time_us = int((self._start + pts * time_base) * 1_000_000)
        frame = VideoFrame.from_ndarray(
            self.picture.frame(self.count, time_us), format="yuv420p")
        frame.pts, frame.time_base = pts, time_base
        self.count += 1
        return frame


class Streamer:
    def __init__(self, args):
        self.args = args
        self.picture = Picture(args.width, args.height)
        self.sessions = {}
        # VideoStreamTrack.next_timestamp() sleeps VIDEO_PTIME a frame
        aiortc.mediastreams.VIDEO_PTIME = 1 / args.fps

    async def start(self, request):
        try:
            body = await request.json()
            sdp = body["sdp"]
            if body.get("type", "offer") != "offer" or not isinstance(sdp, str):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "bad offer"}, status=400)
        pc = RTCPeerConnection()
        session = secrets.token_hex(16)
        self.sessions[session] = pc

        @pc.on("connectionstatechange")
        async def on_state():
            if pc.connectionState in ("failed", "closed"):
                await self.close(session)

        pc.addTrack(StampedTrack(self.picture))
        await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        logging.info("session %s: answered (%d viewers)", session,
                     len(self.sessions))
        return web.json_response({"webrtc_answer": pc.localDescription.sdp,
                                  "session": session})

    async def close(self, session):
        pc = self.sessions.pop(session, None)
        if pc is not None:
            await pc.close()
            logging.info("session %s: closed (%d viewers)", session,
                         len(self.sessions))

    async def stop(self, request):
        try:
            session = (await request.json())["session"]
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "bad request"}, status=400)
        if session not in self.sessions:
            return web.json_response({"error": "unknown session"}, status=404)
        await self.close(session)
        return web.json_response({})

    async def devices(self, request):
        a = self.args
        return web.json_response([{"id": a.device, "status": {
            "state": "online", "viewers": len(self.sessions),
            "maxViewers": 64, "codec": "H264", "width": a.width,
            "height": a.height, "framerate": a.fps}}])

    async def turn(self, request):
        return web.json_response([])

    async def static(self, request):
        name = request.match_info["name"] or "index.html"
        path = os.path.realpath(os.path.join(self.args.www, name))
        if not path.startswith(os.path.realpath(self.args.www) + os.sep) \
                or not os.path.isfile(path):
            raise web.HTTPNotFound()
        ctype = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if path.endswith(".js"):
            ctype = "text/javascript"
        with open(path, "rb") as f:
            return web.Response(body=f.read(), content_type=ctype,
                                headers={"Cache-Control": "no-cache"})

    async def shutdown(self, app):
        for session in list(self.sessions):
            await self.close(session)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--www", required=True, help="the web client directory")
    p.add_argument("--listen", default="127.0.0.1:8090")
    p.add_argument("--device", default="cam1")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--ice-address", default="127.0.0.1",
                   help="the only host candidate address (aioice skips "
                   "loopback by itself)")
    args = p.parse_args()
    if args.width % (2 * BLOCK) or args.height % 4 or args.width < 160:
        p.error("width must be a multiple of 32 and at least 160, height of 4")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="aiortc-streamer: %(message)s")
    logging.getLogger("aioice").setLevel(logging.WARNING)
    logging.getLogger("aiortc").setLevel(logging.WARNING)
    # the benchmark runs in a namespace with only loopback
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [args.ice_address]

    streamer = Streamer(args)
    app = web.Application(client_max_size=65536)
    app.router.add_post("/api/start-webrtc", streamer.start)
    app.router.add_post("/api/stop-webrtc", streamer.stop)
    app.router.add_get("/api/devices", streamer.devices)
    app.router.add_get("/api/turn-credentials", streamer.turn)
    app.router.add_get("/{name:.*}", streamer.static)
    app.on_shutdown.append(streamer.shutdown)
    host, _, port = args.listen.rpartition(":")
    logging.info("serving http://%s:%s/", host, port)
    web.run_app(app, host=host, port=int(port), print=None,
                access_log=None)


if __name__ == "__main__":
    main()
