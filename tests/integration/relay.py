#!/usr/bin/env python3
"""The relay through Janus (issue 14, /docs/scaling.md): a real mosquitto,
real Janus 1.1.2 with data/janus/'s config, `picamrtc --source test --relay
URL` and relayed viewers (pcr-test-viewer --relay) in a private network
namespace holding only loopback (Janus gathers on a veth with a loopback
address: tests/pcrtest.py, Janus). One case per run: relay.py CASE.

Standard library only; the harness is tests/pcrtest.py."""

import json
import os
import signal
import subprocess
import sys
import time

import pcrtest
from pcrtest import (JANUS_PEER_ARGS, Env, check, expect_exit,
                     expect_frames, free_port, log, watch_to_end)


class RelayEnv(Env):
    """pcrtest.Env with Janus and relayed viewers."""

    def start_relayed_camera(self, relay_url, extra=()):
        return self.start_service(['--relay', relay_url] + JANUS_PEER_ARGS +
                                  list(extra))

    def relayed_viewer(self, janus_url, args, name=None):
        return self.viewer(JANUS_PEER_ARGS + ['--relay', janus_url] + args,
                           name=name)

    def statuses_since(self, index):
        with self.status_cond:
            return [s for s in self.statuses[index:] if isinstance(s, dict)]

    def wait_statuses(self, pred, timeout):
        """Waits until pred(all statuses so far) returns something."""
        return pcrtest.wait_for(self.status_cond, lambda: pred(
            [s for s in self.statuses if isinstance(s, dict)]), timeout)


def relay_of(st):
    return (st or {}).get('relay') or {}


def relay_state(st):
    return relay_of(st).get('state')


# --- measuring the camera --------------------------------------------------

def cpu_seconds(pid):
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def udp_ports(pid):
    """The local UDP ports of a process's sockets."""
    inodes = set()
    for fd in os.listdir(f'/proc/{pid}/fd'):
        try:
            target = os.readlink(f'/proc/{pid}/fd/{fd}')
        except OSError:
            continue
        if target.startswith('socket:['):
            inodes.add(target[8:-1])
    ports = set()
    for table in ('/proc/net/udp', '/proc/net/udp6'):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[9] in inodes:
                        ports.add(int(cols[1].rsplit(':', 1)[1], 16))
        except OSError:
            pass
    return ports


class SentCounter:
    """Counts the UDP bytes a process sends (nftables in the namespace,
    matched by its sockets' local ports: the camera's media to Janus and to
    direct viewers; MQTT is TCP and not counted)."""

    def __init__(self, pid):
        self.pid = pid
        self.ports = set()
        for cmd in (['nft', 'add', 'table', 'inet', 'pcrcount'],
                    ['nft', 'add', 'chain', 'inet', 'pcrcount', 'out',
                     '{ type filter hook output priority 0; }'],
                    ['nft', 'add', 'set', 'inet', 'pcrcount', 'sports',
                     '{ type inet_service; }'],
                    ['nft', 'add', 'rule', 'inet', 'pcrcount', 'out', 'udp',
                     'sport', '@sports', 'counter']):
            subprocess.run(cmd, check=True, timeout=10)

    def refresh(self):
        """Adds the process's current sockets (new peer connections)."""
        new = udp_ports(self.pid) - self.ports
        if new:
            subprocess.run(['nft', 'add', 'element', 'inet', 'pcrcount',
                            'sports', '{ ' + ', '.join(map(str, new)) +
                            ' }'], check=True, timeout=10)
            self.ports |= new

    def bytes(self):
        out = subprocess.run(['nft', '-j', 'list', 'chain', 'inet',
                              'pcrcount', 'out'], stdout=subprocess.PIPE,
                             check=True, timeout=10)
        for item in json.loads(out.stdout)['nftables']:
            for expr in item.get('rule', {}).get('expr', []):
                if 'counter' in expr:
                    return expr['counter']['bytes']
        return 0


def measure(env, counter, seconds):
    """(CPU % of one core, sent kbit/s) of the service over the next
    seconds."""
    counter.refresh()
    pid = env.service.pid
    c0, b0, t0 = cpu_seconds(pid), counter.bytes(), time.monotonic()
    time.sleep(seconds)
    counter.refresh()
    c1, b1, t1 = cpu_seconds(pid), counter.bytes(), time.monotonic()
    return 100.0 * (c1 - c0) / (t1 - t0), 8 * (b1 - b0) / (t1 - t0) / 1000


def frames_of(v, index):
    """The latest frame count viewer index of a --count process reported."""
    counts = [e['count'] for e in v.find('frames') if e.get('viewer') == index]
    return counts[-1] if counts else 0


def expect_relayed_frames(v, timeout, settle=5):
    """The relayed viewer's first frame, and its picture at 1280x720 within
    settle seconds of it: Janus may forward the camera's small simulcast
    rendition first and switch to the large one at its next keyframe (a
    few tens of ms later here)."""
    ff = expect_frames(v, timeout, width=None)
    big = pcrtest.wait_for(v.cond, lambda: next(
        (e for e in reversed(v.events) if e.get('event') == 'resolution'),
        None) if any(e.get('event') == 'resolution' and
                     (e['width'], e['height']) == (1280, 720)
                     for e in v.events) else None, settle)
    sizes = [(e['width'], e['height']) for e in v.find('resolution')]
    check(big is not None and (big['width'], big['height']) == (1280, 720),
          f'{v.name} got {"/".join(f"{w}x{h}" for w, h in sizes)} video '
          f'through Janus, expected 1280x720 within {settle} s of the first '
          'frame')
    ff['sizes'] = sizes
    return ff


# --- the cases ------------------------------------------------------------

def case_relay_plays(env):
    """A viewer watching through Janus gets the camera's 1280x720 video;
    the device publishes (status relay.state publishing, one relayed
    viewer) and counts no direct viewer."""
    env.start_broker()
    janus = env.start_janus()
    env.start_relayed_camera(janus.relay_url())
    st = env.last_status()
    check(relay_state(st) == 'idle', f'with no viewer the relay is '
          f'{relay_of(st)}, expected state idle (on demand)')
    v = env.relayed_viewer(janus.url, ['--frames', '90', '--hold', '3',
                                       '--timeout', '40'])
    ff = expect_relayed_frames(v, 25)
    st = env.wait_status(lambda s: relay_state(s) == 'publishing' and
                         relay_of(s).get('viewers') == 1, 10)
    check(st is not None, f'a relayed viewer watches but the status says '
          f'{env.last_status()} (expected relay.state publishing, '
          'relay.viewers 1)')
    check(st.get('viewers', 0) == 0, f'the relayed viewer counts as a direct '
          f'viewer: {st}')
    done = expect_exit(v, 0, 30, 'after decoding 90 relayed frames')
    check(done['frames'] >= 90, f'the relayed viewer decoded only '
          f'{done["frames"]} frames')
    relay = v.first('relay')
    check((relay['room'], relay['feed']) == (st['relay']['room'],
                                             st['relay']['feed']),
          f'the device told the viewer room/feed {relay} but its status says '
          f'{st["relay"]}')
    env.service_alive()
    return (f'relayed 1280x720: relay answer {relay["ms"]} ms, first frame '
            f'{ff["ms"]} ms after the request, {done["frames"]} frames, '
            f'longest gap {done["max_gap_ms"]} ms')


def case_relay_loss(env):
    """3 % of the UDP packets to Janus lost (the camera's and the viewer's):
    the relayed viewer keeps playing, with no stall of seconds. (With
    NACK/RTX towards Janus, rtprtxsend's retransmissions carried the rid
    extension, Janus took them for the layer itself and its viewers
    stalled.)"""
    env.start_broker()
    janus = env.start_janus()
    env.start_relayed_camera(janus.relay_url())
    rules = [
        ['add', 'table', 'inet', 'pcrloss'],
        ['add', 'chain', 'inet', 'pcrloss', 'out',
         '{ type filter hook output priority 0; }'],
        ['add', 'rule', 'inet', 'pcrloss', 'out', 'ip', 'daddr',
         pcrtest.JANUS_ICE_ADDRESS, 'meta', 'l4proto', 'udp', 'numgen',
         'random', 'mod', '100', '<', '3', 'drop'],
    ]
    for r in rules:
        subprocess.run(['nft'] + r, check=True, timeout=10)
    v = env.relayed_viewer(janus.url, ['--frames', '450', '--timeout', '60'])
    expect_relayed_frames(v, 25)
    done = expect_exit(v, 0, 60, 'after 450 relayed frames at 3 % loss')
    check(done['max_gap_ms'] < 1500, f'the relayed viewer stalled for '
          f'{done["max_gap_ms"]} ms at 3 % loss')
    env.service_alive()
    return (f'3 % loss to Janus: {done["frames"]} frames, longest gap '
            f'{done["max_gap_ms"]} ms')


def case_relay_cost(env):
    """The camera's own cost does not grow with relayed viewers: its CPU and
    the UDP it sends with 10 relayed viewers stay close to what they are
    with 1 (Janus does the fan-out). The 10 count access units without
    decoding (--no-decode): ten 720p decoders would take the two cores
    from the camera and measure the machine, not the camera."""
    window = 8
    env.start_broker()
    janus = env.start_janus()
    env.start_relayed_camera(janus.relay_url())
    counter = SentCounter(env.service.pid)
    one = env.relayed_viewer(janus.url, ['--no-decode', '--frames', '1',
                                         '--hold', '120', '--timeout', '150'],
                             name='one')
    expect_relayed_frames(one, 25)
    time.sleep(3)               # past the start-up burst (keyframes, ramp)
    cpu1, kbit1 = measure(env, counter, window)
    ten = env.relayed_viewer(janus.url, ['--no-decode', '--count', '9',
                                         '--frames', '1', '--hold', '120',
                                         '--timeout', '150'], name='nine')
    st = env.wait_status(lambda s: relay_of(s).get('viewers') == 10, 30)
    check(st is not None, f'10 relayed viewers but the status says '
          f'{env.last_status()}')
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(frames_of(ten, i) > 0 for i in range(9)):
            break
        time.sleep(0.5)
    playing = sum(1 for i in range(9) if frames_of(ten, i) > 0)
    check(playing == 9, f'only {playing} of 9 more relayed viewers got '
          'frames within 30 s')
    time.sleep(3)
    c0 = [frames_of(ten, i) for i in range(9)] + [one.frame_count()[0]]
    cpu10, kbit10 = measure(env, counter, window)
    c1 = [frames_of(ten, i) for i in range(9)] + [one.frame_count()[0]]
    fps = [(b - a) / window for a, b in zip(c0, c1)]
    env.service_alive()
    log(f'camera with 1 relayed viewer: {cpu1:.1f} % CPU, {kbit1:.0f} kbit/s '
        f'sent; with 10: {cpu10:.1f} % CPU, {kbit10:.0f} kbit/s; the 10 got '
        + '/'.join(f'{f:.0f}' for f in fps) + ' frames/s')
    check(kbit1 > 100, f'the camera sent only {kbit1:.0f} kbit/s with one '
          'relayed viewer: the counter does not see its media')
    check(min(fps) >= 15, f'a relayed viewer got {min(fps):.1f} frames/s '
          'with 10 watching (expected ~30)')
    check(kbit10 <= 1.5 * kbit1 + 200,
          f'the camera sends {kbit10:.0f} kbit/s with 10 relayed viewers, '
          f'{kbit1:.0f} with 1: it should send one stream to Janus whatever '
          'the number of viewers')
    check(cpu10 <= 1.5 * cpu1 + 15,
          f'the camera uses {cpu10:.1f} % CPU with 10 relayed viewers, '
          f'{cpu1:.1f} % with 1: relayed viewers should cost it nothing')
    return (f'1 -> 10 relayed viewers: camera CPU {cpu1:.0f} -> {cpu10:.0f} '
            f'%, sent {kbit1:.0f} -> {kbit10:.0f} kbit/s; every viewer '
            f'{min(fps):.0f}+ frames/s')


def case_relay_on_demand(env):
    """With no relayed viewer the camera is off (idle CPU) and the relay is
    idle; a relayed viewer starts it (publishing); once the viewer leaves
    (bye) the camera stops after its idle time and the relay is idle
    again."""
    idle_stop = 2
    env.start_broker()
    janus = env.start_janus()
    env.start_relayed_camera(janus.relay_url(),
                             ['--idle-stop-seconds', str(idle_stop)])
    time.sleep(2)
    c0, t0 = cpu_seconds(env.service.pid), time.monotonic()
    time.sleep(3)
    idle = 100 * (cpu_seconds(env.service.pid) - c0) / (time.monotonic() - t0)
    st = env.last_status()
    check(relay_state(st) == 'idle', f'with no viewer the relay is '
          f'{relay_of(st)} (expected idle)')
    check(idle < 10, f'with no viewer the camera uses {idle:.1f} % of a '
          'core: it runs although nobody watches')
    v = env.relayed_viewer(janus.url, ['--frames', '30', '--hold', '60',
                                       '--timeout', '90'])
    ff = expect_relayed_frames(v, 25)
    st = env.wait_status(lambda s: relay_state(s) == 'publishing', 10)
    check(st is not None, f'a relayed viewer watches but the relay is '
          f'{relay_of(env.last_status())}')
    time.sleep(2)
    v.signal(signal.SIGTERM)           # it says bye
    expect_exit(v, 0, 10, 'after it was asked to leave')
    t_bye = time.monotonic()
    st = env.wait_status(lambda s: relay_state(s) == 'idle' and
                         relay_of(s).get('viewers', 0) == 0,
                         idle_stop + 15)
    stopped = time.monotonic() - t_bye
    check(st is not None, f'{idle_stop + 15} s after the only relayed viewer '
          f'said bye the relay is {relay_of(env.last_status())} (expected '
          'idle)')
    time.sleep(1)
    c0, t0 = cpu_seconds(env.service.pid), time.monotonic()
    time.sleep(3)
    after = 100 * (cpu_seconds(env.service.pid) - c0) / (
        time.monotonic() - t0)
    check(after < 10, f'after the relayed viewer left the camera still uses '
          f'{after:.1f} % of a core: it was not stopped')
    env.service_alive()
    return (f'idle {idle:.1f} % CPU; relayed first frame {ff["ms"]} ms after '
            f'the request; relay idle {stopped:.1f} s after the bye '
            f'(idle stop {idle_stop} s), then {after:.1f} % CPU')


def case_relay_janus_restart(env):
    """Janus is killed and started again on the same ports while a relayed
    viewer watches: the camera publishes again within 5 s of Janus' return
    (status relay.state publishing again), and the viewer starts over on
    its own and plays again, saying how long it took."""
    env.start_broker()
    janus = env.start_janus()
    env.start_relayed_camera(janus.relay_url())
    v = env.relayed_viewer(janus.url, ['--frames', '1', '--hold', '120',
                                       '--timeout', '150'])
    expect_relayed_frames(v, 25)
    check(env.wait_status(lambda s: relay_state(s) == 'publishing', 10),
          f'the relay is {relay_of(env.last_status())}, expected publishing')
    time.sleep(2)
    mark = len(env.statuses_since(0))
    janus.stop()
    t_kill = time.monotonic()
    time.sleep(1)
    janus.start()
    t_back = time.monotonic()

    def republished(statuses):
        later = statuses[mark:]
        for i, s in enumerate(later):
            if relay_state(s) != 'publishing':
                for s2 in later[i + 1:]:
                    if relay_state(s2) == 'publishing':
                        return s2
        return None

    st = env.wait_statuses(republished, 20)
    took = time.monotonic() - t_back
    seen = [relay_state(s) for s in env.statuses_since(mark)]
    check(st is not None, f'the camera did not publish again within 20 s of '
          f'Janus\' return (relay states since the kill: {seen})')
    check(took <= 5, f'the camera published again {took:.1f} s after Janus '
          f'came back (limit 5 s; states: {seen})')
    rec = v.wait_event('reconnected', 30)
    check(rec is not None, f'the relayed viewer did not play again within '
          f'30 s of Janus\' return (lost: {v.find("lost")[:1]}, errors: '
          f'{[e.get("code") for e in v.find("error")]})')
    lost = v.first('lost')
    after = rec['_t'] - t_back
    n0, _ = v.frame_count()
    time.sleep(3)
    n1, _ = v.frame_count()
    check(n1 - n0 >= 45, f'after reconnecting the relayed viewer got '
          f'{n1 - n0} frames in 3 s')
    env.service_alive()
    return (f'states after the kill {seen}; camera publishing {took:.1f} s '
            f'after Janus came back; the viewer noticed the loss '
            f'{lost["_t"] - t_kill:.1f} s after the kill ("{lost["message"]}")'
            f', played again {rec["reconnect_ms"]} ms after the loss '
            f'({after:.1f} s after Janus\' return)')


def case_relay_unreachable(env):
    """Nothing listens at the relay URL: a relayed viewer's request gets the
    error relay-unavailable, the status says relay.state unreachable with
    an error, and a direct viewer still plays."""
    env.start_broker()
    url = f'http://127.0.0.1:{free_port()}/janus'
    env.start_relayed_camera(f'{url}?adminkey=k')
    v = env.relayed_viewer(url, ['--expect-error', 'relay-unavailable',
                                 '--timeout', '30'])
    t0 = time.monotonic()
    rc, _ = v.finish(40)
    errs = v.find('error')
    check(rc == 0, f'a relay request to a camera whose Janus is unreachable '
          f'got {[e.get("code") for e in errs] or "no error"} (exit {rc}), '
          'expected relay-unavailable')
    answered = errs[0]['_t'] - t0 if errs else None
    st = env.wait_status(lambda s: relay_state(s) == 'unreachable', 10)
    check(st is not None, f'the status says {relay_of(env.last_status())}, '
          'expected relay.state unreachable')
    check(relay_of(st).get('error'), f'relay.state unreachable without an '
          f'error saying why: {st}')
    _, ff, done = watch_to_end(env)
    env.service_alive()
    return (f'relay-unavailable after {answered:.1f} s ("{errs[0]["message"]}"'
            f'); status error "{st["relay"]["error"]}"; a direct viewer '
            f'played ({done["frames"]} frames, first after {ff["ms"]} ms)')


def case_relay_janus_config(env):
    """data/janus/ as an operator would check it: only the VideoRoom plugin
    and the HTTP transport load, there are no rooms, creating a room needs
    the admin key, and the admin API refuses requests without its
    secret."""
    import urllib.request

    janus = env.start_janus()

    def post(url, body):
        req = urllib.request.Request(url, json.dumps(body).encode(),
                                     {'Content-Type': 'application/json'})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    info = janus.info()
    check(list(info.get('plugins', {})) == ['janus.plugin.videoroom'],
          f'Janus loaded the plugins {list(info.get("plugins", {}))}, '
          'expected only janus.plugin.videoroom')
    check(list(info.get('transports', {})) == ['janus.transport.http'],
          f'Janus loaded the transports {list(info.get("transports", {}))}, '
          'expected only janus.transport.http')
    session = post(janus.url, {'janus': 'create', 'transaction': 'a'})
    path = f'{janus.url}/{session["data"]["id"]}'
    handle = post(path, {'janus': 'attach', 'transaction': 'b',
                         'plugin': 'janus.plugin.videoroom'})
    path += f'/{handle["data"]["id"]}'

    def videoroom(body):
        return post(path, {'janus': 'message', 'transaction': 'c',
                           'body': body})['plugindata']['data']

    rooms = videoroom({'request': 'list'}).get('list')
    check(rooms == [], f'Janus starts with the rooms {rooms}: data/janus/ '
          'must not have sample rooms')
    created = videoroom({'request': 'create', 'room': 5})
    check(created.get('error_code') == 429, f'a room was created without '
          f'the admin key: {created}')
    created = videoroom({'request': 'create', 'room': 5,
                         'admin_key': janus.admin_key})
    check(created.get('videoroom') == 'created', f'the admin key did not '
          f'create a room: {created}')
    refused = post(janus.admin_url, {'janus': 'list_sessions',
                                     'transaction': 'd'})
    check(refused.get('janus') == 'error' and
          refused['error'].get('code') == 403, f'the admin API answered a '
          f'request without its secret: {refused}')
    listed = post(janus.admin_url, {'janus': 'list_sessions',
                                    'transaction': 'e', 'admin_secret':
                                    pcrtest.JANUS_ADMIN_SECRET})
    check(listed.get('janus') == 'success', f'the admin API refused its '
          f'secret: {listed}')
    return ('VideoRoom and HTTP only, no rooms, create needs the admin key '
            '(429 without), admin API 403 without its secret')


CASES = {
    'relay-janus-config': case_relay_janus_config,
    'relay-plays': case_relay_plays,
    'relay-loss': case_relay_loss,
    'relay-cost': case_relay_cost,
    'relay-on-demand': case_relay_on_demand,
    'relay-janus-restart': case_relay_janus_restart,
    'relay-unreachable': case_relay_unreachable,
}


if __name__ == '__main__':
    sys.exit(pcrtest.main(CASES, RelayEnv, 'integration-',
                          tools=('janus', 'ip', 'nft')))
