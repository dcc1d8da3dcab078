#!/usr/bin/env python3
"""Relay fan-out benchmark (issue 14, docs/scaling.md): the camera
(picamrtc --source test, 1280x720 30 fps, x264enc) publishes once to Janus
1.1.2 (data/janus/), and N relayed viewers (pcr-test-viewer --relay) watch
through Janus. Measured over a window with 1 viewer, then with N: the
camera's CPU (% of one core) and the UDP it sends (kbit/s, nftables on its
sockets' ports), Janus' CPU, and every viewer's frame rate. Prints a
markdown table.

    tests/bench/relay-fanout.py [--viewers N] [--window S] [--decode D]
        [--build DIR] [--smoke]

What "frames" means: the first D viewers (default 1) decode 1280x720 H.264
with avdec_h264 like a browser would; the others (--no-decode) depayload
RTP and count whole access units out of h264parse, so that 49 software
decoders do not take the two cores from the camera and Janus (which would
measure this machine's decoding, not the relay). Either way each viewer is
a real WebRTC peer of Janus (ICE, DTLS, SRTP, RTCP) in one process.

--smoke: 5 viewers, 5 s windows (under a minute; meson suite bench). The
full run (50 viewers) is by hand. Inside a private network namespace with
loopback only (tests/pcrtest.py); nothing leaves the machine."""

import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..'))
sys.path.insert(0, os.path.join(HERE, '..', 'integration'))

import pcrtest                                       # noqa: E402
from pcrtest import check, log                      # noqa: E402
from relay import (RelayEnv, SentCounter, cpu_seconds,  # noqa: E402
                   expect_relayed_frames, relay_of)


def options():
    """The command line, carried into the namespace by the environment
    (pcrtest re-executes the script with the case name only)."""
    args = sys.argv[1:]
    if os.environ.get(pcrtest.NS_MARK) == '1':
        return
    opts = {'PCR_BENCH_VIEWERS': '50', 'PCR_BENCH_WINDOW': '10',
            'PCR_BENCH_DECODE': '1'}
    case = 'full'
    i = 0
    while i < len(args):
        a = args[i]
        if a == '--smoke':
            case = 'smoke'
            opts.update(PCR_BENCH_VIEWERS='5', PCR_BENCH_WINDOW='5')
        elif a in ('--viewers', '--window', '--decode', '--build') and \
                i + 1 < len(args):
            i += 1
            if a == '--build':
                build = os.path.abspath(args[i])
                os.environ['PICAMRTC_BUILD_ROOT'] = build
                os.environ.setdefault('PCR_PLUGIN_DIR', os.path.join(
                    build, 'plugins', 'mqttwebrtc'))
            else:
                opts['PCR_BENCH_' + a[2:].upper()] = args[i]
        else:
            print(__doc__, file=sys.stderr)
            sys.exit(2)
        i += 1
    for k, v in opts.items():
        os.environ.setdefault(k, v)
    os.environ.setdefault('PICAMRTC_BUILD_ROOT',
                          os.path.join(HERE, '..', '..', 'build'))
    os.environ.setdefault('PICAMRTC_SOURCE_ROOT', os.path.join(HERE, '..',
                                                               '..'))
    os.environ.setdefault('PCR_PLUGIN_DIR', os.path.join(
        os.environ['PICAMRTC_BUILD_ROOT'], 'plugins', 'mqttwebrtc'))
    sys.argv = [sys.argv[0], case]


def viewer_counts(procs):
    """Every viewer's latest frame count and when the viewer counted it (ms
    on its own clock): [(proc, index, count, ms)]."""
    out = []
    for p, n in procs:
        for i in range(n):
            ev = [e for e in p.find('frames') if e.get('viewer') == i]
            out.append((p, i, ev[-1]['count'] if ev else 0,
                        ev[-1]['ms'] if ev else 0))
    return out


def window(env, counter, janus, procs, seconds):
    """Camera CPU %, camera kbit/s, Janus CPU %, each viewer's frames/s,
    the viewers' processes' CPU %."""
    counter.refresh()
    f0 = viewer_counts(procs)
    v0 = sum(cpu_seconds(p.pid) for p, _ in procs)
    c0, j0, b0, t0 = (cpu_seconds(env.service.pid),
                      cpu_seconds(janus.proc.pid), counter.bytes(),
                      time.monotonic())
    time.sleep(seconds)
    counter.refresh()
    c1, j1, b1, t1 = (cpu_seconds(env.service.pid),
                      cpu_seconds(janus.proc.pid), counter.bytes(),
                      time.monotonic())
    v1 = sum(cpu_seconds(p.pid) for p, _ in procs)
    # the longest wait for a frame any viewer reported in the window: a
    # stall shows here even when a catch-up burst evens the rate out
    gap = max((e['max_gap_ms'] for p, _ in procs for e in p.find('frames')
               if t0 < e['_t'] <= t1 + 0.5), default=0)
    f1 = viewer_counts(procs)
    # each viewer's rate between its reports nearest to the window's ends
    fps = [1000 * (b[2] - a[2]) / (b[3] - a[3]) if b[3] > a[3] else 0.0
           for a, b in zip(f0, f1)]
    return (100 * (c1 - c0) / (t1 - t0), 8 * (b1 - b0) / (t1 - t0) / 1000,
            100 * (j1 - j0) / (t1 - t0), fps, 100 * (v1 - v0) / (t1 - t0),
            gap)


def bench(env):
    n = int(os.environ['PCR_BENCH_VIEWERS'])
    seconds = int(os.environ['PCR_BENCH_WINDOW'])
    decode = min(int(os.environ['PCR_BENCH_DECODE']), n)
    check(n >= 2, '--viewers takes 2 or more')
    env.start_broker()
    janus = env.start_janus(debug_level=3)
    env.start_relayed_camera(janus.relay_url())
    counter = SentCounter(env.service.pid)
    hold = ['--frames', '1', '--hold', '3600', '--timeout', '3600']

    first = env.relayed_viewer(janus.url, (['--no-decode'] if decode < 1
                                            else []) + hold, name='first')
    expect_relayed_frames(first, 30)
    procs = [(first, 1)]
    time.sleep(3)
    one = window(env, counter, janus, procs, seconds)
    log(f'1 viewer: camera {one[0]:.1f} % CPU, {one[1]:.0f} kbit/s; Janus '
        f'{one[2]:.1f} % CPU; {one[3][0]:.1f} frames/s')

    more_decoding = max(decode - 1, 0)
    more_counting = n - 1 - more_decoding
    if more_decoding:
        p = env.relayed_viewer(janus.url, ['--count', str(more_decoding)] +
                               hold, name='decoding')
        procs.append((p, more_decoding))
    if more_counting:
        p = env.relayed_viewer(janus.url, ['--no-decode', '--count',
                                           str(more_counting)] + hold,
                               name='counting')
        procs.append((p, more_counting))
    # started 100 ms apart, then ICE/DTLS and a keyframe each
    deadline = time.monotonic() + 30 + n * 0.5
    while time.monotonic() < deadline:
        counts = viewer_counts(procs)
        if all(c > 0 for _, _, c, _ in counts):
            break
        time.sleep(1)
    counts = viewer_counts(procs)
    playing = sum(1 for _, _, c, _ in counts if c > 0)
    st = env.last_status()
    log(f'{playing} of {n} relayed viewers got frames; status relay '
        f'{relay_of(st)}')
    check(playing == n, f'only {playing} of {n} relayed viewers got frames')
    time.sleep(3)
    many = window(env, counter, janus, procs, seconds)
    env.service_alive()

    def fps_cell(fps):
        if len(fps) == 1:
            return f'{fps[0]:.1f}'
        return (f'{min(fps):.1f} / {statistics.median(fps):.1f} / '
                f'{max(fps):.1f}')

    print()
    print('| relayed viewers | camera CPU (% of a core) | camera sends '
          '(kbit/s) | Janus CPU (% of a core) | viewers\' frames/s '
          '(min / median / max) | longest wait for a frame (ms) | '
          'viewers\' processes CPU (% of a core) |')
    print('| --- | --- | --- | --- | --- | --- | --- |')
    print(f'| 1 | {one[0]:.1f} | {one[1]:.0f} | {one[2]:.1f} | '
          f'{fps_cell(one[3])} | {one[5]} | {one[4]:.0f} |')
    print(f'| {n} | {many[0]:.1f} | {many[1]:.0f} | {many[2]:.1f} | '
          f'{fps_cell(many[3])} | {many[5]} | {many[4]:.0f} |')
    print()
    print(f'{decode} viewer(s) decoded 1280x720 (avdec_h264), {n - decode} '
          'counted access units without decoding; windows of '
          f'{seconds} s; {os.cpu_count()} cores shared by the camera, Janus '
          'and the viewers (load average '
          f'{os.getloadavg()[0]:.1f}: other work on the machine skews it); '
          'no delay or loss emulated. A rate above 30 is a catch-up burst '
          'after a stall.')
    slow = [f for f in many[3] if f < 25]
    if slow:
        print(f'{len(slow)} of {n} viewers got under 25 frames/s: '
              + ', '.join(f'{f:.1f}' for f in sorted(slow)[:10]))
    print(flush=True)
    return (f'camera CPU {one[0]:.0f} -> {many[0]:.0f} %, sent {one[1]:.0f} '
            f'-> {many[1]:.0f} kbit/s; Janus {one[2]:.0f} -> {many[2]:.0f} %; '
            f'{n} viewers {fps_cell(many[3])} frames/s')


if __name__ == '__main__':
    options()
    sys.exit(pcrtest.main({'full': bench, 'smoke': bench}, RelayEnv,
                          'bench-relay-fanout-', tools=('janus', 'ip', 'nft')))
