#!/usr/bin/env python3
"""picamrtc-gateway tests: the HTTP contract of docs/http-api.md against a
real mosquitto broker, the real camera service (picamrtc --source test) or
a fake device made with mosquitto_pub, all inside a private network
namespace that holds only loopback (docs/architecture.md, "Testing on these
machines"). One case per run: gateway.py CASE. Every status code of the
contract is provoked by some case.

Standard library only; the harness (namespace, broker, service, result
line) is tests/pcrtest.py, which meson puts on PYTHONPATH. Paths come from
the environment meson sets: PCR_GATEWAY, PCR_SERVICE, PCR_PLUGIN_DIR."""

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import pcrtest
from pcrtest import (DEVICE, PREFIX, Failure, Proc, Subscriber, check,
                     free_port, log)

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get('PICAMRTC_SOURCE_ROOT',
                             os.path.join(HERE, '..', '..'))
FIXTURES = os.path.join(SOURCE_ROOT, 'tests', 'fixtures', 'sdp')
HEX32 = re.compile(r'^[0-9a-f]{32}$')


def fixture(name):
    """An SDP fixture with CRLF line ends, as browsers send them."""
    with open(os.path.join(FIXTURES, name)) as f:
        lines = f.read().splitlines()
    return '\r\n'.join(lines) + '\r\n'


OFFER = None            # the captured Chromium offer (H.264), loaded lazily
VP8_OFFER = None


def offers():
    global OFFER, VP8_OFFER
    if OFFER is None:
        OFFER = fixture('chromium-gathered.sdp')
        VP8_OFFER = fixture('vp8-only.sdp')
    return OFFER, VP8_OFFER


# --- HTTP ----------------------------------------------------------------

class Response:
    def __init__(self, status, headers, body, took):
        self.status = status
        self.headers = headers          # an http.client.HTTPMessage
        self.body = body
        self.took = took

    def header(self, name):
        return self.headers.get(name)

    def all(self, name):
        return self.headers.get_all(name) or []

    def text(self):
        return self.body.decode('utf-8', 'replace')

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            raise Failure(f'the reply is not JSON: {self.body[:200]!r}')

    def __repr__(self):
        return f'{self.status} {self.text()[:200]!r}'


class Gateway:
    """picamrtc-gateway started by a case; its URL is read from its log."""

    def __init__(self, env, args, name='gateway', extra_env=None):
        self.env = env
        self.name = name
        self.tls = '--tls-cert' in args
        argv = [env.gateway_bin, '--broker', env.broker_uri or
                'mqtt://127.0.0.1:1', '--listen', '127.0.0.1:0'] + args
        if '--www' not in args and '--config' not in args:
            argv += ['--www', env.www]
        penv = os.environ.copy()
        penv.update(extra_env or {})
        self.proc = Proc(name, argv, env.workdir, env=penv)
        env.procs.append(self.proc)
        env.gateways.append(self)
        self.port = None
        self.context = None
        deadline = time.monotonic() + 15
        pattern = re.compile(r'serving (https?)://127\.0\.0\.1:(\d+)/')
        while time.monotonic() < deadline:
            m = pattern.search(self.proc.log_text(100000))
            if m:
                self.port = int(m.group(2))
                check(m.group(1) == ('https' if self.tls else 'http'),
                      f'the gateway serves {m.group(1)}, expected '
                      f'{"https" if self.tls else "http"}')
                break
            check(self.proc.alive(), f'{name} exited at start-up with '
                  f'{self.proc.proc.returncode}: {self.proc.log_text()}')
            time.sleep(0.05)
        check(self.port is not None, f'{name} logged no "serving http://'
              f'127.0.0.1:PORT/" line within 15 s: {self.proc.log_text()}')
        log(f'{name} serves port {self.port}')

    def connection(self, timeout=30):
        if self.tls:
            return http.client.HTTPSConnection('127.0.0.1', self.port,
                                               timeout=timeout,
                                               context=self.context)
        return http.client.HTTPConnection('127.0.0.1', self.port,
                                          timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=30,
                chunked=False):
        if isinstance(body, str):
            body = body.encode('utf-8')
        conn = self.connection(timeout)
        t0 = time.monotonic()
        try:
            if chunked:
                conn.request(method, path, body=iter([body]),
                             headers=headers or {}, encode_chunked=True)
            else:
                conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException) as e:
            raise Failure(f'{method} {path}: no HTTP reply ({e}); the '
                          f'gateway is {"alive" if self.alive() else "dead"}')
        finally:
            conn.close()
        return Response(r.status, r.msg, data, time.monotonic() - t0)

    def post_json(self, path, obj, headers=None, timeout=30):
        h = {'Content-Type': 'application/json'}
        h.update(headers or {})
        body = obj if isinstance(obj, (str, bytes)) else json.dumps(obj)
        return self.request('POST', path, body, h, timeout)

    def alive(self):
        return self.proc.alive()

    def log_text(self):
        return self.proc.log_text(1000000)

    def devices(self, headers=None):
        r = self.request('GET', '/api/devices', headers=headers)
        check(r.status == 200, f'GET /api/devices: {r}')
        check(r.header('Content-Type').startswith('application/json'),
              f'/api/devices has Content-Type {r.header("Content-Type")}')
        lst = r.json()
        check(isinstance(lst, list), f'/api/devices is not a list: {lst}')
        return {d['id']: d['status'] for d in lst}

    def wait_device(self, device, pred, timeout=20, what='', headers=None):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.devices(headers).get(device)
            if last is not None and pred(last):
                return last
            time.sleep(0.1)
        raise Failure(f'/api/devices never showed device {device} {what} '
                      f'within {timeout} s (last: {last})')

    def stop(self):
        """SIGTERM; a clean exit (0) also means no leak report under ASan."""
        if not self.alive():
            return self.proc.proc.returncode
        self.proc.signal(signal.SIGTERM)
        rc = self.proc.wait(15)
        return rc


def expect(r, status, what):
    check(r.status == status, f'{what}: expected {status}, got {r}')
    if status >= 400:
        ctype = r.header('Content-Type') or ''
        check(ctype.startswith('text/plain'),
              f'{what}: the {status} reply has Content-Type "{ctype}", '
              'expected a text/plain line saying what went wrong')
        text = r.text()
        check(text.strip() != '' and text.count('\n') <= 1,
              f'{what}: the {status} body is not one line: {text!r}')
    return r


def raw_exchange(port, data, timeout=5, shut=True):
    """Sends raw bytes, returns what comes back until close or timeout."""
    with socket.create_connection(('127.0.0.1', port), timeout=timeout) as s:
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        out = b''
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except OSError:
            pass
        return out


def status_of(raw):
    m = re.match(rb'HTTP/1\.[01] (\d{3})', raw)
    return int(m.group(1)) if m else None


# --- MQTT helpers ----------------------------------------------------------

class Sniffer(Subscriber):
    """mosquitto_sub -v on a topic pattern, ready once it sees its own
    probe."""

    def __init__(self, env, pattern, name):
        super().__init__(env, name, env.mqtt_args() + ['-t', pattern])
        self.pattern = pattern
        probe = pattern.replace('#', '').replace('+', 'x').rstrip('/') + \
            '/probe'
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            env.publish(probe, '{"probe":true}')
            if self.wait(lambda t, p: t == probe, 0.5):
                return
        raise Failure(f'mosquitto_sub on {pattern} never got ready')

    def messages(self, topic_re=None):
        out = []
        with self.cond:
            for t, p in self.lines:
                if topic_re and not re.match(topic_re, t):
                    continue
                try:
                    out.append((t, json.loads(p)))
                except ValueError:
                    out.append((t, {'_raw': p}))
        return out

    def wait_json(self, topic_re, pred, timeout):
        def match(t, p):
            if not re.match(topic_re, t):
                return False
            try:
                return pred(json.loads(p))
            except ValueError:
                return False
        found = self.wait(match, timeout)
        return (found[0], json.loads(found[1])) if found else None


def fake_device(env, device, state='online'):
    """A retained status nobody stands behind: a device that never answers
    unless the case answers for it."""
    subprocess.run(['mosquitto_pub', '-h', '127.0.0.1', '-p', str(env.port),
                    '-q', '1', '-r', '-t', f'{PREFIX}/{device}/status', '-m',
                    json.dumps({'state': state, 'viewers': 0})],
                   check=True, timeout=10)


def gateway_with_fake_device(env, extra=None):
    """A broker, a device that never answers and a gateway in front."""
    env.start_broker()
    fake_device(env, DEVICE)
    return env.gateway(extra)


# --- the environment ---------------------------------------------------------

class Env(pcrtest.Env):
    def __init__(self, case):
        super().__init__(case)
        build = os.environ.get('PICAMRTC_BUILD_ROOT', '')
        self.gateway_bin = os.environ.get('PCR_GATEWAY') or os.path.join(
            build, 'src', 'gateway', 'picamrtc-gateway')
        self.gateways = []
        self.www = os.path.join(self.workdir, 'www')
        os.makedirs(os.path.join(self.www, 'sub'))
        files = {
            'index.html': '<!doctype html><title>picamrtc test</title>\n',
            'app.js': 'export const answer = 42;\n',
            'style.css': 'body { margin: 0 }\n',
            'icon.svg': '<svg xmlns="http://www.w3.org/2000/svg"/>\n',
            'data.json': '{"ok": true}\n',
            'sub/index.html': '<!doctype html><title>sub</title>\n',
            '.env': 'HIDDEN=1\n',
        }
        for name, text in files.items():
            with open(os.path.join(self.www, name), 'w') as f:
                f.write(text)
        with open(os.path.join(self.www, 'logo.png'), 'wb') as f:
            f.write(b'\x89PNG\r\n\x1a\n' + b'\0' * 16)
        self.outside = os.path.join(self.workdir, 'outside.txt')
        with open(self.outside, 'w') as f:
            f.write('OUTSIDE-THE-WEB-ROOT\n')
        os.symlink(self.outside, os.path.join(self.www, 'link.txt'))

    def gateway(self, args=None, name='gateway', extra_env=None):
        return Gateway(self, args or [], name, extra_env)

    def write(self, name, text, mode=0o600):
        path = os.path.join(self.workdir, name)
        with open(path, 'w') as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def finish(self):
        for g in self.gateways:
            rc = g.stop()
            check(rc == 0, f'{g.name} exited with {rc} on SIGTERM (expected '
                  f'0; under ASan a leak report does this):\n'
                  f'{g.proc.log_text(6000)}')

    def teardown(self, failed):
        if failed:
            for g in self.gateways:
                print(f'----- log of {g.name}: {" ".join(g.proc.argv)[:400]}'
                      f' (exit {g.proc.proc.returncode})')
                print(g.proc.log_text(12000))
        super().teardown(failed)


def start_all(env, gateway_args=None, service_args=None, service=True):
    env.start_broker()
    if service:
        env.start_service(service_args or ['--max-viewers', '4'])
    gw = env.gateway(gateway_args)
    if service:
        gw.wait_device(DEVICE, lambda s: s.get('state') == 'online',
                       what='online')
    return gw


def start_webrtc(gw, device=None, sdp=None, headers=None, timeout=30):
    body = {'type': 'offer', 'sdp': sdp or offers()[0]}
    if device:
        body['device'] = device
    return gw.post_json('/api/start-webrtc', body, headers, timeout)


def whep_post(gw, device=DEVICE, sdp=None, headers=None, timeout=30):
    h = {'Content-Type': 'application/sdp'}
    h.update(headers or {})
    return gw.request('POST', f'/whep/{device}', sdp or offers()[0], h,
                      timeout)


def wait_viewers(env, n, what, timeout=10):
    st = env.wait_status(lambda s: s.get('viewers') == n, timeout)
    check(st is not None, f'{what}: the device status says '
          f'{env.last_status()}, expected "viewers":{n}')
    return st


def in_background(fn, *args, **kwargs):
    """Runs fn in a thread; .result() waits for what it returned."""
    box = {}

    def run():
        try:
            box['value'] = fn(*args, **kwargs)
        except BaseException as e:      # re-raised in result()
            box['error'] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()

    class Handle:
        @staticmethod
        def result(timeout=60):
            t.join(timeout)
            check(not t.is_alive(), 'a request never finished')
            if 'error' in box:
                raise box['error']
            return box['value']
    return Handle


# --- the cases -----------------------------------------------------------

def case_static(env):
    env.start_broker()
    gw = env.gateway()
    r = expect(gw.request('GET', '/'), 200, 'GET /')
    check(b'picamrtc test' in r.body, f'GET / served {r.body!r}, not '
          'index.html')
    check(r.header('Content-Type').startswith('text/html'),
          f'GET / has Content-Type {r.header("Content-Type")}')
    check(r.header('Cache-Control') == 'no-cache',
          f'GET / has Cache-Control {r.header("Cache-Control")}')
    types = {'/index.html': 'text/html', '/app.js': 'text/javascript',
             '/style.css': 'text/css', '/icon.svg': 'image/svg+xml',
             '/logo.png': 'image/png', '/data.json': 'application/json'}
    for path, ctype in types.items():
        r = expect(gw.request('GET', path), 200, f'GET {path}')
        check((r.header('Content-Type') or '').startswith(ctype),
              f'GET {path} has Content-Type {r.header("Content-Type")}, '
              f'expected {ctype} (a browser refuses a module script served '
              'with the wrong type)')
    r = expect(gw.request('GET', '/sub/'), 200, 'GET /sub/')
    check(b'<title>sub' in r.body, 'GET /sub/ did not serve sub/index.html')
    r = gw.request('HEAD', '/app.js')
    check(r.status == 200 and r.body == b'', f'HEAD /app.js: {r}')
    expect(gw.request('GET', '/missing.js'), 404, 'GET /missing.js')
    expect(gw.request('GET', '/.env'), 404, 'GET /.env (hidden file)')
    expect(gw.request('GET', '/link.txt'), 404,
           'GET /link.txt (a symlink out of the web root)')
    expect(gw.request('POST', '/index.html', 'x',
                      {'Content-Type': 'text/plain'}), 405, 'POST /')
    escapes = ['/../outside.txt', '/%2e%2e/outside.txt',
               '/sub/../../outside.txt', '/sub/%2e%2e/%2e%2e/outside.txt',
               '//../outside.txt', '/%2F..%2Foutside.txt',
               '/..%5coutside.txt', '/sub/..%2f..%2foutside.txt']
    for path in escapes:
        raw = raw_exchange(gw.port, f'GET {path} HTTP/1.1\r\nHost: x\r\n'
                           'Connection: close\r\n\r\n'.encode())
        st = status_of(raw)
        check(st in (400, 404), f'GET {path} gave {st}, expected 400/404')
        check(b'OUTSIDE-THE-WEB-ROOT' not in raw,
              f'GET {path} escaped the web root: {raw[:300]!r}')
    # a nonexistent --www is a configuration error naming the key
    out = subprocess.run([env.gateway_bin, '--www', '/nonexistent/www',
                          '--listen', '127.0.0.1:0'], capture_output=True,
                         timeout=10)
    check(out.returncode == 2 and b'www' in out.stderr,
          f'--www /nonexistent: exit {out.returncode}, {out.stderr!r}')
    check(gw.alive(), 'the gateway died serving files')
    return (f'{len(types)} content types, no-cache, 404/405, '
            f'{len(escapes)} escape attempts refused')


def case_start_webrtc(env):
    gw = start_all(env)
    st = gw.devices()[DEVICE]
    check(st.get('viewers') == 0, f'/api/devices says {st} before any viewer')
    r = expect(start_webrtc(gw), 200, 'POST /api/start-webrtc')
    check(r.header('Access-Control-Allow-Origin') == '*',
          'start-webrtc reply has no CORS header')
    reply = r.json()
    check(set(reply) >= {'webrtc_answer', 'session'},
          f'the reply lacks webrtc_answer/session: {reply}')
    session = reply['session']
    check(HEX32.match(session), f'session id {session!r} is not 32 hex '
          'digits (128 random bits)')
    answer = reply['webrtc_answer']
    check(answer.startswith('v=0') and 'a=candidate:' in answer,
          'the answer to start-webrtc holds no a=candidate line: the seed '
          'client (bulk ICE, no trickle) cannot connect')
    check('127.0.0.1' in answer, 'the answer has no loopback candidate')
    wait_viewers(env, 1, 'after start-webrtc')
    gw.wait_device(DEVICE, lambda s: s.get('viewers') == 1,
                   what='with "viewers":1')
    r = expect(gw.post_json('/api/stop-webrtc', {'session': session}), 200,
               'POST /api/stop-webrtc')
    wait_viewers(env, 0, 'after stop-webrtc')
    expect(gw.post_json('/api/stop-webrtc', {'session': session}), 404,
           'a second stop-webrtc of the same session')
    took = r.took
    # a second session while the first is gone: ids differ
    r2 = expect(start_webrtc(gw, device=DEVICE), 200,
                'start-webrtc with "device"')
    check(r2.json()['session'] != session, 'two sessions got the same id')
    wait_viewers(env, 1, 'after the second start-webrtc')
    rc = gw.stop()
    check(rc == 0, f'the gateway exited with {rc} on SIGTERM')
    wait_viewers(env, 0, 'after the gateway stopped (it says bye to open '
                 'sessions)')
    return (f'answer with candidates, viewers 0→1→0, stop in '
            f'{took * 1000:.0f} ms; a stopping gateway says bye')


def case_whep(env):
    gw = start_all(env, ['--stun-uri', 'stun:127.0.0.1:3478', '--turn-uri',
                         'turn:alice:pa%40ss@127.0.0.1:3478?transport=udp'])
    sniff = Sniffer(env, f'{PREFIX}/{DEVICE}/in/#', 'sniff-in')
    r = expect(whep_post(gw), 201, 'POST /whep/cam1')
    loc = r.header('Location') or ''
    m = re.fullmatch(r'/whep/cam1/([0-9a-f]{32})', loc)
    check(m, f'Location is {loc!r}, expected /whep/cam1/<32 hex digits>')
    session = m.group(1)
    check((r.header('Content-Type') or '').startswith('application/sdp'),
          f'the WHEP answer has Content-Type {r.header("Content-Type")}')
    check(r.text().startswith('v=0') and 'a=candidate:' in r.text(),
          'the WHEP answer SDP has no a=candidate line')
    etag = r.header('ETag')
    check(etag and etag.startswith('"'), f'no quoted ETag: {etag!r}')
    links = r.all('Link')
    check(len(links) == 2, f'expected 2 Link headers, got {links}')
    check(any(l_.startswith('<stun:127.0.0.1:3478>; rel="ice-server"')
              for l_ in links), f'no STUN Link header: {links}')
    check(any(l_.startswith('<turn:127.0.0.1:3478?transport=udp>; '
                            'rel="ice-server"') and 'username="alice"' in l_
              and 'credential="pa@ss"' in l_ and
              'credential-type="password"' in l_ for l_ in links),
          f'no TURN Link header with credentials: {links}')
    check(r.header('Access-Control-Allow-Origin') == '*',
          'WHEP reply has no CORS header')
    expose = r.header('Access-Control-Expose-Headers') or ''
    check('Location' in expose and 'Link' in expose,
          f'Access-Control-Expose-Headers is {expose!r}')
    wait_viewers(env, 1, 'after the WHEP POST')
    # the offer went out as bulk ICE with the same ICE servers
    found = sniff.wait_json(rf'{PREFIX}/{DEVICE}/in/{session}$',
                            lambda p: p.get('type') == 'offer', 5)
    check(found, 'the offer never reached the device topic')
    offer = found[1]
    check(offer.get('trickle') is False, f'the offer has trickle '
          f'{offer.get("trickle")}, expected false (bulk ICE)')
    urls = [u for s in offer.get('iceServers', []) for u in s['urls']]
    check('stun:127.0.0.1:3478' in urls and
          'turn:127.0.0.1:3478?transport=udp' in urls,
          f'the offer did not carry the ICE servers: {offer.get("iceServers")}')

    frag_headers = {'Content-Type': 'application/trickle-ice-sdpfrag',
                    'If-Match': etag}
    frag = ('a=ice-ufrag:847r\r\na=ice-pwd:t+BhdbNGyBuxgvZxZkX5nHiC\r\n'
            'm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n'
            'a=candidate:1 1 udp 2122260223 127.0.0.1 40000 typ host\r\n')
    expect(gw.request('PATCH', loc, frag, frag_headers), 204,
           'PATCH with a candidate')
    got = sniff.wait_json(rf'{PREFIX}/{DEVICE}/in/{session}$',
                          lambda p: p.get('type') == 'candidate', 5)
    check(got, 'the PATCHed candidate was not published to the device')
    cand = got[1]
    check(cand == {'type': 'candidate', 'candidate': 'candidate:1 1 udp '
                   '2122260223 127.0.0.1 40000 typ host',
                   'sdpMLineIndex': 0, 'sdpMid': '0'},
          f'the published candidate is {cand}')
    expect(gw.request('PATCH', loc, 'a=end-of-candidates\r\n',
                      frag_headers), 204, 'PATCH end-of-candidates')
    check(sniff.wait_json(rf'{PREFIX}/{DEVICE}/in/{session}$',
                          lambda p: p.get('candidate') == '', 5),
          'end-of-candidates was not published as "candidate":""')
    expect(gw.request('PATCH', loc, '', frag_headers), 204,
           'PATCH with an empty fragment')
    expect(gw.request('PATCH', loc, 'a=ice-ufrag:OTHER\r\na=ice-pwd:'
                      'xxxxxxxxxxxxxxxxxxxxxxxx\r\n', frag_headers), 422,
           'PATCH with another ufrag (ICE restart)')
    expect(gw.request('PATCH', loc, frag, dict(frag_headers,
                                                **{'If-Match': '"nope"'})),
           412, 'PATCH with a wrong If-Match')
    many = ''.join(f'a=candidate:{i} 1 udp 2122260223 127.0.0.1 '
                   f'{40000 + i} typ host\r\n' for i in range(65))
    expect(gw.request('PATCH', loc, many, frag_headers), 400,
           'PATCH with 65 candidates')
    expect(gw.request('PATCH', loc, 'a=mid:7\r\na=candidate:1 1 udp 1 '
                      '127.0.0.1 1 typ host\r\n', frag_headers), 400,
           'PATCH naming an unknown mid')
    n_cands = len([1 for t, p in sniff.messages(rf'.*/{session}$')
                   if p.get('type') == 'candidate'])
    check(n_cands == 2, f'{n_cands} candidate messages reached the device, '
          'expected 2 (the rejected PATCHes must publish nothing)')
    r = expect(gw.request('DELETE', loc), 200, 'DELETE the WHEP session')
    check(sniff.wait_json(rf'{PREFIX}/{DEVICE}/in/{session}$',
                          lambda p: p.get('type') == 'bye', 5),
          'DELETE published no bye to the device')
    wait_viewers(env, 0, 'after DELETE')
    expect(gw.request('DELETE', loc), 404, 'a second DELETE')
    return ('201 with Location, ETag and 2 Link headers; PATCH candidate/'
            'end/empty 204, restart 422, If-Match 412, 65 candidates 400; '
            'DELETE 200 and viewers back to 0')


def case_bad_request(env):
    gw = start_all(env)
    offer, vp8 = offers()
    cases = [
        ('not JSON', '{"type":"offer",'),
        ('JSON but not an object', '["offer"]'),
        ('no sdp', {'type': 'offer'}),
        ('sdp not a string', {'type': 'offer', 'sdp': 42}),
        ('empty sdp', {'type': 'offer', 'sdp': ''}),
        ('type answer', {'type': 'answer', 'sdp': offer}),
        ('garbage SDP', {'type': 'offer', 'sdp': 'hello, world'}),
        ('SDP without m= line', {'type': 'offer', 'sdp': 'v=0\r\no=- 1 1 IN '
                                 'IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n'}),
        ('bad device id', {'type': 'offer', 'sdp': offer, 'device': 'a/b'}),
        ('nested 5000 deep', '[' * 5000 + ']' * 5000),
        ('single-quoted trick', "{'sdp': \"" + '[' * 5000 + '"}'),
        ('not UTF-8', b'{"type":"offer","sdp":"\xff\xfe"}'),
        ('empty body', ''),
    ]
    for what, body in cases:
        r = expect(gw.post_json('/api/start-webrtc', body), 400,
                   f'start-webrtc with {what}')
        log(f'400 for {what}: {r.text().strip()}')
    r = expect(start_webrtc(gw, sdp=vp8), 400, 'start-webrtc, VP8-only offer')
    check('no-compatible-codec' in r.text(), 'the 400 for a VP8-only offer '
          f'does not carry the device\'s message: {r.text()!r}')
    for what, body in [('garbage SDP', 'hello'), ('binary', b'\0\1\2'),
                       ('VP8 only', vp8)]:
        r = expect(whep_post(gw, sdp=body), 400, f'WHEP POST with {what}')
    check('no-compatible-codec' in r.text(), f'WHEP VP8 400: {r.text()!r}')
    expect(gw.post_json('/api/stop-webrtc', {}), 400,
           'stop-webrtc without session')
    expect(gw.post_json('/api/stop-webrtc', 'nope'), 400,
           'stop-webrtc with a non-JSON body')
    check(gw.alive(), 'the gateway died on bad input')
    wait_viewers(env, 0, 'after refused offers')
    r = expect(start_webrtc(gw), 200, 'a good offer after the bad ones')
    gw.post_json('/api/stop-webrtc', {'session': r.json()['session']})
    return f'{len(cases) + 6} malformed requests got 400; VP8 offer 400 ' \
        'with the device\'s no-compatible-codec message'


def case_auth(env):
    token = 'tok-' + os.urandom(12).hex()
    token_file = env.write('token', token + '\n')
    gw = gateway_with_fake_device(env, ['--token-file', token_file])
    good = {'Authorization': f'Bearer {token}'}
    for what, headers in [('no token', {}),
                          ('a wrong token', {'Authorization': 'Bearer x' +
                                             token[1:]}),
                          ('a longer token', {'Authorization': 'Bearer ' +
                                              token + 'x'}),
                          ('Basic auth', {'Authorization': 'Basic YTpi'})]:
        r = expect(gw.request('GET', '/api/devices', headers=headers), 401,
                   f'/api/devices with {what}')
        check((r.header('WWW-Authenticate') or '').startswith('Bearer'),
              f'401 without WWW-Authenticate: Bearer ({what})')
        check(r.header('Access-Control-Allow-Origin') == '*',
              '401 without CORS header')
    expect(whep_post(gw), 401, 'WHEP POST without token')
    expect(gw.request('DELETE', '/whep/cam1/' + '0' * 32), 401,
           'WHEP DELETE without token')
    expect(gw.request('PATCH', '/whep/cam1/' + '0' * 32, 'x',
                      {'Content-Type': 'application/trickle-ice-sdpfrag'}),
           401, 'WHEP PATCH without token')
    expect(start_webrtc(gw), 401, 'start-webrtc without token')
    expect(gw.request('GET', '/api/turn-credentials'), 401,
           'turn-credentials without token')
    gw.wait_device(DEVICE, lambda s: s.get('state') == 'online',
                   headers=good, what='online (with the token)')
    expect(gw.request('GET', '/api/turn-credentials', headers=good), 200,
           'turn-credentials with the token')
    # without a metrics token of its own, /metrics takes this one
    expect(gw.request('GET', '/metrics'), 401, '/metrics without token')
    expect(gw.request('GET', '/metrics', headers=good), 200,
           '/metrics with the token (no --metrics-token-file)')
    expect(gw.request('GET', '/'), 200, 'static files need no token')
    expect(gw.request('OPTIONS', '/whep/cam1'), 204,
           'OPTIONS (CORS preflight) needs no token')
    check(token not in gw.log_text(), 'the token appears in the log')
    empty = env.write('empty-token', '\n')
    out = subprocess.run([env.gateway_bin, '--token-file', empty,
                          '--listen', '127.0.0.1:0'], capture_output=True,
                         timeout=10)
    check(out.returncode == 2 and b'token-file' in out.stderr,
          f'an empty token file: exit {out.returncode}, {out.stderr!r}')
    return '401 + WWW-Authenticate for missing/wrong/longer/Basic; ' \
        'static and OPTIONS open'


def case_not_found(env):
    gw = start_all(env)
    expect(start_webrtc(gw, device='nosuch'), 404,
           'start-webrtc to an unknown device')
    expect(whep_post(gw, device='nosuch'), 404, 'WHEP to an unknown device')
    unknown = '/whep/cam1/' + os.urandom(16).hex()
    expect(gw.request('PATCH', unknown, 'a=end-of-candidates\r\n',
                      {'Content-Type': 'application/trickle-ice-sdpfrag'}),
           404, 'PATCH of an unknown session')
    expect(gw.request('DELETE', unknown), 404, 'DELETE of an unknown session')
    expect(gw.post_json('/api/stop-webrtc', {'session': os.urandom(16).hex()}),
           404, 'stop-webrtc of an unknown session')
    expect(gw.post_json('/api/stop-webrtc', {'session': '../x'}), 404,
           'stop-webrtc of an invalid session id')
    expect(gw.request('GET', '/api/nothing'), 404, 'GET /api/nothing')
    expect(gw.request('GET', '/whep/cam1/a/b'), 404, 'GET /whep/cam1/a/b')
    expect(whep_post(gw, device='bad.id'), 404, 'WHEP to an invalid id')
    # a session on the device, then the device stops
    r = expect(whep_post(gw), 201, 'WHEP POST before the device stops')
    loc = r.header('Location')
    env.service.signal(signal.SIGTERM)
    check(env.service.wait(15) == 0, 'the camera service did not stop '
          'cleanly on SIGTERM')
    gw.wait_device(DEVICE, lambda s: s.get('state') == 'offline',
                   what='offline')
    r = expect(start_webrtc(gw), 404, 'start-webrtc to an offline device')
    check('offline' in r.text(), f'the 404 does not say offline: {r.text()}')
    expect(whep_post(gw), 404, 'WHEP to an offline device')
    expect(gw.request('DELETE', loc), 404,
           'DELETE of a session whose device went offline')
    return '404 for unknown and offline devices, unknown sessions ' \
        '(PATCH/DELETE/stop) and paths'


def case_too_large(env):
    gw = gateway_with_fake_device(env)
    big = 'v=0\r\n' + 'a=x-padding:' + 'x' * (70 * 1024) + '\r\n'
    r = expect(whep_post(gw, sdp=big), 413, 'WHEP POST of 70 KiB')
    log(f'413: {r.text().strip()}')
    expect(start_webrtc(gw, sdp=big), 413, 'start-webrtc of 70 KiB')
    r = expect(gw.request('POST', '/api/start-webrtc',
                          json.dumps({'type': 'offer', 'sdp': big}),
                          {'Content-Type': 'application/json'},
                          chunked=True), 413, 'a chunked 70 KiB body')
    expect(gw.request('PATCH', '/whep/cam1/' + '0' * 32, 'a' * 70000,
                      {'Content-Type': 'application/trickle-ice-sdpfrag'}),
           413, 'PATCH of 70 KiB')
    # Expect: 100-continue with a huge length: refused before any body byte
    with socket.create_connection(('127.0.0.1', gw.port), timeout=10) as s:
        s.sendall(b'POST /whep/cam1 HTTP/1.1\r\nHost: x\r\n'
                  b'Content-Type: application/sdp\r\n'
                  b'Content-Length: 10000000000\r\n'
                  b'Expect: 100-continue\r\n\r\n')
        head = s.recv(4096)
    check(status_of(head) == 413, 'a 10 GB Content-Length with Expect: '
          f'100-continue got {head[:100]!r}, expected 413 before the body')
    # a lying Content-Length with a slow body is still refused on headers
    with socket.create_connection(('127.0.0.1', gw.port), timeout=10) as s:
        s.sendall(b'POST /api/start-webrtc HTTP/1.1\r\nHost: x\r\n'
                  b'Content-Length: 100000\r\n\r\n' + b'x' * 100000)
        raw = b''
        while b'\r\n\r\n' not in raw:
            chunk = s.recv(4096)
            if not chunk:
                break
            raw += chunk
    check(status_of(raw) == 413, f'100000 bytes: {raw[:100]!r}')
    r = expect(gw.request('GET', '/api/devices'), 200,
               'the gateway after oversized bodies')
    check(gw.alive(), 'the gateway died')
    return '413 from Content-Length (also with Expect: 100-continue, ' \
        'before the body) and from a chunked body'


def case_content_type(env):
    gw = gateway_with_fake_device(env)
    offer, _ = offers()
    for ctype in ['text/plain', 'application/json', None]:
        h = {'Content-Type': ctype} if ctype else {}
        expect(gw.request('POST', '/whep/cam1', offer, h), 415,
               f'WHEP POST with Content-Type {ctype}')
    expect(gw.request('PATCH', '/whep/cam1/' + '0' * 32,
                      'a=end-of-candidates\r\n',
                      {'Content-Type': 'application/sdp'}), 415,
           'PATCH with application/sdp')
    expect(gw.request('PATCH', '/whep/cam1/' + '0' * 32,
                      'a=end-of-candidates\r\n'), 415,
           'PATCH without Content-Type')
    return '415 for WHEP POST (text/plain, JSON, none) and PATCH'


def case_max_viewers(env):
    gw = start_all(env, service_args=['--max-viewers', '1'])
    r = expect(start_webrtc(gw), 200, 'the first viewer')
    first = r.json()['session']
    wait_viewers(env, 1, 'with one viewer')
    r = expect(start_webrtc(gw), 503, 'a second viewer over --max-viewers 1')
    check('max-viewers' in r.text(), f'the 503 does not say max-viewers: '
          f'{r.text()!r}')
    expect(whep_post(gw), 503, 'a WHEP viewer over --max-viewers 1')
    expect(gw.post_json('/api/stop-webrtc', {'session': first}), 200,
           'stop the first viewer')
    wait_viewers(env, 0, 'after the first viewer left')
    r = expect(whep_post(gw), 201, 'a viewer once the slot is free')
    expect(gw.request('DELETE', r.header('Location')), 200, 'DELETE')
    return '503 with the device\'s max-viewers message; the freed slot ' \
        'serves the next viewer'


def case_timeout(env):
    env.start_broker()
    fake_device(env, 'mute')
    gw = env.gateway(['--answer-timeout', '2', '--max-sessions', '1'])
    gw.wait_device('mute', lambda s: s.get('state') == 'online')
    sniff = Sniffer(env, f'{PREFIX}/mute/in/#', 'sniff-mute')
    pending = in_background(start_webrtc, gw, device='mute')
    offer = sniff.wait_json(rf'{PREFIX}/mute/in/[0-9a-f]{{32}}$',
                            lambda p: p.get('type') == 'offer', 5)
    check(offer, 'the offer to the mute device was not published')
    # the table holds one session: a second one is refused at once
    r = expect(whep_post(gw, device='mute'), 503,
               'a second session over --max-sessions 1')
    check('too many' in r.text(), f'503 text: {r.text()!r}')
    r = expect(pending.result(), 504, 'start-webrtc to a device that never '
               'answers')
    check(1.5 <= r.took <= 5, f'the 504 came after {r.took:.1f} s; '
          '--answer-timeout is 2 s')
    topic = offer[0]
    check(sniff.wait_json(re.escape(topic) + '$',
                          lambda p: p.get('type') == 'bye', 3),
          'no bye to the device after the timeout')
    r = expect(whep_post(gw, device='mute'), 504, 'WHEP to a mute device')
    return f'504 after {r.took:.1f} s (--answer-timeout 2) with a bye; ' \
        '503 over --max-sessions'


def case_client_gone(env):
    env.start_broker()
    fake_device(env, 'mute')
    gw = env.gateway(['--answer-timeout', '20'])
    gw.wait_device('mute', lambda s: s.get('state') == 'online')
    sniff = Sniffer(env, f'{PREFIX}/mute/in/#', 'sniff-mute')
    body = json.dumps({'type': 'offer', 'sdp': offers()[0],
                       'device': 'mute'}).encode()
    results = []
    def offer_topics():
        return [t for t, p in sniff.messages() if p.get('type') == 'offer']

    for how in ('close', 'reset'):
        n_before = len(offer_topics())
        s = socket.create_connection(('127.0.0.1', gw.port), timeout=10)
        s.sendall(b'POST /api/start-webrtc HTTP/1.1\r\nHost: x\r\n'
                  b'Content-Type: application/json\r\n'
                  b'Content-Length: ' + str(len(body)).encode() +
                  b'\r\n\r\n' + body)
        offer = sniff.wait(lambda t, p: len(offer_topics()) > n_before, 5)
        check(offer, 'the offer was not published')
        topic = offer_topics()[-1]
        t0 = time.monotonic()
        if how == 'reset':
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         b'\x01\x00\x00\x00\x00\x00\x00\x00')
        s.close()
        bye = sniff.wait_json(re.escape(topic) + '$',
                              lambda p: p.get('type') == 'bye', 5)
        check(bye, f'the client went away ({how}) while waiting, but no '
              'bye reached the device within 5 s')
        results.append(f'{how}: bye after {time.monotonic() - t0:.1f} s')
    expect(gw.request('GET', '/api/devices'), 200, 'the gateway afterwards')
    check('went away' in gw.log_text(), 'the log does not say the client '
          'went away')
    return '; '.join(results)


def case_fake_device(env):
    """A device made by hand: malformed replies are ignored, a late valid
    answer still answers; device errors and byes map to HTTP statuses."""
    env.start_broker()
    fake_device(env, 'fake')
    gw = env.gateway(['--answer-timeout', '10'])
    gw.wait_device('fake', lambda s: s.get('state') == 'online')
    sniff = Sniffer(env, f'{PREFIX}/fake/in/#', 'sniff-fake')

    def next_offer(count):
        found = sniff.wait(lambda t, p: len([1 for t_, p_ in sniff.lines
                                             if '"offer"' in p_]) >= count,
                           5)
        check(found, 'no offer reached the fake device')
        offers_ = [t for t, p in sniff.lines if '"offer"' in p]
        return offers_[count - 1].replace('/in/', '/out/')

    answer = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n' \
        'm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=candidate:1 1 udp 1 ' \
        '127.0.0.1 9 typ host\r\n'
    pending = in_background(start_webrtc, gw, device='fake')
    out = next_offer(1)
    for junk in ['not json', '{"type":"dance"}', '{"type":"answer"}',
                 '{"type":"answer","sdp":""}', '[' * 3000, '\xff']:
        env.publish(out, junk)
    env.publish(out, json.dumps({'type': 'candidate', 'candidate':
                                 'candidate:1 1 udp 1 127.0.0.1 9 typ host',
                                 'sdpMLineIndex': 0}))
    env.publish(out, json.dumps({'type': 'answer', 'sdp': answer}))
    r = expect(pending.result(), 200, 'start-webrtc answered after junk')
    check(r.json()['webrtc_answer'] == answer, 'the answer was altered')
    check('malformed message' in gw.log_text(), 'junk was not logged')

    pending = in_background(whep_post, gw, device='fake')
    out = next_offer(2)
    env.publish(out, json.dumps({'type': 'error', 'code': 'max-viewers',
                                 'message': 'already 8 viewers'}))
    r = expect(pending.result(), 503, 'device error max-viewers')
    check('already 8 viewers' in r.text(), f'503 text: {r.text()!r}')

    pending = in_background(whep_post, gw, device='fake')
    out = next_offer(3)
    env.publish(out, json.dumps({'type': 'error', 'code': 'bad-request',
                                 'message': 'line1\nline2'}))
    r = expect(pending.result(), 400, 'device error bad-request')

    pending = in_background(whep_post, gw, device='fake')
    out = next_offer(4)
    env.publish(out, '{"type":"bye"}')
    expect(pending.result(), 503, 'device bye before answering')

    pending = in_background(whep_post, gw, device='fake')
    out = next_offer(5)
    env.publish(out, json.dumps({'type': 'error', 'code': 'internal',
                                 'message': 'not streaming'}))
    r = pending.result()
    check(r.status == 502, f'device error internal gave {r}, expected 502')

    # hostile statuses: never listed, never crash
    for dev, payload in [('junk', 'not json'), ('arr', '[1]'),
                         ('big', json.dumps({'state': 'online',
                                             'pad': 'x' * 20000})),
                         ('deep', '{"a":' * 2000 + '1' + '}' * 2000)]:
        subprocess.run(['mosquitto_pub', '-h', '127.0.0.1', '-p',
                        str(env.port), '-r', '-t', f'{PREFIX}/{dev}/status',
                        '-m', payload], check=True, timeout=10)
    env.publish(f'{PREFIX}/fake/status/extra', '{}')
    time.sleep(0.5)
    devs = gw.devices()
    check(set(devs) == {'fake'}, f'/api/devices lists {sorted(devs)}, '
          'expected only "fake"')
    # an empty retained payload removes the device
    subprocess.run(['mosquitto_pub', '-h', '127.0.0.1', '-p', str(env.port),
                    '-r', '-n', '-t', f'{PREFIX}/fake/status'], check=True,
                   timeout=10)
    deadline = time.monotonic() + 5
    while 'fake' in gw.devices() and time.monotonic() < deadline:
        time.sleep(0.1)
    check('fake' not in gw.devices(), 'a cleared status did not remove '
          'the device')
    expect(start_webrtc(gw, device='fake'), 404, 'a removed device')
    return 'junk ignored then answered (200); device errors → 503/400/502; ' \
        'bye → 503; bad statuses ignored; cleared status removes the device'


def jpeg_size(data):
    """(width, height) from a JPEG's start-of-frame segment, or None."""
    if data[:2] != b'\xff\xd8':
        return None
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xff:
            return None
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2:i + 4], 'big')
        if marker in (0xc0, 0xc1, 0xc2):
            return (int.from_bytes(data[i + 7:i + 9], 'big'),
                    int.from_bytes(data[i + 5:i + 7], 'big'))
        i += 2 + length
    return None


def check_jpeg(env, r, size, what):
    """A 200 image/jpeg of @size that GStreamer's jpegdec decodes."""
    expect(r, 200, what)
    check(r.header('Content-Type') == 'image/jpeg', f'{what}: Content-Type '
          f'{r.header("Content-Type")}')
    check(r.header('Cache-Control') == 'no-store', f'{what}: Cache-Control '
          f'{r.header("Cache-Control")}')
    got = jpeg_size(r.body)
    check(got == size, f'{what}: a JPEG of {got}, expected {size}')
    path = os.path.join(env.workdir, 'snapshot.jpg')
    with open(path, 'wb') as f:
        f.write(r.body)
    p = subprocess.run(['gst-launch-1.0', '-q', 'filesrc', f'location={path}',
                        '!', 'jpegdec', '!', 'fakesink'],
                       capture_output=True, text=True, timeout=30)
    check(p.returncode == 0, f'{what}: jpegdec cannot decode the picture: '
          f'{p.stderr[-400:]}')


def case_snapshot(env):
    """GET /api/snapshot/D from the real camera service: from a camera that
    is off (it starts for the picture and stops again) and while it runs."""
    gw = start_all(env, service_args=['--max-viewers', '4',
                                      '--idle-stop-seconds', '3'])
    service = env.service
    check('still images: JPEG on request' in service.log_text(),
          f'the service does not say it takes pictures: '
          f'{service.log_text()[-1500:]}')
    r = gw.request('GET', f'/api/snapshot/{DEVICE}', timeout=20)
    check_jpeg(env, r, (1280, 720), 'a snapshot of a camera that was off')
    cold = r.took
    check('camera: on (for a still image)' in service.log_text(),
          'the camera did not start for the picture')
    # the camera runs now (it stops 3 s after): a second picture is quick
    r = gw.request('GET', f'/api/snapshot/{DEVICE}', timeout=20)
    check_jpeg(env, r, (1280, 720), 'a snapshot of a running camera')
    warm = r.took
    # generous bounds: the targets (2 s, 0.5 s) are for the benchmark
    check(cold < 10, f'the first picture took {cold:.1f} s')
    check(warm < 5, f'the second picture took {warm:.1f} s')
    deadline = time.monotonic() + 15
    while 'camera: off' not in service.log_text() and \
            time.monotonic() < deadline:
        time.sleep(0.2)
    check('camera: off' in service.log_text(), 'the camera did not stop '
          'again after the pictures')
    r = gw.request('HEAD', f'/api/snapshot/{DEVICE}', timeout=20)
    check(r.status == 200 and r.body == b'', f'HEAD: {r}')
    return f'1280x720 JPEG from an idle camera in {cold:.2f} s, from a ' \
        f'running one in {warm:.2f} s; the camera stops again'


def case_snapshot_errors(env):
    """The gateway's side of snapshots against devices made by hand: the
    parts joined byte for byte, and every error its status."""
    env.start_broker()
    fake_device(env, 'fake')
    fake_device(env, 'mute')
    fake_device(env, 'gone', state='offline')
    gw = env.gateway()
    gw.wait_device('fake', lambda s: s.get('state') == 'online')
    gw.wait_device('gone', lambda s: s.get('state') == 'offline')
    sniff = Sniffer(env, f'{PREFIX}/+/in/#', 'sniff-snapshots')
    asked = [0]

    def next_request():
        n = asked[0] + 1
        found = sniff.wait(lambda t, p: len([1 for t_, p_ in sniff.lines
                                             if '"snapshot"' in p_]) >= n, 5)
        check(found, 'no snapshot request reached the device')
        asked[0] = n
        topic = [t for t, p in sniff.lines if '"snapshot"' in p][n - 1]
        return topic.replace('/in/', '/out/')

    def part(data, i, n, size, w=64, h=48):
        return json.dumps({'type': 'image', 'contentType': 'image/jpeg',
                           'width': w, 'height': h, 'part': i, 'parts': n,
                           'size': size,
                           'data': base64.b64encode(data).decode()})

    picture = bytes(range(256)) * 700        # 179,200 bytes, three parts
    chunks = [picture[i:i + 65536] for i in range(0, len(picture), 65536)]
    pending = in_background(gw.request, 'GET', '/api/snapshot/fake')
    out = next_request()
    env.publish(out, 'not json')
    for i, c in enumerate(chunks):
        env.publish(out, part(c, i, len(chunks), len(picture)))
    r = pending.result()
    check(r.status == 200 and r.body == picture, f'the joined picture: '
          f'{r.status}, {len(r.body)} bytes, expected {len(picture)}')
    check(r.header('Content-Type') == 'image/jpeg', 'Content-Type '
          f'{r.header("Content-Type")}')

    results = []
    for reply, status in [
            ([json.dumps({'type': 'error', 'code': 'no-snapshot',
                          'message': 'no pad'})], 501),
            ([json.dumps({'type': 'error', 'code': 'bad-request',
                          'message': 'unknown type "snapshot"'})], 501),
            ([json.dumps({'type': 'error', 'code': 'busy',
                          'message': 'too many'})], 503),
            ([json.dumps({'type': 'error', 'code': 'internal',
                          'message': 'no picture'})], 502),
            ([part(chunks[1], 1, 3, len(picture))], 502),
            ([part(chunks[0], 0, 2, 70000), part(chunks[1], 1, 2, 70000)],
             502)]:
        pending = in_background(gw.request, 'GET', '/api/snapshot/fake')
        out = next_request()
        for payload in reply:
            env.publish(out, payload)
        r = expect(pending.result(), status, f'device reply {reply[0][:60]}')
        results.append(str(status))

    expect(gw.request('GET', '/api/snapshot/nobody'), 404, 'unknown device')
    expect(gw.request('GET', '/api/snapshot/gone'), 503, 'offline device')
    expect(gw.request('GET', '/api/snapshot/bad$id'), 404, 'a bad device id')
    r = expect(gw.request('POST', '/api/snapshot/fake', b'{}',
                          {'Content-Type': 'application/json'}), 405,
               'POST to a snapshot')
    r = expect(gw.request('GET', '/api/snapshot/mute', timeout=30), 504,
               'a device that never answers')
    check(7 <= r.took <= 12, f'the 504 came after {r.took:.1f} s (8 s)')
    check(gw.alive(), 'the gateway died')
    return 'parts joined byte for byte; no-snapshot/old device 501, busy ' \
        f'503, internal/bad parts 502 ({", ".join(results)}); 404/503/405; ' \
        f'504 after {r.took:.1f} s'


def discover_seconds(path):
    """The duration gst-discoverer-1.0 reads from a file, in seconds, or
    None when it cannot play it."""
    p = subprocess.run(['gst-discoverer-1.0', path], capture_output=True,
                       text=True, timeout=60)
    m = re.search(r'Duration: (\d+):(\d+):([\d.]+)', p.stdout)
    if p.returncode != 0 or not m:
        return None
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def segment_files(folder):
    return sorted(n for n in os.listdir(folder) if n.endswith('.mp4'))


def case_recording(env):
    """Recording with the real camera, started and stopped through the
    gateway: segments of --record-segment-s that gst-discoverer plays, the
    list, and a download equal to the file byte for byte while a live
    viewer keeps its frame rate."""
    folder = os.path.join(env.workdir, 'recordings')
    gw = start_all(env, service_args=['--max-viewers', '4', '--record-dir',
                                      folder, '--record-segment-s', '2'])
    r = expect(gw.request('GET', f'/api/recordings/{DEVICE}'), 200,
               'the list before any recording')
    check(r.json() == {'segments': [], 'recording': False}, f'{r.json()}')
    check(env.last_status().get('recording') is False, 'the status does '
          f'not say "recording": false: {env.last_status()}')
    viewer = env.viewer(['--frames', '1', '--hold', '60', '--timeout', '90',
                         '--no-decode'])
    check(viewer.wait_event('first-frame', 20), 'the viewer got no frame')
    r = expect(gw.post_json(f'/api/record/{DEVICE}', {'action': 'start'}),
               200, 'record start')
    check(r.json() == {'recording': True}, f'record start: {r.json()}')
    check(env.wait_status(lambda s: s.get('recording') is True, 5),
          f'the status does not say it records: {env.last_status()}')
    time.sleep(7)
    r = expect(gw.request('GET', f'/api/recordings/{DEVICE}'), 200, 'list')
    listed = r.json()
    check(listed['recording'] is True and len(listed['segments']) >= 3,
          f'after 7 s of 2 s segments the list is {listed}')
    # a segment that is complete, downloaded while the viewer watches
    seg = listed['segments'][1]
    on_disk = open(os.path.join(folder, seg['name']), 'rb').read()
    check(seg['bytes'] == len(on_disk), f'listed {seg}, the file has '
          f'{len(on_disk)} bytes')
    # the viewer's frame rate for 3 s, then for 3 s of downloads back to
    # back: the second may not fall far below the first
    f0, t0 = viewer.frame_count()
    time.sleep(3)
    f1, t1 = viewer.frame_count()
    before = (f1 - f0) / max(t1 - t0, 0.1)
    downloads, took = 0, 0.0
    while time.monotonic() - t1 < 3 or downloads == 0:
        r = gw.request('GET', f'/api/recordings/{DEVICE}/{seg["name"]}')
        expect(r, 200, 'a download')
        check(r.body == on_disk, f'the download ({len(r.body)} bytes) '
              f'differs from {seg["name"]} on the camera ({len(on_disk)} '
              'bytes)')
        downloads += 1
        took = max(took, r.took)
    f2, t2 = viewer.frame_count()
    fps = (f2 - f1) / max(t2 - t1, 0.1)
    check(fps >= 0.7 * before, f'the live viewer got {fps:.1f} frames/s '
          f'during downloads, {before:.1f} before')
    r = expect(gw.post_json(f'/api/record/{DEVICE}', {'action': 'stop'}),
               200, 'record stop')
    check(r.json() == {'recording': False}, f'record stop: {r.json()}')
    check(env.wait_status(lambda s: s.get('recording') is False, 5),
          f'the status still says it records: {env.last_status()}')
    time.sleep(2)
    names = segment_files(folder)
    durations = [discover_seconds(os.path.join(folder, n)) for n in names]
    check(all(d is not None for d in durations), 'gst-discoverer cannot '
          f'play some segments: {list(zip(names, durations))}')
    check(all(1.5 <= d <= 3.5 for d in durations[1:-1]), 'segments are '
          f'not about 2 s: {list(zip(names, durations))}')
    r = gw.request('HEAD', f'/api/recordings/{DEVICE}/{seg["name"]}')
    check(r.status == 200 and r.header('Content-Length') ==
          str(len(on_disk)), f'HEAD: {r.status} {r.header("Content-Length")}')
    check(r.header('Accept-Ranges') == 'bytes', 'no "Accept-Ranges: bytes"')
    # byte ranges, as a browser's <video> asks for them to seek
    path, size = f'/api/recordings/{DEVICE}/{seg["name"]}', len(on_disk)
    check(size > 200000, f'{seg["name"]} has only {size} bytes')
    for asked, first, last in (('65530-200000', 65530, 200000),
                               ('100-', 100, size - 1),
                               ('-100', size - 100, size - 1),
                               (f'0-{size + 50}', 0, size - 1)):
        r = gw.request('GET', path, headers={'Range': f'bytes={asked}'})
        check(r.status == 206, f'Range: bytes={asked}: {r.status}')
        check(r.header('Content-Range') == f'bytes {first}-{last}/{size}',
              f'Range: bytes={asked}: Content-Range {r.header("Content-Range")}')
        check(r.body == on_disk[first:last + 1], f'Range: bytes={asked}: '
              f'{len(r.body)} bytes, not bytes {first}-{last} of the file')
    r = gw.request('HEAD', path, headers={'Range': 'bytes=10-19'})
    check(r.status == 206 and r.header('Content-Length') == '10',
          f'HEAD with a range: {r.status} {r.header("Content-Length")}')
    for asked in (f'bytes={size}-', 'bytes=-0'):
        r = gw.request('GET', path, headers={'Range': asked})
        check(r.status == 416 and r.header('Content-Range') ==
              f'bytes */{size}', f'Range: {asked}: {r.status} '
              f'{r.header("Content-Range")}')
    # several ranges, or a malformed one (a number too long for 64 bits
    # too): the whole segment
    for asked in ('bytes=0-9,20-29', 'bytes=9-0', 'bytes=x-', 'pages=1-2',
                  'bytes=-', 'bytes=5', 'bytes=99999999999999999999-',
                  'bytes=0-99999999999999999999'):
        r = gw.request('GET', path, headers={'Range': asked})
        check(r.status == 200 and r.body == on_disk,
              f'Range: {asked}: {r.status}, {len(r.body)} bytes')
    expect(gw.request('GET', f'/api/recordings/{DEVICE}/20000101-000000.mp4'),
           404, 'a segment that does not exist')
    return f'{len(names)} segments of {", ".join(f"{d:.1f}" for d in durations)} s; ' \
        f'{seg["name"]} ({len(on_disk)} bytes) downloaded {downloads} times ' \
        f'in 3 s (the slowest {took:.2f} s) byte for byte; the viewer at ' \
        f'{fps:.0f} frames/s during them, {before:.0f} before'


def case_recording_kill(env):
    """kill -9 while recording continuously: every segment but the last
    plays whole, and the recording stops less than a second and a half
    before the kill."""
    folder = os.path.join(env.workdir, 'recordings')
    env.start_broker()
    env.start_service(['--record-dir', folder, '--record', 'continuous',
                       '--record-segment-s', '2'])
    check(env.wait_status(lambda s: s.get('recording') is True, 10),
          f'the service does not record: {env.last_status()}')
    deadline = time.monotonic() + 10
    while not segment_files(folder) and time.monotonic() < deadline:
        time.sleep(0.05)
    check(segment_files(folder), 'no segment file appeared')
    started = time.time()
    time.sleep(5.5)
    env.service.signal(signal.SIGKILL)
    killed = time.time()
    env.service.wait(10)
    names = segment_files(folder)
    durations = [discover_seconds(os.path.join(folder, n)) or 0.0
                 for n in names]
    # a last segment cut before its first fragment is empty
    whole = [d for d in durations[:-1]]
    check(len(names) >= 3 and all(1.5 <= d <= 3.5 for d in whole[1:]),
          f'segments before the kill: {list(zip(names, durations))}')
    lost = (killed - started) - sum(durations)
    check(lost <= 1.5, f'{lost:.2f} s of video before the kill are missing '
          f'({list(zip(names, durations))})')
    return f'{len(names)} segments ({", ".join(f"{d:.2f}" for d in durations)} ' \
        f's); {max(lost, 0):.2f} s lost at kill -9'


def case_recording_retention(env):
    """--record-max-mb deletes the oldest segments, never the current one;
    --record-max-age-h those older than it, and empty leftovers go."""
    folder = os.path.join(env.workdir, 'recordings')
    os.makedirs(folder)
    # from a week and a day ago (the default keeps 168 h), an empty one cut
    # off by a power cut, and a file that is not a segment
    old = time.strftime('%Y%m%d-%H%M%S.mp4',
                        time.gmtime(time.time() - 8 * 24 * 3600))
    for name, size in [(old, 1000), ('20261201-000000-1.mp4', 0),
                       ('notes.txt', 10)]:
        with open(os.path.join(folder, name), 'wb') as f:
            f.write(b'x' * size)
    env.start_broker()
    env.start_service(['--record-dir', folder, '--record', 'continuous',
                       '--record-segment-s', '1', '--record-max-mb', '1'])
    check(env.wait_status(lambda s: s.get('recording') is True, 10),
          f'the service does not record: {env.last_status()}')
    seen = set()
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline:
        seen.update(segment_files(folder))
        time.sleep(0.2)
    names = segment_files(folder)
    check(old not in names and '20261201-000000-1.mp4' not in names,
          f'a segment past --record-max-age-h or an empty one is left: '
          f'{names}')
    check(os.path.exists(os.path.join(folder, 'notes.txt')), 'a file that '
          'is not a segment was deleted')
    seen -= {old, '20261201-000000-1.mp4'}
    total = sum(os.path.getsize(os.path.join(folder, n)) for n in names)
    gone = sorted(seen - set(names))
    check(gone and gone[0] == sorted(seen)[0], f'the oldest segment was not '
          f'deleted: seen {sorted(seen)}, left {names}')
    check(all(g < names[0] for g in gone), f'a newer segment went before an '
          f'older one: gone {gone}, left {names}')
    last = os.path.getsize(os.path.join(folder, names[-1]))
    check(total <= 1024 * 1024 + last + 512 * 1024, f'{total} bytes kept '
          f'with --record-max-mb 1')
    return f'{len(gone)} of {len(seen)} segments deleted, oldest first; ' \
        f'{total} bytes kept'


def case_recording_disk_full(env):
    """A full disk stops the recording with a status and a log line; the
    viewers keep watching."""
    folder = os.path.join(env.workdir, 'small')
    os.makedirs(folder)
    env.start_broker()
    # a 600 kB file system of our own: a mount namespace inside the test's
    argv = ['unshare', '-m', '--', 'sh', '-c',
            f'mount -t tmpfs -o size=600k tmpfs {folder} && exec "$@"', 'sh',
            env.service_bin, '--source', 'test', '--broker', env.broker_uri,
            '--device', DEVICE, '--ice-address', '127.0.0.1', '--record-dir',
            folder, '--record-segment-s', '60']
    env.service = env.spawn('picamrtc', argv)
    env.wait_online()
    viewer = env.viewer(['--frames', '1', '--hold', '40', '--timeout', '70',
                         '--no-decode'])
    check(viewer.wait_event('first-frame', 20), 'the viewer got no frame')
    gw = env.gateway()
    gw.wait_device(DEVICE, lambda s: s.get('state') == 'online')
    expect(gw.post_json(f'/api/record/{DEVICE}', {'action': 'start'}), 200,
           'record start')
    st = env.wait_status(lambda s: s.get('recording') is False and
                         s.get('recordError'), 20)
    check(st, f'the status never said the recording stopped: '
          f'{env.last_status()}')
    check('full' in st['recordError'], f'"recordError" does not say the '
          f'disk is full: {st["recordError"]!r}')
    check('recording stopped' in env.service.log_text(), 'no log line says '
          f'the recording stopped: {env.service.log_text()[-2000:]}')
    f0, t0 = viewer.frame_count()
    time.sleep(2)
    f1, t1 = viewer.frame_count()
    fps = (f1 - f0) / max(t1 - t0, 0.1)
    check(fps >= 15, f'the viewer got {fps:.1f} frames/s after the disk '
          'filled up')
    return f'stopped with "recordError": {st["recordError"]!r}; the viewer ' \
        f'at {fps:.0f} frames/s'


def case_recording_bench(env):
    """The figures of docs/recording.md (not a test: run it by hand, with
    nothing else running, python3 tests/gateway/gateway.py recording-bench
    from a build's environment): snapshot times from an idle and from a
    running camera, a default 60 s segment's size, and its download while a
    viewer watches."""
    folder = os.path.join(env.workdir, 'recordings')
    gw = start_all(env, service_args=['--record-dir', folder,
                                      '--idle-stop-seconds', '2'])
    cold, warm = [], []
    for _ in range(5):
        time.sleep(4)                   # the camera is off again
        cold.append(expect(gw.request('GET', f'/api/snapshot/{DEVICE}'),
                           200, 'snapshot').took)
        warm.append(expect(gw.request('GET', f'/api/snapshot/{DEVICE}'),
                           200, 'snapshot').took)
    viewer = env.viewer(['--frames', '1', '--hold', '120', '--timeout',
                         '150'])
    check(viewer.wait_event('first-frame', 20), 'the viewer got no frame')
    expect(gw.post_json(f'/api/record/{DEVICE}', {'action': 'start'}), 200,
           'record start')
    time.sleep(65)
    names = segment_files(folder)
    check(len(names) >= 2, f'segments after 65 s: {names}')
    size = os.path.getsize(os.path.join(folder, names[0]))
    seconds = discover_seconds(os.path.join(folder, names[0])) or 0
    f0, t0 = viewer.frame_count()
    r = expect(gw.request('GET', f'/api/recordings/{DEVICE}/{names[0]}'), 200,
               'download')
    f1, t1 = viewer.frame_count()
    fps = (f1 - f0) / max(t1 - t0, 0.1)
    mb_per_hour = size / max(seconds, 1) * 3600 / 1e6
    return (f'snapshot from an idle camera p50 {sorted(cold)[2]:.2f} s '
            f'(max {max(cold):.2f}), from a running one p50 '
            f'{sorted(warm)[2]:.3f} s (max {max(warm):.3f}); a {seconds:.1f} s '
            f'segment is {size / 1e6:.1f} MB ({mb_per_hour:.0f} MB/h), '
            f'downloaded in {r.took:.2f} s while the viewer got {fps:.0f} '
            f'frames/s')


def case_recordings_fake(env):
    """The gateway's side of recordings against a device made by hand: the
    list joined from its pages, a download joined from its chunks byte for
    byte, and each error its status."""
    env.start_broker()
    fake_device(env, 'fake')
    gw = env.gateway()
    gw.wait_device('fake', lambda s: s.get('state') == 'online')
    sniff = Sniffer(env, f'{PREFIX}/fake/in/#', 'sniff-recordings')
    seen = [0]

    def requests():
        return [(t, p) for t, p in sniff.lines if '"type"' in p]

    def next_request(kind):
        n = seen[0] + 1
        found = sniff.wait(lambda t, p: len(requests()) >= n, 5)
        check(found, f'no {kind} request reached the device')
        seen[0] = n
        topic, payload = requests()[n - 1]
        msg = json.loads(payload)
        check(msg.get('type') == kind, f'expected a {kind}, got {payload}')
        return topic.replace('/in/', '/out/'), msg

    def segments(first, count, total):
        return [{'name': f'20261205-10{i // 60:02d}{i % 60:02d}.mp4',
                 'start': 1796464800 + i, 'durationMs': 1000,
                 'bytes': 1000 + i} for i in range(first, first + count)]

    # the list in two pages of the device's
    pending = in_background(gw.request, 'GET', '/api/recordings/fake')
    out, msg = next_request('recordings')
    check(msg.get('from', 0) == 0, f'the first page asked from {msg}')
    env.publish(out, json.dumps({'type': 'segments', 'recording': True,
                                 'from': 0, 'total': 250,
                                 'segments': segments(0, 200, 250)}))
    out, msg = next_request('recordings')
    check(msg.get('from') == 200, f'the second page asked from {msg}')
    env.publish(out, json.dumps({'type': 'segments', 'recording': True,
                                 'from': 200, 'total': 250,
                                 'segments': segments(200, 50, 250)}))
    r = expect(pending.result(), 200, 'the list of recordings')
    body = r.json()
    check(body['recording'] is True and len(body['segments']) == 250,
          f'the list: recording {body.get("recording")}, '
          f'{len(body.get("segments", []))} segments')
    first = body['segments'][0]
    check(first == {'name': '20261205-100000.mp4',
                    'start': '2026-12-05T10:00:00Z', 'durationMs': 1000,
                    'bytes': 1000}, f'the first segment reads {first}')

    # a download of 200,000 bytes in chunks the gateway asks for
    data = os.urandom(200000)
    name = '20261205-100000.mp4'

    def serve(data, until, size_at=None, wait_s=5):
        """Answers the gateway's fetches of segment `name` from `data`, in
        order, until `until` bytes went; each chunk says the segment's size
        as size_at(offset) (default len(data))."""
        served = 0
        while served < until:
            n = seen[0] + 1
            check(sniff.wait(lambda t, p: len(requests()) >= n, wait_s),
                  f'no fetch at offset {served} within {wait_s} s')
            out, msg = next_request('fetch')
            check(msg['name'] == name and msg['offset'] == served and
                  served + msg['length'] <= until, f'fetch {msg}, expected '
                  f'offset {served} of a segment of {until} bytes')
            chunk = data[served:served + msg['length']]
            env.publish(out, json.dumps({
                'type': 'chunk', 'name': name, 'offset': served,
                'size': size_at(served) if size_at else len(data),
                'data': base64.b64encode(chunk).decode()}))
            served += len(chunk)

    pending = in_background(gw.request, 'GET', f'/api/recordings/fake/{name}')
    serve(data, len(data))
    r = expect(pending.result(), 200, 'a download')
    check(r.body == data, f'the download has {len(r.body)} bytes, not the '
          f'device\'s {len(data)}, or others')
    check(r.header('Content-Type') == 'video/mp4', 'Content-Type '
          f'{r.header("Content-Type")}')

    # the segment being written grows while it is downloaded: the download
    # is what it had when it began, whole
    grown = os.urandom(300000)
    pending = in_background(gw.request, 'GET', f'/api/recordings/fake/{name}')
    serve(grown, 200000, size_at=lambda offset: 200000 + offset // 2)
    r = expect(pending.result(), 200, 'a download of a growing segment')
    check(r.body == grown[:200000], f'the download of a growing segment has '
          f'{len(r.body)} bytes, not its first 200000')

    # a client that takes nothing for 10 s (a paused player), longer than a
    # device may take for a chunk, with the gateway's window full: the
    # download goes on when it reads again
    big = os.urandom(8 * 1024 * 1024)

    def paused_client():
        c = socket.socket()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.settimeout(60)
        c.connect(('127.0.0.1', gw.port))
        c.sendall(f'GET /api/recordings/fake/{name} HTTP/1.1\r\n'
                  'Host: x\r\nConnection: close\r\n\r\n'.encode())
        time.sleep(10)
        got = bytearray()
        while True:
            b = c.recv(65536)
            if not b:
                break
            got += b
        c.close()
        return bytes(got)
    pending = in_background(paused_client)
    serve(big, len(big), wait_s=20)     # the client pauses 10 s
    reply = pending.result()
    head, _, body = reply.partition(b'\r\n\r\n')
    check(head.startswith(b'HTTP/1.1 200') and body == big, 'the paused '
          f'client got {head.split(b" ")[1:2]} and {len(body)} of '
          f'{len(big)} bytes')

    results = []
    for route, method, body, reply, status in [
            (f'/api/recordings/fake/{name}', 'GET', None,
             {'type': 'error', 'code': 'not-found', 'message': 'gone'}, 404),
            ('/api/recordings/fake', 'GET', None,
             {'type': 'error', 'code': 'no-recording', 'message': 'none'},
             501),
            ('/api/record/fake', 'POST', {'action': 'start'},
             {'type': 'error', 'code': 'bad-request',
              'message': 'unknown type "record"'}, 501),
            ('/api/record/fake', 'POST', {'action': 'start'},
             {'type': 'recording', 'recording': True}, 200),
            ('/api/record/fake', 'POST', {'action': 'stop'},
             {'type': 'error', 'code': 'internal', 'message': 'disk'}, 502)]:
        if method == 'GET':
            pending = in_background(gw.request, 'GET', route)
        else:
            pending = in_background(gw.post_json, route, body)
        out, msg = next_request('fetch' if route.count('/') == 4 else
                                'recordings' if 'recordings' in route else
                                'record')
        env.publish(out, json.dumps(reply))
        r = expect(pending.result(), status, f'{method} {route} answered '
                   f'{reply}')
        if status == 200:
            check(r.json() == {'recording': True}, f'record start: {r}')
        results.append(str(status))

    # the device goes offline in the middle of a download: the connection
    # is cut (a short body), the gateway goes on
    def cut_download():
        try:
            r = gw.request('GET', f'/api/recordings/fake/{name}')
            return r.status, len(r.body)
        except Failure as e:
            return 'cut', str(e)
    pending = in_background(cut_download)
    out, msg = next_request('fetch')
    env.publish(out, json.dumps({
        'type': 'chunk', 'name': name, 'offset': 0, 'size': len(data),
        'data': base64.b64encode(data[:65536]).decode()}))
    time.sleep(0.3)
    fake_device(env, 'fake', state='offline')
    got = pending.result()
    check(got[0] == 'cut' or got[1] < len(data), f'a download whose device '
          f'went offline ended {got}')
    fake_device(env, 'fake')
    gw.wait_device('fake', lambda s: s.get('state') == 'online')

    expect(gw.post_json('/api/record/fake', {'action': 'pause'}), 400,
           'a bad action')
    expect(gw.post_json('/api/record/fake', 'not json'), 400, 'not JSON')
    expect(gw.request('GET', '/api/recordings/fake/x.mp4'), 404,
           'not a segment name')
    expect(gw.request('GET', '/api/recordings/fake/../etc/passwd'), 404,
           'a path')
    expect(gw.request('GET', '/api/recordings/nobody'), 404, 'unknown device')
    check(gw.alive(), 'the gateway died')
    return f'250 segments from 2 pages; 200,000 bytes byte for byte; ' \
        f'errors {", ".join(results)}; bad input 400/404'


def case_broker(env):
    """503 without a broker; resubscription after a broker restart."""
    port = free_port()
    env.broker_uri = f'mqtt://127.0.0.1:{port}'
    lonely = env.gateway(name='no-broker')
    r = expect(start_webrtc(lonely), 503, 'start-webrtc with no broker')
    check('broker' in r.text(), f'503 text: {r.text()!r}')
    expect(whep_post(lonely), 503, 'WHEP with no broker')
    expect(lonely.request('GET', '/api/devices'), 200,
           '/api/devices with no broker')
    rc = lonely.stop()
    check(rc == 0, f'a gateway without broker exited with {rc} on SIGTERM')

    env.start_broker(port, watch_status=False)
    fake_device(env, 'fake')
    gw = env.gateway(['--answer-timeout', '30'])
    gw.wait_device('fake', lambda s: s.get('state') == 'online', 10)
    sniff = Sniffer(env, f'{PREFIX}/fake/in/#', 'sniff-fake')
    pending = in_background(whep_post, gw, device='fake')
    found = sniff.wait(lambda t, p: '"offer"' in p, 5)
    check(found, 'no offer published')
    out = found[0].replace('/in/', '/out/')
    # restart the broker: subscriptions are gone until the gateway
    # resubscribes
    env.broker.signal(signal.SIGKILL)
    env.broker.wait(5)
    expect(start_webrtc(gw, device='fake'), 503,
           'start-webrtc while the broker is down')
    env.start_broker(port, watch_status=False)
    fake_device(env, 'fake')
    deadline = time.monotonic() + 40
    while gw.log_text().count(': connected to the MQTT broker') < 2:
        check(time.monotonic() < deadline, 'the gateway did not reconnect '
              'within 40 s of the broker restart')
        time.sleep(0.1)
    gw.wait_device('fake', lambda s: s.get('state') == 'online', 10,
                   'after the broker restarted')
    check('lost the MQTT broker' in gw.log_text(), 'the log does not say '
          'the broker was lost')
    answer = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n' \
        'm=video 9 UDP/TLS/RTP/SAVPF 102\r\n'
    env.publish(out, json.dumps({'type': 'answer', 'sdp': answer}))
    r = expect(pending.result(), 201, 'an answer after the broker restart')
    return '503 without a broker; an open session survives a broker ' \
        'restart (resubscribed) and gets its answer'


def case_broker_late(env):
    """The broker comes up after the gateway: it must connect by itself.
    Not a meson test yet: with lib/pcr-mqtt.c as of this writing, a first
    mosquitto_connect_async() that fails after the non-blocking connect()
    (EINPROGRESS, then refused) leaves libmosquitto's state "new", and its
    loop thread waits for a connect call that never comes. Timing decides
    which way it fails, so the case flaps (it fails in a normal build and
    passes under ASan)."""
    port = free_port()
    env.broker_uri = f'mqtt://127.0.0.1:{port}'
    gw = env.gateway()
    expect(start_webrtc(gw), 503, 'start-webrtc with no broker')
    env.start_broker(port, watch_status=False)
    fake_device(env, DEVICE)
    gw.wait_device(DEVICE, lambda s: s.get('state') == 'online', 35,
                   'after the broker came up')
    return 'connected to a broker that came up late'


def case_broker_outage(env):
    """The broker goes away for PICAMRTC_OUTAGE_SECONDS (10) while the
    gateway and a camera service run. Meanwhile every signalling request
    gets a prompt 503 saying why (never a wait for the answer timeout);
    once the broker is back, a WHEP POST and a start-webrtc, each retried
    as a page would on 503 or 404, get their answers within 5 s."""
    down = int(os.environ.get('PICAMRTC_OUTAGE_SECONDS', '10'))
    env.start_broker()
    env.start_service(['--max-viewers', '4'])
    gw = env.gateway(['--answer-timeout', '10'],
                     extra_env={'GST_DEBUG': 'pcrmqtt:4'})
    gw.wait_device(DEVICE, lambda s: s.get('state') == 'online',
                   what='online')
    r = expect(whep_post(gw), 201, 'WHEP POST before the outage')
    before = r.took
    expect(gw.request('DELETE', r.header('Location')), 200, 'DELETE')

    t_stop = time.monotonic()
    env.stop_broker()
    # The prompt 503 is promised once the gateway knows the broker is gone
    # (its socket closes a moment after the broker's exit); a request in
    # that moment waits for its answer like any other, since the offer is
    # resent when the broker is back.
    deadline = time.monotonic() + 5
    while 'lost the MQTT broker' not in gw.log_text():
        check(time.monotonic() < deadline, 'the gateway did not notice the '
              'broker was gone within 5 s')
        time.sleep(0.05)
    during = []
    while time.monotonic() - t_stop < down - 1.5:
        for what, fn in (('start-webrtc', start_webrtc),
                         ('WHEP POST', whep_post)):
            r = expect(fn(gw, timeout=15), 503,
                       f'{what} while the broker is down')
            check('broker' in r.text(), f'the 503 for {what} during the '
                  f'outage does not say the broker is the problem: '
                  f'{r.text()!r}')
            during.append(r.took)
        time.sleep(1)
    expect(gw.request('GET', '/api/devices'), 200,
           '/api/devices while the broker is down')
    time.sleep(max(0.0, down - (time.monotonic() - t_stop)))
    env.start_broker_again()
    t_back = time.monotonic()

    def retry(what, fn, ok):
        """Retries fn as a page would until it gets ok; (seconds after the
        broker's return, the reply, the statuses seen)."""
        seen = []
        while time.monotonic() - t_back < 20:
            r = fn(gw, timeout=15)
            seen.append(r.status)
            if r.status == ok:
                return time.monotonic() - t_back, r, seen
            # a clear error while the gateway or the device reconnects
            expect(r, r.status if r.status in (503, 404) else 503,
                   f'{what} just after the broker came back')
            time.sleep(0.2)
        raise Failure(f'{what} got no answer within 20 s of the broker\'s '
                      f'return (statuses {seen})')

    whep = in_background(retry, 'WHEP POST', whep_post, 201)
    seed = in_background(retry, 'start-webrtc', start_webrtc, 200)
    t_whep, r_whep, seen_whep = whep.result(30)
    t_seed, r_seed, seen_seed = seed.result(30)
    log(f'during the outage: {len(during)} requests, 503 in '
        f'{max(during) * 1000:.0f} ms at most; after the return: WHEP '
        f'answered at {t_whep:.1f} s ({seen_whep}), start-webrtc at '
        f'{t_seed:.1f} s ({seen_seed})')
    check(r_whep.text().startswith('v=0'), 'the WHEP answer is no SDP')
    check('webrtc_answer' in r_seed.json(), 'start-webrtc gave no answer')
    check(max(during) <= 2, f'a request during the outage waited '
          f'{max(during):.1f} s for its 503 (it should not wait at all)')
    check(t_whep <= 5, f'the first WHEP answer came {t_whep:.1f} s after '
          f'the broker\'s return (limit 5 s; statuses {seen_whep})')
    check(t_seed <= 5, f'the first start-webrtc answer came {t_seed:.1f} s '
          f'after the broker\'s return (limit 5 s; statuses {seen_seed})')
    expect(gw.request('DELETE', r_whep.header('Location')), 200, 'DELETE')
    expect(gw.post_json('/api/stop-webrtc',
                        {'session': r_seed.json()['session']}), 200,
           'stop-webrtc')
    wait_viewers(env, 0, 'after both sessions ended')
    waits = [int(m) for m in re.findall(
        r'next connection attempt to \S+ in (\d+) ms', gw.log_text())]
    check(waits and max(waits) <= 30000, 'the gateway\'s waits between '
          f'connection attempts were {waits} ms (cap 30 s)')
    samples = parse_metrics(expect(gw.request('GET', '/metrics'), 200,
                                   '/metrics after the outage').text())
    check(metric(samples, 'picamrtc_gateway_mqtt_connected') == 1 and
          metric(samples, 'picamrtc_gateway_mqtt_reconnects_total') == 1,
          '/metrics does not say connected, after one reconnect')
    return (f'{down} s outage: {len(during)} requests got 503 within '
            f'{max(during) * 1000:.0f} ms; after the return WHEP answered '
            f'at {t_whep:.1f} s, start-webrtc at {t_seed:.1f} s (before the '
            f'outage: {before * 1000:.0f} ms); gateway retried '
            f'{len(waits)} times, {min(waits)}-{max(waits)} ms apart')


def case_slow_client(env):
    """Slow or stalled HTTP clients (slowloris): a connection that sends
    nothing, one whose headers never end, one whose body comes slower
    than its Content-Length promises, a keep-alive connection left idle
    after a request, and one that asks for a lot and never reads the
    answers. The gateway closes each within 30 s and serves
    everyone else promptly meanwhile; a request that is only waiting for
    a device's answer is not cut short."""
    limit = 30
    env.start_broker()
    fake_device(env, 'mute')
    gw = env.gateway(['--answer-timeout', '25'])
    gw.wait_device('mute', lambda s: s.get('state') == 'online')
    pending = in_background(start_webrtc, gw, device='mute', timeout=40)
    t_pending = time.monotonic()
    conns = {}

    def connect(name, data):
        s = socket.create_connection(('127.0.0.1', gw.port), timeout=5)
        s.setblocking(False)
        if data:
            s.sendall(data)
        conns[name] = {'sock': s, 't0': time.monotonic(), 'closed': None,
                       'got': b''}

    connect('silent', b'')
    connect('unfinished headers', b'POST /api/start-webrtc HTTP/1.1\r\n'
            b'Host: x\r\nContent-Type: application/json\r\n')
    connect('slow body', b'POST /api/start-webrtc HTTP/1.1\r\nHost: x\r\n'
            b'Content-Type: application/json\r\nContent-Length: 1000\r\n'
            b'\r\n{"type":')
    connect('idle keep-alive', b'GET /api/devices HTTP/1.1\r\nHost: x\r\n'
            b'\r\n')
    # 1000 pipelined GETs of the web client (tens of MB of answers, more
    # than any socket buffer), never read until the end
    connect('never reads', b'GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n' * 1000)
    served = []
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < limit + 2:
            now = time.monotonic()
            for name, c in conns.items():
                if c['closed'] is not None or name == 'never reads':
                    continue
                try:
                    if name == 'slow body':
                        c['sock'].send(b' ')   # a byte a second
                    data = c['sock'].recv(65536)
                    if data:
                        c['got'] += data
                    else:
                        c['closed'] = now - c['t0']
                except BlockingIOError:
                    pass
                except OSError:             # reset, or a broken pipe
                    c['closed'] = now - c['t0']
            if all(c['closed'] is not None for n, c in conns.items()
                   if n != 'never reads'):
                break
            r = expect(gw.request('GET', '/api/devices', timeout=10), 200,
                       'a normal request while slow clients hang on')
            served.append(r.took)
            time.sleep(1)
        # now read what the reader that never read was sent: the end of
        # it, once the gateway has given up on it, is end-of-file or a reset
        c = conns['never reads']
        time.sleep(max(0, c['t0'] + limit - time.monotonic()))
        c['sock'].settimeout(3)
        try:
            while c['sock'].recv(1 << 20):
                pass
            c['closed'] = time.monotonic() - c['t0']
            log('never reads: end of file')
        except socket.timeout:
            log('never reads: still open')
        except OSError as e:
            log(f'never reads: {e}')
            c['closed'] = time.monotonic() - c['t0']
    finally:
        for c in conns.values():
            c['sock'].close()
    r = pending.result(40)
    waited = time.monotonic() - t_pending
    closed = {n: c['closed'] for n, c in conns.items()}
    log('closed after: ' + ', '.join(
        f'{n} {"never" if t is None else f"{t:.1f} s"}'
        for n, t in closed.items()) +
        f'; {len(served)} normal requests, slowest '
        f'{max(served) * 1000:.0f} ms; the waiting request: {r.status} '
        f'after {r.took:.1f} s')
    check(max(served) < 1, f'a normal request took {max(served):.1f} s '
          'while slow clients held connections')
    check(status_of(conns['idle keep-alive']['got']) == 200,
          'the keep-alive connection\'s request got no 200 first')
    expect(r, 504, 'a start-webrtc waiting for a mute device')
    check(r.took >= 24, f'a request waiting for the device\'s answer was '
          f'ended after {r.took:.1f} s, before --answer-timeout 25 s')
    never = [n for n, t in closed.items() if t is None]
    check(not never, f'the gateway kept {", ".join(never)} open for '
          f'{limit} s and more: a few hundred such clients would use up '
          'its file descriptors (slowloris)')
    return ('closed ' + ', '.join(f'{n} after {t:.1f} s'
                                  for n, t in closed.items()) +
            f'; others served in {max(served) * 1000:.0f} ms at most; the '
            f'request waiting for an answer got its 504 after {waited:.0f} s')


def case_options(env):
    gw = gateway_with_fake_device(env)
    r = expect(gw.request('OPTIONS', '/whep/cam1'), 204, 'OPTIONS /whep/cam1')
    check(r.header('Accept-Post') == 'application/sdp',
          f'Accept-Post is {r.header("Accept-Post")!r}')
    check(r.header('Access-Control-Allow-Origin') == '*', 'no CORS origin')
    methods = r.header('Access-Control-Allow-Methods') or ''
    for m in ('GET', 'POST', 'PATCH', 'DELETE', 'OPTIONS'):
        check(m in methods, f'Access-Control-Allow-Methods {methods!r} '
              f'lacks {m}')
    allow_h = (r.header('Access-Control-Allow-Headers') or '').lower()
    for h in ('authorization', 'content-type', 'if-match'):
        check(h in allow_h, f'Access-Control-Allow-Headers lacks {h}')
    expose = r.header('Access-Control-Expose-Headers') or ''
    for h in ('Location', 'Link', 'ETag'):
        check(h in expose, f'Access-Control-Expose-Headers lacks {h}')
    r = expect(gw.request('OPTIONS', '/whep/cam1/' + '0' * 32), 204,
               'OPTIONS on a WHEP session')
    check(r.header('Accept-Patch') == 'application/trickle-ice-sdpfrag',
          f'Accept-Patch is {r.header("Accept-Patch")!r}')
    for path in ('/api/start-webrtc', '/api/stop-webrtc',
                 '/api/turn-credentials', '/api/devices'):
        r = expect(gw.request('OPTIONS', path), 204, f'OPTIONS {path}')
        check(r.header('Access-Control-Allow-Origin') == '*',
              f'OPTIONS {path}: no CORS')
    for method, path in [('GET', '/api/start-webrtc'), ('PUT', '/whep/cam1'),
                         ('DELETE', '/api/devices'), ('GET', '/whep/cam1'),
                         ('POST', '/whep/cam1/' + '0' * 32),
                         ('PUT', '/api/stop-webrtc')]:
        r = expect(gw.request(method, path, b'' if method != 'GET' else None),
                   405, f'{method} {path}')
        check(r.header('Allow'), f'405 for {method} {path} has no Allow')
        check(r.header('Access-Control-Allow-Origin') == '*',
              f'405 for {method} {path} has no CORS header')
    r = expect(gw.request('GET', '/api/nope'), 404, 'GET /api/nope')
    check(r.header('Access-Control-Allow-Origin') == '*',
          '404 on /api has no CORS header')
    check(r.header('Access-Control-Allow-Origin') == '*', 'CORS')
    r = gw.request('GET', '/')
    check(r.header('Access-Control-Allow-Origin') is None,
          'static files carry CORS headers (they should not need them)')
    return 'OPTIONS 204 with Accept-Post/Accept-Patch and CORS; 405 with ' \
        'Allow; CORS on error replies'


def case_turn(env):
    secret = 'sec-' + os.urandom(16).hex()
    secret_file = env.write('turn-secret', secret + '\n')
    env.start_broker()
    fake_device(env, 'fake')
    gw = env.gateway(['--turn-secret-file', secret_file,
                      '--turn-uri', 'turn:127.0.0.1:3478?transport=udp',
                      '--turn-uri', 'turns:127.0.0.1:5349?transport=tcp',
                      '--turn-uri', 'turn:alice:wonder@127.0.0.1:3479',
                      '--stun-uri', 'stun:127.0.0.1:3478',
                      '--turn-ttl', '600', '--answer-timeout', '10'],
                     extra_env={'GST_DEBUG': 'pcr*:9'})
    gw.wait_device('fake', lambda s: s.get('state') == 'online')
    t0 = int(time.time())
    r = expect(gw.request('GET', '/api/turn-credentials'), 200,
               'GET /api/turn-credentials')
    check(r.header('Content-Type').startswith('application/json'),
          'turn-credentials is not JSON')
    servers = r.json()
    check(isinstance(servers, list) and len(servers) == 3,
          f'expected 3 RTCIceServer entries, got {servers}')
    stun, rest, static = servers
    check(stun == {'urls': ['stun:127.0.0.1:3478']}, f'STUN entry {stun}')
    check(rest['urls'] == ['turn:127.0.0.1:3478?transport=udp',
                           'turns:127.0.0.1:5349?transport=tcp'],
          f'TURN REST urls {rest["urls"]}')
    user = rest['username']
    m = re.fullmatch(r'(\d+):picamrtc', user)
    check(m, f'TURN REST username {user!r} is not "<expiry>:picamrtc"')
    expiry = int(m.group(1))
    check(t0 + 600 - 5 <= expiry <= int(time.time()) + 600 + 5,
          f'expiry {expiry} is not now + 600 (--turn-ttl)')
    out = subprocess.run(['openssl', 'dgst', '-sha1', '-hmac', secret,
                          '-binary'], input=user.encode(),
                         capture_output=True, check=True, timeout=10)
    expected = base64.b64encode(out.stdout).decode()
    check(expected == base64.b64encode(hmac.new(
        secret.encode(), user.encode(), hashlib.sha1).digest()).decode(),
        'openssl and python disagree on HMAC-SHA1')
    check(rest['credential'] == expected, f'credential {rest["credential"]}'
          f' != base64(HMAC-SHA1(secret, username)) {expected}')
    check(static == {'urls': ['turn:127.0.0.1:3479'], 'username': 'alice',
                     'credential': 'wonder'}, f'static TURN entry {static}')

    # the device gets the same servers, and the WHEP viewer Link headers
    sniff = Sniffer(env, f'{PREFIX}/fake/in/#', 'sniff-fake')
    pending = in_background(whep_post, gw, device='fake')
    found = sniff.wait_json(rf'{PREFIX}/fake/in/.*',
                            lambda p: p.get('type') == 'offer', 5)
    check(found, 'no offer')
    offer = found[1]
    env.publish(found[0].replace('/in/', '/out/'), json.dumps(
        {'type': 'answer', 'sdp': 'v=0\r\ns=-\r\nm=video 9 RTP/AVP 96\r\n'}))
    r = expect(pending.result(), 201, 'WHEP with TURN')
    rest_o = [s for s in offer['iceServers'] if s.get('username', '')
              .endswith(':picamrtc')]
    check(len(rest_o) == 1, f'offer iceServers {offer["iceServers"]}')
    links = r.all('Link')
    check(len(links) == 4, f'expected 4 Link headers (1 STUN, 2 TURN REST, 1 '
          f'static TURN), got {links}')
    cred = rest_o[0]['credential']
    check(any(f'credential="{cred}"' in l_ for l_ in links),
          'the viewer and the device did not get the same TURN credential')
    expected = base64.b64encode(hmac.new(
        secret.encode(), rest_o[0]['username'].encode(),
        hashlib.sha1).digest()).decode()
    check(cred == expected, 'the device\'s TURN credential is wrong')

    everything = r.text() + ''.join(links) + json.dumps(servers) + \
        json.dumps(offer) + ''.join(p for _, p in sniff.lines)
    check(secret not in everything, 'the TURN secret leaked to a client')
    rc = gw.stop()
    check(rc == 0, f'gateway exit {rc}')
    check(secret not in gw.log_text(), 'the TURN secret is in the log '
          '(GST_DEBUG=pcr*:9)')
    # without a secret a TURN url needs USER:PASS
    bad = subprocess.run([env.gateway_bin, '--turn-uri', 'turn:h:3478',
                          '--listen', '127.0.0.1:0'], capture_output=True,
                         timeout=10)
    check(bad.returncode == 2 and b'turn-uri' in bad.stderr,
          f'turn-uri without credentials: {bad.returncode} {bad.stderr!r}')
    return 'REST credential matches openssl; same credential in the ' \
        'offer and the Link headers; secret in no reply, no MQTT ' \
        'message, no log'


def case_tls(env):
    key = os.path.join(env.workdir, 'key.pem')
    cert = os.path.join(env.workdir, 'cert.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048',
                    '-nodes', '-keyout', key, '-out', cert, '-days', '1',
                    '-subj', '/CN=localhost', '-addext',
                    'subjectAltName=IP:127.0.0.1'], check=True,
                   capture_output=True, timeout=60)
    gw = gateway_with_fake_device(env, ['--tls-cert', cert, '--tls-key', key])
    gw.context = ssl.create_default_context(cafile=cert)
    r = expect(gw.request('GET', '/'), 200, 'GET / over HTTPS')
    check(b'picamrtc test' in r.body, 'HTTPS served something else')
    gw.wait_device(DEVICE, lambda s: s.get('state') == 'online')
    r = expect(gw.request('OPTIONS', '/whep/cam1'), 204, 'OPTIONS over TLS')
    # plain HTTP to the HTTPS port: refused, the server lives on
    raw = raw_exchange(gw.port, b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    check(not raw.startswith(b'HTTP/1.1 200'), 'plain HTTP was served')
    expect(gw.request('GET', '/api/devices'), 200, 'HTTPS after plain HTTP')
    bad = subprocess.run([env.gateway_bin, '--tls-cert', key, '--tls-key',
                          key, '--listen', '127.0.0.1:0', '--www', env.www],
                         capture_output=True, timeout=10)
    check(bad.returncode == 2 and b'tls-cert' in bad.stderr,
          f'a key as certificate: exit {bad.returncode} {bad.stderr!r}')
    bad = subprocess.run([env.gateway_bin, '--tls-cert', cert, '--listen',
                          '127.0.0.1:0'], capture_output=True, timeout=10)
    check(bad.returncode == 2 and b'tls-key' in bad.stderr,
          f'--tls-cert alone: exit {bad.returncode} {bad.stderr!r}')
    return 'HTTPS with a verified certificate; bad pairs exit 2'


def case_config(env):
    env.start_broker()
    fake_device(env, DEVICE)

    def bad(args, key):
        listen = [] if '--config' in args or '--listen' in args else \
            ['--listen', '127.0.0.1:0']
        out = subprocess.run([env.gateway_bin, '--www', env.www] + listen +
                             args, capture_output=True, timeout=10)
        err = out.stderr.decode('utf-8', 'replace').strip()
        check(out.returncode == 2, f'{args}: exit {out.returncode} (expected '
              f'2): {err}')
        check(key in err and err.count('\n') == 0,
              f'{args}: the message does not name {key} in one line: {err!r}')
        return err

    def conf(text):
        return env.write('gw.conf', text)

    msgs = [
        bad(['--listen', 'nonsense'], 'listen'),
        bad(['--listen', '127.0.0.1:99999'], 'listen'),
        bad(['--listen', 'example.org:80'], 'listen'),
        bad(['--broker', 'http://x'], 'broker'),
        bad(['--device', 'a b'], 'device'),
        bad(['--topic-prefix', 'a/#'], 'topic-prefix'),
        bad(['--answer-timeout', '0'], 'answer-timeout'),
        bad(['--turn-ttl', 'abc'], 'turn-ttl'),
        bad(['--stun-uri', 'http://x'], 'stun-uri'),
        bad(['--turn-uri', 'turn:a:b@h:99999'], 'turn-uri'),
        bad(['--token-file', '/nonexistent'], 'token-file'),
        bad(['--max-body-size', '10'], 'max-body-size'),
        bad(['--password-file', env.write('pw', 'x')], 'password-file'),
        bad(['--config', conf('[gateway]\nturn-ttl=abc\n')], 'turn-ttl'),
        bad(['--config', conf('[gateway]\nanswer-timeout=999\n')],
            'answer-timeout'),
        bad(['--config', conf('[gateway]\nlisten=x\n')], 'listen'),
        bad(['--config', conf('[other]\nlisten=x\n')], 'gateway'),
        bad(['--config', '/nonexistent.conf'], 'nonexistent'),
        bad(['--janus', 'ftp://127.0.0.1/janus'], 'janus'),
        bad(['--janus', 'not a url'], 'janus'),
        bad(['--janus', 'http:///janus'], 'janus'),
        bad(['--janus', 'http://127.0.0.1:8088/janus?room=5'], 'janus'),
        bad(['--janus', 'http://127.0.0.1:8088/janus?adminkey=k'], 'janus'),
        bad(['--janus', 'http://127.0.0.1:8088/janus?secret=k'], 'janus'),
        bad(['--janus', 'http://127.0.0.1:8088/janus?apisecret='], 'janus'),
        bad(['--config', conf('[gateway]\njanus=http://h/j?room=x\n')],
            'janus'),
    ]
    log('config errors:\n  ' + '\n  '.join(msgs))
    path = conf(f'[gateway]\nbroker={env.broker_uri}\nlisten=127.0.0.1:0\n'
                f'www={env.www}\nstun-uri=stun:a.example:3478;'
                'stun:b.example\nanswer-timeout=3\n# a comment\n')
    gw = env.gateway(['--config', path], name='from-file')
    servers = expect(gw.request('GET', '/api/turn-credentials'), 200,
                     'turn-credentials from the config file').json()
    check(servers == [{'urls': ['stun:a.example:3478',
                                'stun:b.example:3478']}],
          f'the config file\'s stun-uri list gave {servers}')
    gw2 = env.gateway(['--config', path, '--stun-uri', 'stun:c.example:1'],
                      name='overridden')
    servers = gw2.request('GET', '/api/turn-credentials').json()
    check(servers == [{'urls': ['stun:c.example:1']}],
          f'the command line did not win: {servers}')
    gw2.wait_device(DEVICE, lambda s: s.get('state') == 'online')
    # the shipped sample configuration is valid as it is
    sample = os.path.join(SOURCE_ROOT, 'data', 'gateway.conf')
    gw3 = env.gateway(['--config', sample, '--broker', env.broker_uri,
                       '--listen', '127.0.0.1:0', '--www', env.www],
                      name='sample-config')
    gw3.wait_device(DEVICE, lambda s: s.get('state') == 'online')
    return f'{len(msgs)} bad values exit 2 naming the key; config file ' \
        'read; the command line wins; data/gateway.conf loads'


def case_hostile(env):
    """Garbage on the socket never kills the server."""
    gw = gateway_with_fake_device(env)
    junk = [
        b'\x00\x01\x02\x03' * 100,
        b'GET\r\n\r\n',
        b'GET / HTTP/9.9\r\n\r\n',
        b'GET /' + b'a' * 100000 + b' HTTP/1.1\r\nHost: x\r\n\r\n',
        b'GET / HTTP/1.1\r\nHost: x\r\nX: ' + b'y' * 100000 + b'\r\n\r\n',
        b'POST /api/start-webrtc HTTP/1.1\r\nHost: x\r\n'
        b'Transfer-Encoding: chunked\r\n\r\nzz\r\n',
        b'POST /api/start-webrtc HTTP/1.1\r\nHost: x\r\n'
        b'Content-Length: -5\r\n\r\n',
        b'POST /api/start-webrtc HTTP/1.1\r\nHost: x\r\n'
        b'Content-Length: 10\r\n\r\nabc',
        b'GET /%00 HTTP/1.1\r\nHost: x\r\n\r\n',
        b'GET /%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n',
        b'\xff\xfe GET / HTTP/1.1\r\n\r\n',
        b'PATCH /whep/cam1/' + b'0' * 32 + b' HTTP/1.1\r\nHost: x\r\n'
        b'Content-Type: application/trickle-ice-sdpfrag\r\n'
        b'Content-Length: 5\r\n\r\n\x00\x01\x02\x03\x04',
    ]
    for data in junk:
        raw_exchange(gw.port, data, timeout=3)
        check(gw.alive(), f'the gateway died on {data[:60]!r}')
    # many idle connections, then a normal request
    socks = [socket.create_connection(('127.0.0.1', gw.port))
             for _ in range(50)]
    expect(gw.request('GET', '/api/devices'), 200, 'with 50 idle sockets')
    for s in socks:
        s.close()
    # a burst of requests
    for i in range(200):
        gw.request('GET', '/api/devices')
    check(gw.alive(), 'the gateway died')
    return f'{len(junk)} kinds of garbage, 50 idle sockets, 200 requests'


def case_stats(env):
    """The device's per-viewer stats: the gateway asks for them in every
    offer, keeps the last valid one of each session and serves it with its
    age at GET <WHEP resource>/stats and /api/stats?session=S, behind the
    token; 204 before any, 404 for a session it does not have. Hostile
    stats (oversized, mistyped, out of range) are dropped without touching
    what it keeps for that session or any other."""
    env.start_broker()
    fake_device(env, 'fake')
    token = 'tok-' + os.urandom(12).hex()
    gw = env.gateway(['--token-file', env.write('token', token + '\n')])
    auth = {'Authorization': f'Bearer {token}'}
    gw.wait_device('fake', lambda s: s.get('state') == 'online',
                   headers=auth)
    sniff = Sniffer(env, f'{PREFIX}/fake/in/#', 'sniff-fake')
    answer = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n' \
        'm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=candidate:1 1 udp 1 ' \
        '127.0.0.1 9 typ host\r\n'

    def answered_session(start, n):
        pending = in_background(start, gw, device='fake', headers=auth)
        found = sniff.wait(lambda t, p: sum('"offer"' in p_ for _, p_ in
                                            sniff.lines) >= n, 5)
        check(found, 'no offer reached the fake device')
        topic, payload = [(t, p) for t, p in sniff.lines if '"offer"' in p][
            n - 1]
        check(json.loads(payload).get('stats') is True,
              f'the gateway\'s offer did not ask for stats: {payload[:80]}')
        out = topic.replace('/in/', '/out/')
        env.publish(out, json.dumps({'type': 'answer', 'sdp': answer}))
        return pending.result(), out

    def get(path, status, what, headers=auth):
        return expect(gw.request('GET', path, headers=headers), status, what)

    r, out1 = answered_session(whep_post, 1)
    expect(r, 201, 'WHEP offer answered by the fake device')
    stats1 = r.header('Location') + '/stats'
    r = get(stats1, 204, 'stats before the device sent any')
    check(r.body == b'', f'a 204 with a body: {r.body[:80]!r}')
    get(stats1, 401, 'stats without the token', headers={})
    get(stats1, 401, 'stats with a wrong token',
        headers={'Authorization': 'Bearer x' + token[1:]})

    first = {'type': 'stats', 'rendition': 'high', 'width': 1280,
             'height': 720, 'estimate': 1934567, 'bitrate': 1700000,
             'loss': 0.03125, 'rtt': 18, 'note': '<script>x</script>'}
    env.publish(out1, json.dumps(first))
    deadline = time.monotonic() + 5
    while True:
        r = gw.request('GET', stats1, headers=auth)
        if r.status != 204 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    expect(r, 200, 'stats once the device sent some')
    check(r.header('Content-Type').startswith('application/json'),
          f'stats served as {r.header("Content-Type")}')
    check(r.header('Cache-Control') == 'no-store',
          'stats may be cached: no Cache-Control: no-store')
    got = r.json()
    age = got.pop('ageMs', None)
    check(isinstance(age, int) and 0 <= age < 5000,
          f'"ageMs" is {age!r}, expected the milliseconds since it came')
    want = {k: v for k, v in first.items() if k != 'note'}
    check(got == want, f'served {got}, the device said {want} (fields it '
          'does not know, like "note", must not be passed on)')
    time.sleep(0.3)
    later = get(stats1, 200, 'stats again').json()
    check(later['ageMs'] >= age + 200,
          f'the age did not grow: {age} ms, then {later["ageMs"]} ms')

    # the seed's API has a session handle too
    r, out2 = answered_session(start_webrtc, 2)
    expect(r, 200, 'start-webrtc answered by the fake device')
    sid2 = r.json()['session']
    stats2 = f'/api/stats?session={sid2}'
    get(stats2, 204, 'bulk session stats before any')
    hostile = [
        json.dumps({'type': 'stats', 'rendition': 'high', 'estimate': 1,
                    'pad': 'x' * 5000}),                    # over 4 KiB
        json.dumps({'type': 'stats', 'rendition': 'high', 'estimate': -1}),
        json.dumps({'type': 'stats', 'rendition': '<img src=x>',
                    'estimate': 1}),
        json.dumps({'type': 'stats', 'rendition': 'high', 'estimate': 1,
                    'loss': 7}),
        json.dumps({'type': 'stats', 'rendition': 'high',
                    'estimate': '1900000'}),
        json.dumps({'type': 'stats'}),
        '{"type":"stats","rendition":"high","estimate":' + '[' * 3000,
        'not json', '\xff',
    ]
    for payload in hostile:
        env.publish(out2, payload)
    time.sleep(0.5)
    check(gw.alive(), 'the gateway died on hostile stats')
    get(stats2, 204, 'after hostile stats only: nothing kept')
    check(get(stats1, 200, 'the other session after hostile stats').json()
          ['estimate'] == first['estimate'], 'hostile stats for another '
          'session changed this one\'s')
    check('stats of' in gw.log_text() and 'bytes from device fake ignored'
          in gw.log_text(), 'the oversized stats were not logged as such')
    env.publish(out2, json.dumps({'type': 'stats', 'rendition': 'low',
                                  'estimate': 300000}))
    deadline = time.monotonic() + 5
    while gw.request('GET', stats2, headers=auth).status == 204 and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    got = get(stats2, 200, 'bulk session stats').json()
    check(got.get('rendition') == 'low' and got.get('estimate') == 300000
          and 'width' not in got and 'loss' not in got,
          f'bulk session stats: {got}')

    unknown = '0' * 32
    get(f'/whep/fake/{unknown}/stats', 404, 'stats of an unknown session')
    get(f'/api/stats?session={unknown}', 404, 'api stats, unknown session')
    get('/api/stats?session=a.b', 404, 'api stats, not a session id')
    get('/api/stats', 400, 'api stats without ?session=')
    get(stats1.replace('/whep/fake/', '/whep/cam1/'), 404,
        'stats under another device\'s path')
    get(stats1 + '/more', 404, 'a path below stats')
    r = expect(gw.request('POST', stats1, '{}', auth), 405, 'POST on stats')
    check('GET' in (r.header('Allow') or ''), f'Allow: {r.header("Allow")}')
    expect(gw.request('DELETE', stats1[:-len('/stats')], headers=auth), 200,
           'DELETE the WHEP session')
    get(stats1, 404, 'stats of a deleted session')
    get(stats2, 200, 'the other session keeps its stats')
    return ('offers ask for stats; 204 before, 200 with the device\'s '
            'checked fields + ageMs after (WHEP and start-webrtc), 401 '
            f'without the token, {len(hostile)} hostile payloads ignored, '
            '404 unknown/deleted, 400 without a session')


METRIC_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, ((label, value), ...)): float} of an exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith('#'):
            continue
        m = METRIC_LINE.match(line)
        check(m, f'/metrics has a line that is not a sample: {line!r}')
        labels = tuple(sorted(LABEL.findall(m.group(2) or '')))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric(samples, name, **labels):
    """The sample's value, or None when /metrics has no such series."""
    return samples.get((name, tuple(sorted(labels.items()))))


def promtool_check(env, what, args, text=None):
    out = subprocess.run(['promtool', 'check'] + args, input=text,
                         capture_output=True, text=True, timeout=60,
                         cwd=env.workdir)
    check(out.returncode == 0, f'promtool check {" ".join(args)} rejects '
          f'{what} (exit {out.returncode}): {out.stdout} {out.stderr}')


def case_metrics(env):
    """GET /metrics: its token rule, the figures moving as a person watching
    would expect (a session open then closed, an answer timed, a viewer
    counted with frames flowing, the encoder and source named), the text
    accepted by promtool, as is data/prometheus.yml; a device's hostile
    metrics are dropped without harm, and a device that stops reporting
    loses its figures after three intervals but keeps online."""
    token = 'tok-' + os.urandom(12).hex()
    metrics_token = 'met-' + os.urandom(12).hex()
    auth = {'Authorization': f'Bearer {token}'}
    scrape_auth = {'Authorization': f'Bearer {metrics_token}'}
    env.start_broker()
    env.start_service(['--max-viewers', '4'])
    gw = env.gateway(['--token-file', env.write('token', token + '\n'),
                      '--metrics-token-file',
                      env.write('metrics-token', metrics_token + '\n')])
    gw.wait_device(DEVICE, lambda s: s.get('state') == 'online',
                   headers=auth, what='online')

    # the token rule: its own token, and only that one
    for what, headers in [('no token', {}),
                          ('a wrong token', {'Authorization': 'Bearer x' +
                                             metrics_token[1:]}),
                          ('the viewing token', auth)]:
        expect(gw.request('GET', '/metrics', headers=headers), 401,
               f'/metrics with {what}')
    expect(gw.request('GET', '/api/devices', headers=scrape_auth), 401,
           'the metrics token on /api/devices')

    def scrape():
        r = expect(gw.request('GET', '/metrics', headers=scrape_auth), 200,
                   '/metrics with the metrics token')
        check((r.header('Content-Type') or '').startswith(
            'text/plain; version=0.0.4'), f'/metrics served as '
            f'{r.header("Content-Type")}')
        return r.text()

    def wait_metrics(pred, what, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            text = scrape()
            samples = parse_metrics(text)
            if pred(samples):
                return text, samples
            check(time.monotonic() < deadline, f'/metrics never showed '
                  f'{what} within {timeout} s:\n{text}')
            time.sleep(0.5)

    # a session through the gateway: open, answered (timed), closed
    r = expect(start_webrtc(gw, headers=auth), 200, 'start-webrtc')
    samples = parse_metrics(scrape())
    check(metric(samples, 'picamrtc_gateway_sessions') == 1,
          'picamrtc_gateway_sessions is not 1 with a session open')
    check((metric(samples, 'picamrtc_gateway_answer_seconds_count') or 0)
          >= 1, 'the answer was not counted in picamrtc_gateway_answer_'
          'seconds')
    check(metric(samples, 'picamrtc_gateway_answer_seconds_bucket',
                 le='+Inf') == metric(samples, 'picamrtc_gateway_answer_'
                                      'seconds_count'),
          'the +Inf bucket differs from the count')
    expect(gw.post_json('/api/stop-webrtc', {'session': r.json()['session']},
                        auth), 200, 'stop-webrtc')
    samples = parse_metrics(scrape())
    check(metric(samples, 'picamrtc_gateway_sessions') == 0,
          'picamrtc_gateway_sessions is not 0 after stop-webrtc')
    for route, code, least in [('start-webrtc', '200', 1),
                               ('stop-webrtc', '200', 1),
                               ('metrics', '401', 3), ('metrics', '200', 1),
                               ('devices', '401', 1)]:
        got = metric(samples, 'picamrtc_gateway_http_requests_total',
                     route=route, code=code) or 0
        check(got >= least, f'requests_total{{route="{route}",code="{code}"'
              f'}} is {got}, expected at least {least}')
    check(metric(samples, 'picamrtc_gateway_mqtt_connected') == 1,
          'picamrtc_gateway_mqtt_connected is not 1')
    check(metric(samples, 'picamrtc_device_online', device=DEVICE) == 1,
          'picamrtc_device_online is not 1 for the running camera')

    # a real viewer: counted, and frames flow while it watches
    wait_viewers(env, 0, 'after stop-webrtc')
    v = env.viewer(['--frames', '30', '--hold', '60', '--timeout', '90'])
    expect_frames = pcrtest.expect_frames
    expect_frames(v, 20)
    text, samples = wait_metrics(
        lambda s: metric(s, 'picamrtc_device_viewers', device=DEVICE) == 1
        and (metric(s, 'picamrtc_device_frames_per_second', device=DEVICE,
                    rendition='high') or 0) > 0,
        'viewers 1 and fps > 0 while the viewer watches')
    fps = metric(samples, 'picamrtc_device_frames_per_second', device=DEVICE,
                 rendition='high')
    rate = metric(samples, 'picamrtc_device_sent_bytes_per_second',
                  device=DEVICE, rendition='high') or 0
    check(rate > 0, f'sent_bytes_per_second is {rate} while frames flow')
    info = [k for k in samples if k[0] == 'picamrtc_device_info' and
            ('device', DEVICE) in k[1]]
    check(len(info) == 1, f'picamrtc_device_info for {DEVICE}: {info}')
    labels = dict(info[0][1])
    check(labels.get('source') == 'videotestsrc' and
          labels.get('encoder', '').endswith('enc'),
          f'the info metric names source {labels.get("source")!r} and '
          f'encoder {labels.get("encoder")!r}')
    for name in ('picamrtc_device_camera_restarts_total',
                 'picamrtc_device_nacks_total',
                 'picamrtc_device_retransmissions_total'):
        check(metric(samples, name, device=DEVICE) is not None,
              f'no {name} for {DEVICE}')
    promtool_check(env, 'the scraped /metrics', ['metrics'], text)
    v.stop()
    wait_metrics(lambda s: metric(s, 'picamrtc_device_viewers',
                                  device=DEVICE) == 0,
                 'viewers back to 0 after the viewer left')

    # the sample scrape config, with its token file where it says
    conf = os.path.join(SOURCE_ROOT, 'data', 'prometheus.yml')
    with open(conf) as f:
        yml = f.read()
    m = re.search(r'credentials_file:\s*(\S+)', yml)
    check(m, 'data/prometheus.yml names no credentials_file')
    local = env.write('prometheus.yml', yml.replace(
        m.group(1), env.write('scrape-token', metrics_token + '\n')))
    promtool_check(env, 'data/prometheus.yml', ['config', local])
    # the sample dashboard is JSON and graphs only metrics /metrics has
    with open(os.path.join(SOURCE_ROOT, 'data',
                           'grafana-dashboard.json')) as f:
        dashboard = json.load(f)
    exprs = [t['expr'] for p in dashboard['panels'] for t in p['targets']]
    served = set(re.findall(r'^# TYPE (\w+)', text, re.M))
    used = {re.sub(r'_(bucket|sum|count)$', '', n) for e in exprs
            for n in re.findall(r'picamrtc_\w+', e)}
    check(len(dashboard['panels']) >= 8 and used <= served,
          f'the dashboard graphs metrics /metrics lacks: {used - served}')

    # a device's own reports: hostile ones change nothing, a silent device
    # loses its figures after three intervals but stays online
    fake_device(env, 'fake')
    gw.wait_device('fake', lambda s: s.get('state') == 'online',
                   headers=auth)
    topic = f'{PREFIX}/fake/metrics'
    good = {'type': 'metrics', 'interval': 1, 'viewers': 3, 'restarts': 2,
            'encoder': 'v4l2h264enc', 'source': 'libcamerasrc',
            'renditions': [{'name': 'high', 'fps': 25, 'bitrate': 800000}]}
    env.publish(topic, json.dumps(good))
    wait_metrics(lambda s: metric(s, 'picamrtc_device_viewers',
                                  device='fake') == 3, 'the fake\'s report')
    hostile = [
        json.dumps(dict(good, viewers=9, pad='x' * 5000)),    # over 4 KiB
        'not json', '\xff', json.dumps([good]),
        json.dumps(dict(good, type='stats', viewers=9)),
        '{"type":"metrics","viewers":' + '[' * 3000,
    ]
    for payload in hostile:
        env.publish(topic, payload)
    env.publish(f'{PREFIX}/ghost/metrics', json.dumps(good))  # no status
    time.sleep(0.5)
    samples = parse_metrics(scrape())
    check(metric(samples, 'picamrtc_device_viewers', device='fake') == 3,
          'a hostile report changed the fake\'s figures')
    check(not any(('device', 'ghost') in k[1] for k in samples),
          'a device that never sent a status got figures')
    # bad fields are left out, the rest kept; no label is injected
    env.publish(topic, json.dumps(dict(
        good, viewers='3', restarts=-1, encoder='x"} 1\n# EVIL',
        renditions=[{'name': 'high', 'fps': 1e9, 'bitrate': 700000}])))
    text, samples = wait_metrics(
        lambda s: metric(s, 'picamrtc_device_sent_bytes_per_second',
                         device='fake', rendition='high') == 700000 / 8,
        'the fake\'s report with bad fields')
    check(metric(samples, 'picamrtc_device_viewers', device='fake') is None
          and metric(samples, 'picamrtc_device_frames_per_second',
                     device='fake', rendition='high') is None,
          'bad fields (a string viewers, fps 1e9) were not left out')
    check('EVIL' not in text, 'the device\'s label text reached /metrics')
    promtool_check(env, '/metrics after hostile reports', ['metrics'], text)
    check(gw.alive(), 'the gateway died on hostile metrics')
    wait_metrics(lambda s: metric(s, 'picamrtc_device_sent_bytes_per_second',
                                  device='fake', rendition='high') is None,
                 'the silent fake\'s figures dropped', timeout=10)
    fake_device(env, 'fake', 'offline')
    wait_metrics(lambda s: metric(s, 'picamrtc_device_online',
                                  device='fake') == 0, 'the fake offline')
    return (f'401 without/wrong/viewing token, 200 with the metrics token; '
            f'sessions 1→0, answers timed, requests counted; viewers 0→1→0 '
            f'at {fps:g} fps; promtool accepts /metrics and '
            f'data/prometheus.yml; {len(hostile)} hostile reports dropped, a '
            f'silent device\'s figures gone after 3 intervals')


def case_metrics_restarts(env):
    """A camera that keeps failing (identity error-after posts a real
    ERROR, as a camera that vanishes would) and keeps being restarted by
    the service shows as a rising picamrtc_device_camera_restarts_total on
    the gateway's /metrics: what an operator alerts on."""
    env.start_broker()
    env.start_service(['--always-on', '--pipeline',
                       'videotestsrc is-live=true ! '
                       'video/x-raw,width=160,height=120,framerate=30/1 ! '
                       'identity error-after=15 ! x264enc tune=zerolatency '
                       'speed-preset=ultrafast key-int-max=${KEYINT} ! '
                       'video/x-h264,profile=(string)constrained-baseline ! '
                       'mqttwebrtcsink name=sink'])
    gw = env.gateway()
    # errors after 0.5 s of each run, restarts 1 s, 2 s, 4 s later; the
    # device reports every 10 s
    deadline = time.monotonic() + 40
    restarts = None
    while True:
        r = expect(gw.request('GET', '/metrics'), 200, '/metrics')
        restarts = metric(parse_metrics(r.text()),
                          'picamrtc_device_camera_restarts_total',
                          device=DEVICE)
        if restarts is not None and restarts >= 2:
            break
        check(time.monotonic() < deadline, 'picamrtc_device_camera_'
              f'restarts_total of a failing camera was {restarts} after 40 s '
              f'(want 2 or more):\n{r.text()}')
        time.sleep(1)
    env.service_alive()
    return f'a camera failing every run: {restarts:.0f} restarts on /metrics'


# --- the control data channel (docs/security.md, "Who can steer") ----------

DC_SECTION = ['m=application 9 UDP/DTLS/SCTP webrtc-datachannel',
              'c=IN IP4 0.0.0.0', 'a=ice-ufrag:/3dY',
              'a=ice-pwd:RM6k/kXkxPIHgLZQYsQaNv+B',
              'a=fingerprint:sha-256 7B:0D:8A:3E:2C:11:5F:90:AA:01:C4:42:'
              '9E:3D:61:77:08:B2:4C:DD:10:6A:93:5E:27:F1:C8:0B:44:A9:3E:12',
              'a=setup:actpass', 'a=mid:dc', 'a=sctp-port:5000',
              'a=max-message-size:262144']


def sections(sdp):
    """The session part and the m-sections of an SDP text, as line lists."""
    parts = [[]]
    for line in sdp.replace('\r\n', '\n').split('\n'):
        if line.startswith('m='):
            parts.append([])
        if line:
            parts[-1].append(line)
    return parts[0], parts[1:]


def join_sdp(session, medias):
    return '\r\n'.join(session + [l_ for m in medias for l_ in m]) + '\r\n'


def dc_offer(position):
    """Chromium's audio+video offer (mids 0 and 1) with a data channel's
    m-line (mid dc) put at @position, BUNDLE naming all three in order."""
    session, medias = sections(fixture('chromium-audio-video.sdp'))
    medias.insert(position, list(DC_SECTION))
    mids = [next(l_[6:] for l_ in m if l_.startswith('a=mid:'))
            for m in medias]
    session = [('a=group:BUNDLE ' + ' '.join(mids))
               if l_.startswith('a=group:BUNDLE') else l_ for l_ in session]
    return join_sdp(session, medias)


def without_dc(sdp):
    """@sdp as the device must get it without the control token: no
    application m-line, dc out of the BUNDLE group, the rest as it was."""
    session, medias = sections(sdp)
    session = [' '.join(w for w in l_.split(' ') if w != 'dc')
               if l_.startswith('a=group:') else l_ for l_ in session]
    return join_sdp(session, [m for m in medias
                              if not m[0].startswith('m=application')])


def fake_answer(offer):
    """A device's answer to @offer, m-line for m-line (the data channel
    accepted when offered)."""
    _, medias = sections(offer)
    mids = [next(l_[6:] for l_ in m if l_.startswith('a=mid:'))
            for m in medias]
    out = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 't=0 0',
           'a=group:BUNDLE ' + ' '.join(mids)]
    for m, mid in zip(medias, mids):
        kind = m[0].split(' ')[0]
        if kind == 'm=application':
            out += ['m=application 9 UDP/DTLS/SCTP webrtc-datachannel',
                    'c=IN IP4 127.0.0.1', f'a=mid:{mid}', 'a=sctp-port:5000']
        else:
            pt = m[0].split(' ')[3]
            out += [f'{kind} 9 UDP/TLS/RTP/SAVPF {pt}', 'c=IN IP4 127.0.0.1',
                    f'a=mid:{mid}', 'a=sendonly']
    out.append('a=candidate:1 1 udp 2122260223 127.0.0.1 40000 typ host')
    return '\r\n'.join(out) + '\r\n'


def case_control(env):
    """The control token keeps an offer's data channel; any other offer
    reaches the device without it, and its answer gets the m-line back
    rejected where it was, so a browser takes it."""
    env.start_broker()
    fake_device(env, 'fake')
    view = 'view-' + os.urandom(12).hex()
    control = 'ctl-' + os.urandom(12).hex()
    gw = env.gateway(['--token-file', env.write('token', view + '\n'),
                      '--control-token-file',
                      env.write('control-token', control + '\n'),
                      '--answer-timeout', '10'],
                     extra_env={'GST_DEBUG': 'pcrgateway:5'})
    as_viewer = {'Authorization': f'Bearer {view}'}
    as_pilot = {'Authorization': f'Bearer {control}'}
    gw.wait_device('fake', lambda s: s.get('state') == 'online',
                   headers=as_viewer)
    sniff = Sniffer(env, f'{PREFIX}/fake/in/#', 'sniff-control')
    seen = [0]

    def offered(post, sdp, headers, answer=fake_answer, via=None):
        """@post's reply (to gw, or @via), the offer the device got and the
        answer it gave."""
        pending = in_background(post, via or gw, device='fake', sdp=sdp,
                                headers=headers)
        seen[0] += 1
        found = sniff.wait(lambda t, p: sum(
            1 for _, p_ in sniff.lines if '"offer"' in p_) >= seen[0], 5)
        check(found, 'no offer reached the fake device')
        topic, payload = [(t, p) for t, p in sniff.lines
                          if '"offer"' in p][seen[0] - 1]
        got = json.loads(payload)['sdp']
        reply = answer(got)
        env.publish(topic.replace('/in/', '/out/'),
                    json.dumps({'type': 'answer', 'sdp': reply}))
        return pending.result(), got, reply, topic.split('/')[-1]

    def check_rejected(answer, position, what):
        session, medias = sections(answer)
        check(len(medias) == 3, f'{what}: the answer has {len(medias)} '
              f'm-lines, the offer 3:\n{answer}')
        check(medias[position] == ['m=application 0 UDP/DTLS/SCTP '
                                   'webrtc-datachannel', 'c=IN IP4 0.0.0.0',
                                   'a=mid:dc'],
              f'{what}: m-line {position} of the answer is '
              f'{medias[position]}, expected the data channel rejected')
        groups = [l_ for l_ in session if l_.startswith('a=group:')]
        check(groups == ['a=group:BUNDLE 0 1'], f'{what}: the answer\'s '
              f'groups are {groups}, expected BUNDLE 0 1 (no dc)')
        others = [m[0].split(' ')[0] for i, m in enumerate(medias)
                  if i != position]
        check(others == ['m=audio', 'm=video'], f'{what}: the answer\'s '
              f'other m-lines are {others}')

    # the viewing token: the data channel never reaches the device
    for position, (name, post) in enumerate([('start-webrtc', start_webrtc),
                                             ('WHEP', whep_post)]):
        sdp = dc_offer(position)
        r, got, _, _ = offered(post, sdp, as_viewer)
        check(got == without_dc(sdp), f'{name} with the viewing token: the '
              f'device got\n{got}\nexpected the offer without its data '
              f'channel:\n{without_dc(sdp)}')
        if name == 'WHEP':
            expect(r, 201, f'{name} with the viewing token')
            answer, loc, etag = r.text(), r.header('Location'), \
                r.header('ETag')
        else:
            answer = expect(r, 200, f'{name} with the viewing token').json()[
                'webrtc_answer']
        check_rejected(answer, position, f'{name} with the viewing token')

    # ...and its trickled candidates for dc go nowhere; the video's move up
    session = loc.split('/')[-1]
    frag = ('a=ice-ufrag:/3dY\r\na=ice-pwd:RM6k/kXkxPIHgLZQYsQaNv+B\r\n'
            'a=mid:dc\r\n'
            'a=candidate:1 1 udp 2122260223 127.0.0.1 40001 typ host\r\n'
            'a=end-of-candidates\r\n'
            'a=mid:1\r\n'
            'a=candidate:2 1 udp 2122260223 127.0.0.1 40002 typ host\r\n'
            'a=mid:0\r\n'
            'a=candidate:3 1 udp 2122260223 127.0.0.1 40003 typ host\r\n')
    frag_headers = {'Content-Type': 'application/trickle-ice-sdpfrag',
                    'If-Match': etag}
    frag_headers.update(as_viewer)
    expect(gw.request('PATCH', loc, frag, frag_headers), 204,
           'PATCH with candidates for dc, 1 and 0')
    last = sniff.wait_json(rf'{PREFIX}/fake/in/{session}$',
                           lambda p: 'candidate:3 ' in p.get('candidate',
                                                             ''), 5)
    check(last, 'the candidate for mid 0 never reached the device')
    cands = [p for _, p in sniff.messages(rf'{PREFIX}/fake/in/{session}$')
             if p.get('type') == 'candidate']
    want = [{'type': 'candidate', 'candidate': 'candidate:2 1 udp '
             '2122260223 127.0.0.1 40002 typ host', 'sdpMLineIndex': 1,
             'sdpMid': '1'},
            {'type': 'candidate', 'candidate': 'candidate:3 1 udp '
             '2122260223 127.0.0.1 40003 typ host', 'sdpMLineIndex': 0,
             'sdpMid': '0'}]
    check(cands == want, f'the device got the candidates {cands}, '
          f'expected {want} (dc\'s dropped, mid 1 at index 1)')

    # the control token: the offer and the answer go through as they are
    for position, (name, post) in enumerate([('start-webrtc', start_webrtc),
                                             ('WHEP', whep_post)]):
        sdp = dc_offer(1 - position)
        r, got, reply, session = offered(post, sdp, as_pilot)
        check(got == sdp, f'{name} with the control token: the device got '
              f'an altered offer:\n{got}')
        if name == 'WHEP':
            answer = expect(r, 201, f'{name} with the control token').text()
            loc, etag = r.header('Location'), r.header('ETag')
        else:
            answer = expect(r, 200, f'{name} with the control token').json()[
                'webrtc_answer']
        check(answer == reply, f'{name} with the control token: the answer '
              f'was altered:\n{answer}')
    frag_headers = {'Content-Type': 'application/trickle-ice-sdpfrag',
                    'If-Match': etag}
    frag_headers.update(as_pilot)
    expect(gw.request('PATCH', loc, 'a=mid:dc\r\na=candidate:4 1 udp 1 '
                      '127.0.0.1 40004 typ host\r\n', frag_headers), 204,
           'PATCH for dc with the control token')
    got = sniff.wait_json(rf'{PREFIX}/fake/in/{loc.split("/")[-1]}$',
                          lambda p: p.get('type') == 'candidate', 5)
    check(got and got[1].get('sdpMid') == 'dc' and
          got[1].get('sdpMLineIndex') == 0, f'the control token\'s '
          f'candidate for dc reached the device as {got}')

    # one debug line per offer stripped, none per candidate
    lines = [l_ for l_ in gw.log_text().splitlines()
             if 'taken out of the offer' in l_]
    check(len(lines) == 2, f'{len(lines)} log lines say an offer lost its '
          f'data channel, expected 2: {lines}')

    # the control token opens what the viewing token opens, not /metrics
    expect(gw.request('GET', '/api/turn-credentials', headers=as_pilot), 200,
           'turn-credentials with the control token')
    expect(gw.request('GET', '/metrics', headers=as_pilot), 401,
           '/metrics with the control token')
    expect(gw.request('GET', '/metrics', headers=as_viewer), 200,
           '/metrics with the viewing token')
    # a wrong token is refused as before, whichever it resembles
    for what, token in [('none', None), ('a wrong one', 'x' + control[1:]),
                        ('a longer control token', control + 'x')]:
        h = {'Authorization': f'Bearer {token}'} if token else {}
        expect(whep_post(gw, device='fake', sdp=dc_offer(1), headers=h), 401,
               f'WHEP with {what}')
        expect(start_webrtc(gw, device='fake', sdp=dc_offer(1), headers=h),
               401, f'start-webrtc with {what}')

    # hostile: only a data channel; an answer that does not fit
    session_, medias = sections(dc_offer(0))
    only_dc = join_sdp([l_ for l_ in session_ if not
                        l_.startswith('a=group:')], medias[:1])
    r = expect(whep_post(gw, device='fake', sdp=only_dc, headers=as_viewer),
               400, 'an offer of nothing but a data channel, viewing token')
    check('control token' in r.text(), f'the 400 says {r.text()!r}')
    r, _, _, _ = offered(start_webrtc, dc_offer(2), as_viewer,
                         answer=lambda o: fake_answer(dc_offer(2)))
    expect(r, 502, 'a device answering the data channel it never got')
    check(control not in gw.log_text() and view not in gw.log_text(),
          'a token appears in the log')

    # without --control-token-file nobody steers, whatever they send
    open_gw = env.gateway(['--answer-timeout', '10'], name='gateway-open')
    open_gw.wait_device('fake', lambda s: s.get('state') == 'online')
    sdp = dc_offer(2)
    r, got, _, _ = offered(whep_post, sdp, as_pilot, via=open_gw)
    check(got == without_dc(sdp), 'without --control-token-file an offer '
          f'kept its data channel:\n{got}')
    check_rejected(expect(r, 201, 'WHEP to the gateway without control').text(),
                   2, 'the gateway without control')

    # the control token file is checked as the token file is
    for what, text in [('empty', '\n'), ('two words', 'a b\n')]:
        out = subprocess.run([env.gateway_bin, '--control-token-file',
                              env.write('bad-control', text), '--listen',
                              '127.0.0.1:0'], capture_output=True,
                             timeout=10)
        check(out.returncode == 2 and b'control-token-file' in out.stderr,
              f'a control token file {what}: exit {out.returncode}, '
              f'{out.stderr!r}')
    return 'no control token: the device got no data channel, the answer ' \
        'has it rejected in place (index 0 and 1), dc candidates dropped; ' \
        'control token: unchanged both ways and opens /api, not /metrics; ' \
        'wrong tokens 401; no --control-token-file: always stripped'


# --- relayed viewers (/api/relay, issue 14) ----------------------------------

def relay_status(env, device, relay=None, state='online'):
    """A retained status with (or without) the relay object of
    docs/signalling.md."""
    st = {'state': state, 'viewers': 0}
    if relay is not None:
        st['relay'] = relay
    subprocess.run(['mosquitto_pub', '-h', '127.0.0.1', '-p', str(env.port),
                    '-q', '1', '-r', '-t', f'{PREFIX}/{device}/status', '-m',
                    json.dumps(st)], check=True, timeout=10)


def relay_post(gw, device, body=b'', headers=None, timeout=30):
    return gw.request('POST', f'/api/relay/{device}', body, headers or {},
                      timeout)


def expect_fallback(r, what, says=None):
    """409 {"error": one line, "fallback": "direct"}: the client watches
    directly."""
    check(r.status == 409, f'{what}: expected 409, got {r}')
    check((r.header('Content-Type') or '').startswith('application/json'),
          f'{what}: the 409 is {r.header("Content-Type")}, expected JSON')
    body = r.json()
    check(body.get('fallback') == 'direct', f'{what}: {body} does not say '
          '"fallback":"direct"')
    check(isinstance(body.get('error'), str) and body['error'] and
          '\n' not in body['error'], f'{what}: no one-line error: {body}')
    if says:
        check(says in body['error'], f'{what}: the error {body["error"]!r} '
              f'does not say {says!r}')
    check(r.header('Access-Control-Allow-Origin') == '*',
          f'{what}: the 409 has no CORS header')
    return body


def case_relay_errors(env):
    """/api/relay without a working relay: what a client is told to do
    (409: watch directly) and the usual 400/404/405/413/415/504, each with a
    gateway, a broker and devices that answer what the case makes them."""
    env.start_broker()
    relayed = {'state': 'idle', 'room': 1234, 'feed': 5678, 'viewers': 0}
    relay_status(env, 'plain')
    relay_status(env, 'relayed', relayed)
    relay_status(env, 'down', {'state': 'unreachable', 'room': 1234,
                               'feed': 5678, 'viewers': 0,
                               'error': 'connection refused'})
    relay_status(env, 'gone', relayed, state='offline')

    # no --janus: every relay request is sent to the direct path
    plain_gw = env.gateway([], name='no-janus')
    plain_gw.wait_device('relayed', lambda s: 'relay' in s)
    expect_fallback(relay_post(plain_gw, 'relayed'), 'no --janus',
                    '--janus')
    check('relayed viewers off' in plain_gw.log_text(), 'the gateway did '
          'not log that relayed viewers are off')

    # Janus where nothing listens: only devices that say they relay are tried
    gw = env.gateway(['--janus', 'http://127.0.0.1:1/janus?apisecret=Xsecret42',
                      '--answer-timeout', '2'])
    gw.wait_device('gone', lambda s: s.get('state') == 'offline')
    sniff = Sniffer(env, f'{PREFIX}/+/in/#', 'sniff-relay')
    expect_fallback(relay_post(gw, 'plain'), 'a device without relay',
                    'not relayed')
    expect_fallback(relay_post(gw, 'down'), 'relay unreachable',
                    'connection refused')
    expect(relay_post(gw, 'nobody'), 404, 'an unknown device')
    expect(relay_post(gw, 'gone'), 404, 'an offline device')
    # a layer that is a number, object or boolean: json-glib's getters
    # give NULL or warn there (fatal in the tests), a crash once
    for body in (b'not json', b'[1]', b'{"a":', b'\xff',
                 b'{"layer":"sideways"}', b'{"layer":1}', b'{"layer":{}}',
                 b'{"layer":true}', b'{"layer":["low"]}'):
        expect(relay_post(gw, 'relayed', body,
                          {'Content-Type': 'application/json'}), 400,
               f'POST body {body!r}')
    expect(relay_post(gw, 'relayed', b'x' * 70000), 413, 'a 70 KB POST')
    expect(gw.request('GET', '/api/relay/relayed'), 405, 'GET /api/relay/D')
    session = '0' * 32
    expect(gw.request('PATCH', f'/api/relay/relayed/{session}', 'v=0\r\n',
                      {'Content-Type': 'application/sdp'}), 404,
           'PATCH of an unknown session')
    expect(gw.request('PATCH', f'/api/relay/relayed/{session}', 'v=0\r\n',
                      {'Content-Type': 'application/trickle-ice-sdpfrag'}),
           415, 'PATCH with a trickle fragment')
    expect(gw.request('PATCH', f'/api/relay/relayed/{session}', 'v=0\r\n'),
           415, 'PATCH without Content-Type')
    expect(gw.request('PATCH', f'/api/relay/relayed/{session}',
                      '{"layer":"low"}', {'Content-Type': 'application/json'}),
           404, 'a layer PATCH of an unknown session')
    expect(gw.request('DELETE', f'/api/relay/relayed/{session}'), 404,
           'DELETE of an unknown session')
    expect(gw.request('GET', '/api/relay/relayed/x/y/z'), 404,
           'a path under /api/relay that is nothing')
    r = expect(gw.request('OPTIONS', '/api/relay/relayed'), 204,
               'OPTIONS /api/relay/D')
    check('POST' in (r.header('Allow') or '') and
          r.header('Access-Control-Allow-Origin') == '*',
          f'OPTIONS /api/relay/D: Allow {r.header("Allow")!r}, no CORS?')
    r = expect(gw.request('OPTIONS', f'/api/relay/relayed/{session}'), 204,
               'OPTIONS /api/relay/D/S')
    check(r.header('Accept-Patch') == 'application/sdp' and
          'PATCH' in (r.header('Access-Control-Allow-Methods') or ''),
          f'OPTIONS /api/relay/D/S: Accept-Patch {r.header("Accept-Patch")!r}')
    reached = [m for t, m in sniff.messages() if not t.endswith('/probe')]
    check(not reached, f'refused requests reached devices: {reached}')

    def relay_asked(count):
        def seen():
            return [t for t, m in sniff.messages(r'.*/relayed/in/')
                    if m.get('type') == 'relay']
        found = sniff.wait(lambda t, p: len(seen()) >= count, 5)
        check(found, f'relay request {count} never reached the device')
        return seen()[count - 1].replace('/in/', '/out/')

    def byes(topic):
        return [m for t, m in sniff.messages()
                if t == topic.replace('/out/', '/in/') and
                m.get('type') == 'bye']

    # the device cannot reach Janus: 409, no bye (it holds no lease)
    pending = in_background(relay_post, gw, 'relayed', b'{}')
    out = relay_asked(1)
    env.publish(out, json.dumps({'type': 'error', 'code': 'relay-unavailable',
                                 'message': 'Janus refused the connection'}))
    expect_fallback(pending.result(), 'the device cannot relay',
                    'Janus refused the connection')
    # the device does not answer: 504 after --answer-timeout, then a bye
    pending = in_background(relay_post, gw, 'relayed')
    out = relay_asked(2)
    r = expect(pending.result(), 504, 'a device that does not answer')
    check(1.5 < r.took < 5, f'the 504 came after {r.took:.1f} s, expected '
          'about the 2 s answer timeout')
    check(sniff.wait(lambda t, p: byes(out), 5), 'no bye after the 504')
    # the device relays, but Janus is not there: 409, and the lease it took
    # is given back
    pending = in_background(relay_post, gw, 'relayed')
    out = relay_asked(3)
    env.publish(out, json.dumps({'type': 'relay', 'room': 1234,
                                 'feed': 5678}))
    expect_fallback(pending.result(), 'Janus unreachable', 'Janus')
    check(sniff.wait(lambda t, p: byes(out), 5),
          'no bye to the device after Janus failed')
    # hostile replies are ignored; the device's bye ends it (503)
    pending = in_background(relay_post, gw, 'relayed')
    out = relay_asked(4)
    for junk in ['not json', '{"type":"relay"}', '{"type":"relay",'
                 '"room":-1,"feed":2}', '{"type":"relay","room":"1",'
                 '"feed":2}', '{"type":"relay","room":9007199254740992,'
                 '"feed":2}', '[' * 3000]:
        env.publish(out, junk)
    time.sleep(0.3)
    env.publish(out, '{"type":"bye"}')
    expect(pending.result(), 503, 'the device said bye')
    check(gw.alive(), 'the gateway died on hostile relay replies')
    # nothing left open
    m = parse_metrics(expect(gw.request('GET', '/metrics'), 200,
                             '/metrics').text())
    check(metric(m, 'picamrtc_gateway_relay_sessions') == 0 and
          metric(m, 'picamrtc_gateway_sessions') == 0,
          'sessions left open: relay '
          f'{metric(m, "picamrtc_gateway_relay_sessions")}, all '
          f'{metric(m, "picamrtc_gateway_sessions")}')
    check('Xsecret42' not in gw.log_text(),
          'the apisecret shows in the log')
    return '409 fallback:direct without --janus, not relayed, unreachable, ' \
        'relay-unavailable, Janus down (bye sent); 404/400/405/413/415; ' \
        '504 after the answer timeout (bye sent); junk ignored; bye → 503; ' \
        'no session left'


def relay_answer(offer):
    """An answer to Janus' offer that a browser could have written, for a
    peer that is not there: recvonly, its own ICE credentials, a host
    candidate nobody listens on. Janus takes it; its ICE then fails."""
    out = []
    for line in offer.replace('\r\n', '\n').split('\n'):
        if line.startswith('a=candidate') or line == 'a=end-of-candidates':
            continue
        if line.startswith('a=ice-ufrag:'):
            line = 'a=ice-ufrag:pcrT'
        elif line.startswith('a=ice-pwd:'):
            line = 'a=ice-pwd:pcrtestpcrtestpcrtest00'
        elif line in ('a=sendonly', 'a=sendrecv'):
            line = 'a=recvonly'
        elif line.startswith('a=setup:'):
            line = 'a=setup:active'
        elif line.startswith('a=ice-options') or line.startswith('a=rid:') \
                or line.startswith('a=simulcast:'):
            continue
        out.append(line)
        if line.startswith('a=mid:'):
            out.append('a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host')
            out.append('a=end-of-candidates')
    return '\r\n'.join(l for l in out if l) + '\r\n'


def case_relay(env):
    """The camera relayed through a real Janus: POST /api/relay gets
    Janus' offer (201) once the camera publishes; the camera counts the
    relayed viewer apart from its direct ones; the gateway renews the lease
    every 10 s and ends a session left without an answer after 30 s; a
    PATCH reaches Janus (204, a second one 409), and when Janus hangs up
    (its ICE fails: nobody is there) the session ends; DELETE ends one at
    once; WHEP to the relayed camera stays direct."""
    env.start_broker()
    if shutil.which('janus') is None:
        print('SKIP: janus is not installed (apt-get install janus)')
        sys.exit(77)
    janus_obj = env.start_janus()
    janus = janus_obj.url

    def janus_alive(when):
        proc = janus_obj.proc
        check(proc.alive(), f'Janus died {when} (exit '
              f'{proc.proc.returncode}; log: {janus_obj.log_text(800)!r})')
    # the camera's connection to Janus fails with candidates on 127.0.0.1
    # only: it gets Janus' interface address too
    env.start_service(['--max-viewers', '4', '--relay',
                       janus_obj.relay_url(), '--ice-address',
                       pcrtest.JANUS_ICE_ADDRESS])
    gw = env.gateway(['--janus', janus, '--stun-uri', 'stun:stun.example:3478'])
    gw.wait_device(DEVICE, lambda s: (s.get('relay') or {}).get('state') ==
                   'idle', what='relayed and idle')
    sniff = Sniffer(env, f'{PREFIX}/{DEVICE}/in/#', 'sniff-relay')

    def relay_viewers(n, what, timeout=15):
        return gw.wait_device(DEVICE, lambda s: (s.get('relay') or {}).get(
            'viewers') == n, timeout, what)

    def sent(session, kind):
        return [m for t, m in sniff.messages()
                if t == f'{PREFIX}/{DEVICE}/in/{session}' and
                m.get('type') == kind]

    def post():
        r = expect(relay_post(gw, DEVICE, b'{}',
                              {'Content-Type': 'application/json'}), 201,
                   'POST /api/relay/cam1')
        body = r.json()
        check(HEX32.match(body.get('session', '')), f'session: {body}')
        check(r.header('Location') == f'/api/relay/{DEVICE}/'
              f'{body["session"]}', f'Location {r.header("Location")!r}')
        check(r.header('Access-Control-Allow-Origin') == '*', 'no CORS')
        sdp = body.get('sdp', '')
        check(sdp.startswith('v=0') and 'm=video' in sdp and
              'H264' in sdp and 'a=candidate' in sdp,
              f'Janus\' offer lacks video, H.264 or candidates: {sdp[:300]!r}')
        check(body.get('iceServers') == [{'urls': ['stun:stun.example:3478']}],
              f'iceServers {body.get("iceServers")}')
        return r, body['session'], sdp

    # 1. an offer, then no answer: leases every 10 s, the end after 30 s
    r, idle, _ = post()
    offered = time.monotonic()
    log(f'first relayed offer after {r.took:.1f} s')
    st = relay_viewers(1, 'with 1 relayed viewer')
    check(st['relay']['state'] == 'publishing' and st.get('viewers') == 0,
          f'status with one relayed viewer: {st}')
    found = sniff.wait(lambda t, p: len(sent(idle, 'relay')) >= 3, 25)
    janus_alive('while an offer waited for its answer')
    check(found, f'the lease was not renewed twice in 25 s: '
          f'{len(sent(idle, "relay"))} relay messages')
    # the 30 s count from the offer
    check(sniff.wait(lambda t, p: sent(idle, 'bye'),
                     max(1.0, 40 - (time.monotonic() - offered))),
          'no bye within 40 s of an offer left without an answer')
    waited = time.monotonic() - offered
    check(waited > 28, f'the unanswered session ended after {waited:.1f} s, '
          'expected 30 s')
    check(f'session {idle} (device {DEVICE}) ended: no answer to Janus' in
          gw.log_text(), 'the gateway does not say why it ended the session')
    relay_viewers(0, 'after the unanswered session ended')

    # 2. an answer for a peer that is not there: 204, a second one 409;
    # Janus hangs up when its ICE fails, and the session ends
    r, gone, offer = post()
    answer = relay_answer(offer)
    env.write('relay-offer.sdp', offer)
    env.write('relay-answer.sdp', answer)
    expect(gw.request('PATCH', f'/api/relay/{DEVICE}/{gone}', answer,
                      {'Content-Type': 'application/sdp'}), 204,
           'PATCH with the answer')
    r = expect(gw.request('PATCH', f'/api/relay/{DEVICE}/{gone}', answer,
                          {'Content-Type': 'application/sdp'}), 409,
               'a second PATCH')
    expect(gw.request('PATCH', f'/api/relay/{DEVICE}/{idle}', answer,
                      {'Content-Type': 'application/sdp'}), 404,
           'PATCH of the ended session')
    t0 = time.monotonic()
    found = sniff.wait(lambda t, p: sent(gone, 'bye'), 60)
    janus_alive('after an answer from a peer that is not there')
    check(found, 'Janus never hung '
          'up the subscriber whose peer is not there (no bye within 60 s)')
    log(f'Janus hung up after {time.monotonic() - t0:.1f} s')
    check(re.search(f'session {gone} .*ended: (Janus hung up|lost the Janus)',
                    gw.log_text()), 'the gateway does not say Janus ended it')
    relay_viewers(0, 'after Janus hung up')

    # 3. DELETE: at once, with a bye
    _, deleted, _ = post()
    relay_viewers(1, 'with the third relayed viewer')
    # a layer PATCH: the body checked first, then that the session plays
    for body in ('{"layer":1}', '{"layer":{}}', '{"layer":null}', '{}',
                 '{"layer":"sideways"}', 'not json'):
        r = expect(gw.request('PATCH', f'/api/relay/{DEVICE}/{deleted}',
                              body, {'Content-Type': 'application/json'}),
                   400, f'a layer PATCH {body}')
        check(body == 'not json' or '"layer":"low"' in r.text(),
              f'the 400 for {body} does not say what is expected: '
              f'{r.text()!r}')
    expect(gw.request('PATCH', f'/api/relay/{DEVICE}/{deleted}',
                      '{"layer":"low"}', {'Content-Type': 'application/json'}),
           409, 'a layer PATCH before the session plays')
    expect(gw.request('DELETE', f'/api/relay/{DEVICE}/{deleted}'), 200,
           'DELETE')
    check(sniff.wait(lambda t, p: sent(deleted, 'bye'), 5), 'no bye after '
          'DELETE')
    relay_viewers(0, 'after DELETE', 5)
    expect(gw.request('DELETE', f'/api/relay/{DEVICE}/{deleted}'), 404,
           'a second DELETE')

    # 4. WHEP to the relayed camera stays direct
    r = expect(whep_post(gw), 201, 'WHEP to a relayed camera')
    st = wait_viewers(env, 1, 'a WHEP viewer of a relayed camera')
    check((st.get('relay') or {}).get('viewers') == 0,
          f'a WHEP viewer counted as relayed: {st}')
    expect(gw.request('DELETE', r.header('Location')), 200, 'WHEP DELETE')
    m = parse_metrics(gw.request('GET', '/metrics').text())
    check(metric(m, 'picamrtc_gateway_relay_sessions') == 0,
          'relayed sessions left on /metrics')
    janus_alive('at the end')
    return 'offer 201 with H.264 and candidates; relay.viewers 1 (direct ' \
        '0); lease renewed every 10 s; no answer → bye at 30 s; PATCH 204, ' \
        'again 409; Janus hangup → bye; bad layer PATCHes 400; DELETE → ' \
        'bye at once; WHEP stays direct'


CASES = {
    'static': case_static,
    'start-webrtc': case_start_webrtc,
    'whep': case_whep,
    'bad-request': case_bad_request,
    'auth': case_auth,
    'not-found': case_not_found,
    'too-large': case_too_large,
    'content-type': case_content_type,
    'max-viewers': case_max_viewers,
    'timeout': case_timeout,
    'client-gone': case_client_gone,
    'fake-device': case_fake_device,
    'broker': case_broker,
    'broker-late': case_broker_late,
    'broker-outage': case_broker_outage,
    'slow-client': case_slow_client,
    'options': case_options,
    'turn': case_turn,
    'tls': case_tls,
    'config': case_config,
    'hostile': case_hostile,
    'stats': case_stats,
    'snapshot': case_snapshot,
    'snapshot-errors': case_snapshot_errors,
    'recordings-fake': case_recordings_fake,
    'recording': case_recording,
    'recording-kill': case_recording_kill,
    'recording-retention': case_recording_retention,
    'recording-disk-full': case_recording_disk_full,
    'recording-bench': case_recording_bench,
    'metrics': case_metrics,
    'metrics-restarts': case_metrics_restarts,
    'control': case_control,
    'relay-errors': case_relay_errors,
    'relay': case_relay,
}


if __name__ == '__main__':
    sys.exit(pcrtest.main(CASES, Env, 'gateway-', tools=('openssl',)))
