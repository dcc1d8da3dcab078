"""The harness shared by picamrtc's Python test suites
(tests/integration/integration.py, tests/integration/secure.py and
tests/gateway/gateway.py): each case re-executes itself in a private network
namespace that holds only loopback (unshare -rn), starts a real mosquitto
broker and the programs under test as children in their own process groups
with their output in log files, stops them all at the end and prints one
line "PASS|FAIL NAME (SECONDS s): SUMMARY". docs/architecture.md, "Testing
on these machines", says why it works this way.

Standard library only. meson puts this folder on PYTHONPATH and sets the
paths of what the cases run: PICAMRTC_BUILD_ROOT, PCR_TEST_VIEWER,
PCR_SERVICE, PCR_PLUGIN_DIR (GST_PLUGIN_PATH and friends from test_env in
tests/meson.build)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

NS_MARK = 'PCR_TEST_IN_NETNS'
DEVICE = 'cam1'
PREFIX = 'picamrtc'
SKIP = 77


class Failure(Exception):
    """An assertion that failed; the message says what a user would see."""


def check(cond, message):
    if not cond:
        raise Failure(message)


def log(msg):
    print(f'[{time.strftime("%H:%M:%S")}] {msg}', flush=True)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for(cond, found, timeout, gone=lambda: False):
    """Waits on cond until found() returns something other than None (and
    returns it); None once timeout has passed or gone() says that nothing
    more will come."""
    deadline = time.monotonic() + timeout
    with cond:
        while True:
            result = found()
            if result is not None:
                return result
            left = deadline - time.monotonic()
            if left <= 0 or gone():
                return None
            cond.wait(min(left, 0.2))


# --- processes ----------------------------------------------------------

class Proc:
    """A child in its own process group, its output in a log file."""

    def __init__(self, name, argv, workdir, env=None, stdout_pipe=False):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(workdir, name + '.log')
        self.log_file = open(self.log_path, 'wb')
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else self.log_file,
            stderr=self.log_file, env=env or os.environ.copy(),
            start_new_session=True)
        self.pid = self.proc.pid

    def follow(self, handle, cond, mark=b''):
        """Reads the piped stdout on a thread: each line goes to
        handle(raw), then to the log file behind mark; cond is notified
        once the output ends. Returns the thread."""
        def read():
            for raw in self.proc.stdout:
                handle(raw)
                self.log_file.write(mark + raw)
                self.log_file.flush()
            with cond:
                cond.notify_all()

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        return thread

    def alive(self):
        return self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace=3.0):
        if self.alive():
            self.signal(signal.SIGTERM)
            if self.wait(grace) is None:
                self.signal(signal.SIGKILL)
                self.wait(5)
        else:
            # whatever it left behind in its group
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.log_file.close()

    def log_text(self, limit=12000):
        try:
            with open(self.log_path, 'rb') as f:
                data = f.read()
        except OSError:
            return ''
        text = data.decode('utf-8', 'replace')
        if len(text) > limit:
            text = '[... cut ...]\n' + text[-limit:]
        return text


class Viewer(Proc):
    """pcr-test-viewer, its JSON event lines collected by a thread."""

    def __init__(self, env, name, args):
        argv = [env.viewer_bin, '--broker', env.broker_uri, '--device', DEVICE,
                '--prefix', PREFIX] + args
        super().__init__(name, argv, env.workdir, stdout_pipe=True)
        self.events = []
        self.cond = threading.Condition()
        self.thread = self.follow(self._event, self.cond, b'stdout: ')

    def _event(self, raw):
        line = raw.decode('utf-8', 'replace').strip()
        if not line:
            return
        try:
            ev = json.loads(line)
        except ValueError:
            ev = {'event': 'garbage', 'line': line}
        ev['_t'] = time.monotonic()
        with self.cond:
            self.events.append(ev)
            self.cond.notify_all()

    def find(self, name):
        with self.cond:
            return [e for e in self.events if e.get('event') == name]

    def first(self, name):
        found = self.find(name)
        return found[0] if found else None

    def wait_event(self, name, timeout):
        return wait_for(self.cond, lambda: next(
            (e for e in self.events if e.get('event') == name), None),
            timeout,
            lambda: not self.alive() and not self.thread.is_alive())

    def finish(self, timeout):
        """Waits for the exit; returns (exit code, done event)."""
        rc = self.wait(timeout)
        self.thread.join(2)
        return rc, self.first('done')

    def frame_count(self):
        """Latest (count, monotonic time) the viewer reported."""
        frames = self.find('frames')
        if not frames:
            return 0, time.monotonic()
        return frames[-1]['count'], frames[-1]['_t']


class Subscriber:
    """mosquitto_sub -v on some topics, its (topic, payload) lines kept in
    order in self.lines."""

    def __init__(self, env, name, args):
        self.env = env
        self.name = name
        self.proc = env.spawn(name, ['mosquitto_sub', '-v', '-q', '1'] + args,
                              stdout_pipe=True)
        self.lines = []
        self.cond = threading.Condition()
        self.proc.follow(self._line, self.cond)

    def _line(self, raw):
        line = raw.decode('utf-8', 'replace').rstrip('\n')
        with self.cond:
            if line:
                topic, _, payload = line.partition(' ')
                self.lines.append((topic, payload))
            self.cond.notify_all()

    def wait(self, pred, timeout):
        """The first (topic, payload) for which pred(topic, payload) holds,
        or None once timeout has passed or mosquitto_sub is gone."""
        return wait_for(self.cond, lambda: next(
            ((t, p) for t, p in self.lines if pred(t, p)), None), timeout,
            lambda: not self.proc.alive())


# --- Janus (the relay, issue 14) -----------------------------------------

JANUS_ADMIN_KEY = 'picamrtc-test-room-key'
JANUS_ADMIN_SECRET = 'picamrtc-test-admin-secret'
# Janus gathers ICE candidates with libnice, which leaves the loopback
# interface out: --ice-enforce-list=lo gives no candidate at all. A veth
# created inside the test's namespace with a loopback address (127.0.1.1/32)
# gives Janus an interface to gather on while every packet still goes
# through lo (127.0.0.0/8 is local: the kernel delivers it without the veth,
# whose other end stays unused). The namespace has no route out, and 127.x
# is never routed anyway. A dummy interface fails in Janus 1.1.2 ("Error
# setting ICE locally"). The peers of Janus (the camera, the viewers) need
# that address among their own ICE addresses too (JANUS_PEER_ARGS): with
# candidates on 127.0.0.1 only, ICE with Janus' 127.0.1.1 never connects.
JANUS_ICE_IFACE = 'pcrjanus0'
JANUS_ICE_ADDRESS = '127.0.1.1'
# what picamrtc and pcr-test-viewer add to their arguments to reach Janus
JANUS_PEER_ARGS = ['--ice-address', JANUS_ICE_ADDRESS]


def janus_ice_interface():
    """Creates the veth Janus gathers on (once per namespace); returns its
    name. Only inside the private namespace (never on the host)."""
    check(os.environ.get(NS_MARK) == '1',
          'the Janus ICE interface is only made inside the test namespace')
    # (/sys/class/net is the host's: sysfs is not remounted by unshare)
    if subprocess.run(['ip', 'link', 'show', 'dev', JANUS_ICE_IFACE],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                      check=False).returncode == 0:
        return JANUS_ICE_IFACE
    for cmd in (['ip', 'link', 'add', JANUS_ICE_IFACE, 'type', 'veth',
                 'peer', 'name', JANUS_ICE_IFACE + 'p'],
                ['ip', 'addr', 'add', JANUS_ICE_ADDRESS + '/32', 'dev',
                 JANUS_ICE_IFACE],
                ['ip', 'link', 'set', JANUS_ICE_IFACE + 'p', 'up'],
                ['ip', 'link', 'set', JANUS_ICE_IFACE, 'up']):
        out = subprocess.run(cmd, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, check=False)
        check(out.returncode == 0, f'{" ".join(cmd)}: '
              f'{out.stdout.decode(errors="replace").strip()}')
    return JANUS_ICE_IFACE


class Janus:
    """Janus 1.1.2 with picamrtc's config (data/janus/, its ports and
    secrets rewritten) inside the test namespace, its log in the case's
    workdir. url is the Janus API (http://127.0.0.1:PORT/janus);
    relay_url(room) what the camera's --relay takes. stop() and start()
    again keep the ports (a restart, for the fault cases)."""

    def __init__(self, env, port=None, admin_port=None,
                 admin_key=JANUS_ADMIN_KEY, api_secret=None, debug_level=4):
        self.env = env
        self.port = port or free_port()
        self.admin_port = admin_port or free_port()
        self.admin_key = admin_key
        self.api_secret = api_secret
        self.debug_level = debug_level
        self.url = f'http://127.0.0.1:{self.port}/janus'
        self.admin_url = f'http://127.0.0.1:{self.admin_port}/admin'
        self.proc = None
        self.starts = 0
        self.confdir = os.path.join(env.workdir, 'janus-conf')
        self._write_config()

    def _write_config(self):
        import re
        src = os.path.join(os.environ.get('PICAMRTC_SOURCE_ROOT') or
                           os.path.join(os.path.dirname(
                               os.path.abspath(__file__)), '..'),
                           'data', 'janus')
        os.makedirs(self.confdir, exist_ok=True)
        subs = {
            'janus.jcfg': [
                (r'(?m)^(\s*admin_secret\s*=\s*)"[^"]*"',
                 rf'\1"{JANUS_ADMIN_SECRET}"'),
                (r'(?m)^(\s*configs_folder\s*=\s*)"[^"]*"',
                 rf'\1"{self.confdir}"'),
                (r'(?m)^(\s*debug_level\s*=\s*)\d+',
                 rf'\g<1>{self.debug_level}')] + (
                [(r'(?m)^\s*#\s*api_secret\s*=\s*"[^"]*"',
                  f'\tapi_secret = "{self.api_secret}"')]
                if self.api_secret else []),
            'janus.plugin.videoroom.jcfg': [
                (r'(?m)^(\s*admin_key\s*=\s*)"[^"]*"',
                 rf'\1"{self.admin_key}"')],
            'janus.transport.http.jcfg': [
                (r'(?m)^(\s*port\s*=\s*)\d+', rf'\g<1>{self.port}'),
                # IPv4 loopback only (the namespace's ::1 is not used)
                (r'(?m)^\s*#ip\s*=\s*"[^"]*"', '\tip = "127.0.0.1"'),
                (r'(?m)^(\s*admin_port\s*=\s*)\d+',
                 rf'\g<1>{self.admin_port}')],
        }
        for name, rules in subs.items():
            with open(os.path.join(src, name)) as f:
                text = f.read()
            for pattern, repl in rules:
                text, n = re.subn(pattern, repl, text, count=1)
                check(n == 1, f'data/janus/{name} has no line matching '
                      f'{pattern}: the test cannot configure Janus')
            with open(os.path.join(self.confdir, name), 'w') as f:
                f.write(text)

    def relay_url(self, room=None):
        """The camera's --relay URL for this Janus."""
        q = [f'adminkey={self.admin_key}']
        if room is not None:
            q.insert(0, f'room={room}')
        if self.api_secret:
            q.append(f'apisecret={self.api_secret}')
        return self.url + '?' + '&'.join(q)

    def start(self, timeout=15):
        """Starts Janus; returns once its API answers an info request."""
        iface = janus_ice_interface()
        self.starts += 1
        name = 'janus' if self.starts == 1 else f'janus-{self.starts}'
        self.log_path = os.path.join(self.env.workdir, name + '-janus.log')
        self.proc = self.env.spawn(name, [
            'janus', '-F', self.confdir, '-L', self.log_path, '-N',
            '--ice-enforce-list', iface, '-o'])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            check(self.proc.alive(), 'Janus exited at start-up: ' +
                  self.log_text(3000))
            if self.info() is not None:
                return self.url
            time.sleep(0.1)
        raise Failure(f'Janus did not answer on {self.url} within '
                      f'{timeout} s: ' + self.log_text(3000))

    def info(self):
        """Janus' answer to {"janus":"info"}, or None."""
        import urllib.request
        try:
            with urllib.request.urlopen(self.url + '/info', timeout=1) as r:
                return json.loads(r.read())
        except (OSError, ValueError):
            return None

    def stop(self):
        """SIGKILL (a crash or a pulled cable as the clients see it: no
        goodbye); the ports are free again once it is gone."""
        if self.proc:
            self.proc.signal(signal.SIGKILL)
            self.proc.wait(5)

    def restart(self, down_seconds=0.0):
        self.stop()
        time.sleep(down_seconds)
        return self.start()

    def log_text(self, limit=12000):
        try:
            with open(self.log_path, 'rb') as f:
                data = f.read()
        except (OSError, AttributeError):
            return ''
        text = data.decode('utf-8', 'replace')
        return text if len(text) <= limit else '[... cut ...]\n' + \
            text[-limit:]


# --- the environment of one case -----------------------------------------

class Env:
    """What one case runs: the broker, the device's status as a subscriber
    sees it, the service and the viewers. Subclasses change the broker
    (broker_config, mqtt_args, scheme) and add their own programs."""

    scheme = 'mqtt'

    def __init__(self, case):
        self.case = case
        build = os.environ.get('PICAMRTC_BUILD_ROOT', '')
        self.viewer_bin = os.environ.get('PCR_TEST_VIEWER') or os.path.join(
            build, 'tests', 'integration', 'pcr-test-viewer')
        self.service_bin = os.environ.get('PCR_SERVICE') or os.path.join(
            build, 'src', 'picamrtc', 'picamrtc')
        self.plugin_dir = os.environ.get('PCR_PLUGIN_DIR') or os.path.join(
            build, 'plugins', 'mqttwebrtc')
        self.workdir = tempfile.mkdtemp(prefix=f'pcr-int-{case}-')
        self.procs = []
        self.viewers = []
        self.service = None
        self.broker = None
        self.brokers_started = 0
        self.status_sub = None
        self.statuses = []
        self.status_cond = threading.Condition()
        self.port = None
        self.broker_uri = None
        self.viewer_seq = 0
        self.janus = None

    # broker

    def broker_config(self, port):
        """The mosquitto config of a test broker listening on port."""
        # user root: inside unshare -r we look like root to ourselves, and
        # dropping privileges would fail (docs/architecture.md, "Testing")
        return (f'listener {port} 127.0.0.1\n'
                'allow_anonymous true\nuser root\npersistence false\n'
                'log_dest stderr\nlog_type all\n')

    def mqtt_args(self):
        """How mosquitto_sub and mosquitto_pub reach the broker."""
        return ['-h', '127.0.0.1', '-p', str(self.port)]

    def start_broker(self, port=None, watch_status=True):
        """Starts mosquitto on port (a free one by default) and, unless
        told not to, a subscriber to the device's status; returns once the
        broker accepts connections."""
        self.port = port or free_port()
        self.broker_uri = f'{self.scheme}://127.0.0.1:{self.port}'
        self.brokers_started += 1
        name = 'mosquitto' if self.brokers_started == 1 else \
            f'mosquitto-{self.brokers_started}'
        conf = os.path.join(self.workdir, name + '.conf')
        with open(conf, 'w') as f:
            f.write(self.broker_config(self.port))
        self.broker = self.spawn(name, ['mosquitto', '-c', conf])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            check(self.broker.alive(), 'the MQTT broker did not start: ' +
                  self.broker.log_text(3000))
            # "running" once every listener is up (TLS included)
            if 'running' in self.broker.log_text(20000):
                try:
                    with socket.create_connection(('127.0.0.1', self.port),
                                                  0.5):
                        break
                except OSError:
                    pass
            time.sleep(0.05)
        else:
            raise Failure('the MQTT broker does not accept connections')
        if watch_status:
            self._watch_status()

    def _watch_status(self):
        topic = f'{PREFIX}/{DEVICE}/status'
        self.status_sub = self.spawn(
            'status-sub', ['mosquitto_sub'] + self.mqtt_args() +
            ['-t', topic, '-q', '1'], stdout_pipe=True)

        def status(raw):
            line = raw.decode('utf-8', 'replace').strip()
            try:
                st = json.loads(line)
            except ValueError:
                st = {'_unparsable': line}
            with self.status_cond:
                self.statuses.append(st)
                self.status_cond.notify_all()

        self.status_sub.follow(status, self.status_cond)

    def wait_status(self, pred, timeout):
        """The first status (seen so far or arriving) for which pred holds,
        looking only at the latest one at each moment."""
        def latest():
            if self.statuses and isinstance(self.statuses[-1], dict) \
                    and pred(self.statuses[-1]):
                return self.statuses[-1]
            return None
        return wait_for(self.status_cond, latest, timeout)

    def last_status(self):
        with self.status_cond:
            return self.statuses[-1] if self.statuses else None

    def retained_status(self, timeout=5):
        """Reads the retained status with a fresh subscription."""
        out = subprocess.run(
            ['mosquitto_sub'] + self.mqtt_args() +
            ['-t', f'{PREFIX}/{DEVICE}/status', '-C', '1', '-W',
             str(timeout)], stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, check=False, timeout=timeout + 10)
        line = out.stdout.decode('utf-8', 'replace').strip()
        if out.returncode != 0 or not line:
            return None
        try:
            return json.loads(line)
        except ValueError:
            return {'_unparsable': line}

    def publish(self, topic, payload):
        subprocess.run(['mosquitto_pub'] + self.mqtt_args() +
                       ['-q', '1', '-t', topic, '-m', payload], check=True,
                       timeout=10)

    def restart_broker(self, down_seconds):
        """Stops the broker, waits, starts it again on the same port (with
        no persistence: the retained status is gone until the device
        republishes it)."""
        self.stop_broker()
        time.sleep(down_seconds)
        self.start_broker_again()

    def stop_broker(self):
        self.broker.stop()
        if self.status_sub:
            self.status_sub.stop()

    def start_broker_again(self):
        """Returns once the broker accepts connections again."""
        with self.status_cond:
            self.statuses = []
        self.start_broker(self.port)

    # processes

    def spawn(self, name, argv, stdout_pipe=False, env=None):
        p = Proc(name, argv, self.workdir, env=env, stdout_pipe=stdout_pipe)
        self.procs.append(p)
        return p

    def start_service(self, extra=None, env=None, name='picamrtc'):
        check(os.access(self.service_bin, os.X_OK),
              f'the service binary {self.service_bin} is missing')
        argv = [self.service_bin, '--source', 'test', '--broker',
                self.broker_uri, '--device', DEVICE, '--ice-address',
                '127.0.0.1'] + (extra or [])
        self.service = self.spawn(name, argv, env=env)
        self.wait_online()
        return self.service

    def wait_online(self, timeout=20):
        st = self.wait_status(lambda s: s.get('state') == 'online', timeout)
        check(self.service.alive(),
              f'{self.service.name} exited at start-up with code '
              f'{self.service.proc.returncode}')
        check(st is not None,
              f'{self.service.name} never published a retained status with '
              f'state "online" on {PREFIX}/{DEVICE}/status within '
              f'{timeout} s (last: {self.last_status()})')
        log(f'device online: {json.dumps(st)}')

    def service_alive(self):
        check(self.service.alive(),
              f'{self.service.name} died (exit code '
              f'{self.service.proc.returncode}) while viewers were watching')

    def viewer(self, args, name=None):
        self.viewer_seq += 1
        name = name or f'viewer{self.viewer_seq}'
        v = Viewer(self, name, ['--ice-address', '127.0.0.1'] + args)
        self.procs.append(v)
        self.viewers.append(v)
        return v

    def start_janus(self, **kwargs):
        """Janus (the relay) in this namespace: the Janus object, started
        (its url, relay_url(), stop(), start(), restart())."""
        self.janus = Janus(self, **kwargs)
        self.janus.start()
        return self.janus

    def finish(self):
        """Checks at the end of a case that passed (a clean exit of what it
        started, say)."""

    def teardown(self, failed):
        for p in reversed(self.procs):
            p.stop()
        if failed:
            for p in self.procs:
                if p is self.service or isinstance(p, Viewer) or \
                        p is self.broker:
                    print(f'----- log of {p.name}: {" ".join(p.argv)[:300]}'
                          f' (exit {p.proc.returncode})')
                    print(p.log_text(4000 if p is self.broker else 12000))
            if self.janus:
                print(f'----- Janus log ({self.janus.log_path})')
                print(self.janus.log_text(6000))
            print(f'----- logs kept in {self.workdir}')
        elif os.environ.get('PCR_KEEP_LOGS'):
            print(f'----- logs kept in {self.workdir} (PCR_KEEP_LOGS)')
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


# --- assertions on viewers -------------------------------------------------

def expect_frames(v, timeout, width=1280, height=720):
    ff = v.wait_event('first-frame', timeout)
    if ff is None:
        why = f'within {timeout} s'
        for e in v.events:
            if e['event'] == 'error':
                why = f'(error reply "{e["code"]}": {e["message"]})'
            elif e['event'] == 'bye':
                why = f'(the device said bye {e["ms"]} ms after the offer)'
            elif e['event'] in ('ice-failed', 'pipeline-error',
                                'protocol-error', 'mqtt-error'):
                why = f'({e["event"]}: {e.get("message")})'
        if not v.find('answer') and why.startswith('within'):
            why += ', no answer to the offer'
        raise Failure(f'{v.name} saw no video {why}')
    # width None: any size (the caller checks it)
    check(width is None or (ff['width'], ff['height']) == (width, height),
          f'{v.name} got {ff["width"]}x{ff["height"]} video, '
          f'expected {width}x{height}')
    # the viewer offers profile-level-id 42e01f only
    check(ff.get('profile') in ('', None, 'constrained-baseline', 'baseline'),
          f'{v.name} offered only H.264 constrained baseline (42e01f) but '
          f'got a {ff.get("profile")} profile stream: a browser that decodes '
          'only what it negotiated (Safari, hardware decoders) shows nothing')
    return ff


def expect_exit(v, code, timeout, what):
    rc, done = v.finish(timeout)
    check(rc is not None, f'{v.name} still running {timeout} s after {what}')
    check(rc == code, f'{v.name} exited with {rc} (expected {code}) {what}; '
          f'errors: {v.find("error")}')
    return done


def watch_to_end(env, extra=(), frames=60):
    """A viewer (with @extra arguments) that decodes @frames frames and
    exits: the viewer, its first-frame event and its summary."""
    v = env.viewer(list(extra) + ['--frames', str(frames),
                                  '--timeout', '30'])
    ff = expect_frames(v, 20)
    done = expect_exit(v, 0, 20, f'after decoding {frames} frames')
    return v, ff, done


# --- running one case --------------------------------------------------------

def prepare_environ():
    # an empty system plugin path would hide webrtcbin, x264enc, libav...
    if os.environ.get('GST_PLUGIN_SYSTEM_PATH_1_0') == '':
        del os.environ['GST_PLUGIN_SYSTEM_PATH_1_0']
    build = os.environ.get('PICAMRTC_BUILD_ROOT')
    if build:
        os.environ['GST_REGISTRY'] = os.path.join(
            build, 'tests', 'integration', 'registry.bin')
    plugin_dir = os.environ.get('PCR_PLUGIN_DIR')
    if plugin_dir and plugin_dir not in os.environ.get(
            'GST_PLUGIN_PATH', '').split(':'):
        os.environ['GST_PLUGIN_PATH'] = ':'.join(
            p for p in (plugin_dir, os.environ.get('GST_PLUGIN_PATH')) if p)


def enter_netns(case, tools):
    """Re-executes the calling script in a private network namespace that
    holds only loopback: nothing leaves this machine, nothing from outside
    interferes. Returns only where that is impossible (SKIP) or already
    done (None)."""
    if os.environ.get(NS_MARK) == '1':
        return None
    os.environ['PATH'] = os.environ.get('PATH', '') + ':/usr/sbin:/sbin'
    for tool in ('unshare', 'mosquitto', 'mosquitto_sub',
                 'mosquitto_pub') + tuple(tools):
        if shutil.which(tool) is None:
            print(f'SKIP: {tool} is not installed')
            return SKIP
    os.environ[NS_MARK] = '1'
    argv = ['unshare', '-rn', 'sh', '-c', 'ip link set lo up && exec "$@"',
            'sh', sys.executable, os.path.abspath(sys.argv[0]), case]
    try:
        os.execvp('unshare', argv)
    except OSError as e:
        print(f'SKIP: cannot enter a private network namespace: {e}')
        return SKIP


def main(cases, make_env, label='', tools=()):
    """Runs the case named on the command line (cases: name -> function
    of an Env that returns a summary) with make_env(name) as its
    environment; label prefixes the name in the result line; tools are
    the programs besides mosquitto's that the cases need. Returns the exit
    code: 0 passed, 1 failed, 77 skipped, 2 usage."""
    if len(sys.argv) != 2 or sys.argv[1] not in cases:
        print(f'usage: {sys.argv[0]} CASE\ncases: {" ".join(cases)}',
              file=sys.stderr)
        return 2
    case = sys.argv[1]
    skipped = enter_netns(case, tools)
    if skipped is not None:
        return skipped

    prepare_environ()
    env = make_env(case)
    failed = True
    start = time.monotonic()
    try:
        summary = cases[case](env)
        env.finish()
        failed = False
    except Failure as e:
        summary = str(e)
    except Exception as e:      # a bug in the test or a tool
        summary = f'{type(e).__name__}: {e}'
        traceback.print_exc()
    finally:
        env.teardown(failed)
    took = time.monotonic() - start
    print(f'{"FAIL" if failed else "PASS"} {label}{case} ({took:.1f} s): '
          f'{summary}', flush=True)
    return 1 if failed else 0
