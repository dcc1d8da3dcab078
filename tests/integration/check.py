#!/usr/bin/env python3
"""picamrtc --check against a real mosquitto, each case in a private
network namespace that holds only loopback (the harness of
tests/pcrtest.py; the locked-down broker with passwords and TLS of
tests/integration/secure.py). One case per run: check.py CASE.

What a person running `picamrtc --check` relies on: exit 0 exactly when the
service would stream, 1 otherwise and 2 for a bad option; the line that
says why (the broker unreachable, refused, a TLS error); an answer within
10 s whatever the broker does; and a running service with the same device
id left alone (its retained status unchanged).

Standard library only."""

import os
import socket
import subprocess
import sys
import time

import pcrtest
from pcrtest import DEVICE, PREFIX, Env, check, free_port, log
from secure import SecureEnv

# what the check may take at most, whatever the broker does
LIMIT_S = 10


def warm_registry(env):
    """The first GStreamer program of a fresh build scans every plugin into
    the test registry (17 s under ASan): not the check's time."""
    subprocess.run([env.service_bin, '--print-pipeline', '--source', 'test'],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=120, check=False)


def run_check(env, args, limit=LIMIT_S, clock_epoch=None):
    """Runs picamrtc --check ARGS (its wall clock starting at clock_epoch
    when given); returns (exit code, stdout, seconds)."""
    if not getattr(env, 'warm', False):
        warm_registry(env)
        env.warm = True
    argv = [env.service_bin, '--check', '--source', 'test'] + args
    child_env = os.environ.copy()
    if clock_epoch is not None:
        child_env['LD_PRELOAD'] = os.path.join(
            os.environ['PICAMRTC_BUILD_ROOT'], 'tests', 'integration',
            'libpcr-fake-clock.so')
        child_env['PCR_FAKE_CLOCK_EPOCH'] = str(clock_epoch)
        # An ASan build's runtime then comes second in the library list.
        # No leak check for this process: with the clock at 1970 here,
        # LeakSanitizer's exit-time scan read a bogus dynamic-TLS block
        # and crashed ("Tracer caught signal 11"; every run, whether ASan's
        # runtime came first or second). The other check cases run the
        # same code, TLS included, with the leak check.
        child_env['ASAN_OPTIONS'] = ':'.join(
            o for o in (os.environ.get('ASAN_OPTIONS'),
                        'verify_asan_link_order=0', 'detect_leaks=0') if o)
    t0 = time.monotonic()
    try:
        out = subprocess.run(argv, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=limit + 20,
                             check=False, env=child_env)
    except subprocess.TimeoutExpired:
        raise pcrtest.Failure(f'picamrtc --check {" ".join(args)} still '
                              f'running after {limit + 20} s')
    took = time.monotonic() - t0
    text = out.stdout.decode('utf-8', 'replace')
    log(f'picamrtc --check {" ".join(args)}: exit {out.returncode} in '
        f'{took:.1f} s\n{text}' +
        out.stderr.decode('utf-8', 'replace')[-2000:])
    check(took < limit, f'picamrtc --check took {took:.1f} s (at most '
          f'{limit} s)')
    return out.returncode, text, took


def line(text, label):
    """The output line starting with LABEL:, or ''."""
    return next((l for l in text.splitlines()
                 if l.startswith(label + ':')), '')


def case_ready(env):
    env.start_broker()
    rc, out, took = run_check(env, ['--broker', env.broker_uri,
                                    '--device', DEVICE])
    check(rc == 0, f'--check with the broker up exited {rc}, expected 0')
    check('videotestsrc' in line(out, 'source'),
          f'the source line does not name videotestsrc: {out}')
    check('x264enc' in line(out, 'encoder'),
          f'the encoder line does not name x264enc: {out}')
    check('x264enc' in line(out, 'encoders'),
          f'x264enc is not among the encoders found: {out}')
    check(line(out, 'pipeline').startswith('pipeline:   ok'),
          f'the pipeline line does not say it parses: {out}')
    check(line(out, 'broker').startswith('broker:     ok'),
          f'the broker line does not say ok: {out}')
    check(line(out, 'clock') != '', f'no clock line: {out}')
    last = out.strip().splitlines()[-1]
    check(last.startswith('ready'), f'the last line is "{last}"')
    check(env.last_status() is None, 'the check published a status: '
          f'{env.last_status()}')
    return f'exit 0 in {took:.1f} s: videotestsrc, x264enc, broker ok, ready'


def case_broker_down(env):
    results = []
    # nothing listens on the port: refused at once
    port = free_port()
    rc, out, took = run_check(env, ['--broker', f'mqtt://127.0.0.1:{port}'])
    check(rc == 1, f'--check with no broker exited {rc}, expected 1')
    check('unreachable' in line(out, 'broker'),
          f'the broker line does not say unreachable: {out}')
    check(out.strip().splitlines()[-1].startswith('not ready'),
          f'the last line does not say not ready: {out}')
    results.append(f'no broker: exit 1 in {took:.1f} s, unreachable')

    # the same over TLS: refused at once too, not a 5 s "no answer"
    # (libmosquitto alone keeps retrying its handshake on the dead socket)
    rc, out, took = run_check(env, ['--broker', f'mqtts://127.0.0.1:{port}'])
    check(rc == 1, f'--check with no TLS broker exited {rc}, expected 1')
    check('unreachable' in line(out, 'broker') and
          'refused' in line(out, 'broker'),
          f'the broker line does not say unreachable and refused over '
          f'TLS: {out}')
    check(took < 4, f'--check with no TLS broker took {took:.1f} s (the '
          f'refusal is known at once; 5 s is the wait for an answer)')
    results.append(f'no TLS broker: exit 1 in {took:.1f} s, unreachable')

    # a listener that never answers: the bounded wait
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        s.listen(8)
        port = s.getsockname()[1]
        rc, out, took = run_check(env, ['--broker',
                                        f'mqtt://127.0.0.1:{port}'])
    check(rc == 1, f'--check with a silent broker exited {rc}, expected 1')
    check('no answer' in line(out, 'broker'),
          f'the broker line does not say "no answer": {out}')
    results.append(f'a silent listener: exit 1 in {took:.1f} s, no answer')
    return '; '.join(results)


def case_refused(env):
    env.start_broker()
    other_ca = env.make_other_ca()
    results = []

    def conf(name, **keys):
        return ['--config', env.write_service_conf(
            name, broker=env.broker_uri, username='cam1', device=DEVICE,
            **keys)]

    rc, out, took = run_check(env, conf('wrong.conf',
                                        password='not-the-password',
                                        ca_file=env.ca))
    check(rc == 1, f'--check with a wrong password exited {rc}, expected 1')
    check('refused' in line(out, 'broker') and
          'not authorised' in line(out, 'broker'),
          f'the broker line does not say refused, not authorised: {out}')
    check(env.passwords['cam1'] not in out, 'a password in the output')
    results.append(f'wrong password: exit 1 in {took:.1f} s, refused')

    rc, out, took = run_check(env, conf('other-ca.conf',
                                        password=env.passwords['cam1'],
                                        ca_file=other_ca))
    check(rc == 1, f'--check with a CA that did not sign the broker exited '
          f'{rc}, expected 1')
    check('TLS error' in line(out, 'broker'),
          f'the broker line does not say TLS error: {out}')
    results.append(f'wrong CA: exit 1 in {took:.1f} s, TLS error')

    # the control: the same broker takes the right password
    rc, out, took = run_check(env, conf('right.conf',
                                        password=env.passwords['cam1'],
                                        ca_file=env.ca))
    check(rc == 0 and line(out, 'broker').startswith('broker:     ok'),
          f'--check with the right password exited {rc}: {out}')
    results.append(f'right password: exit 0 in {took:.1f} s')
    return '; '.join(results)


def case_bad_option(env):
    results = []
    for args in (['--width', '13'], ['--no-such-option'],
                 ['--source', 'nonsense'], ['--print-pipeline']):
        rc, out, _ = run_check(env, args)
        check(rc == 2, f'--check {" ".join(args)} exited {rc}, expected 2 '
              f'(output: {out!r})')
        results.append(f'{" ".join(args)}: 2')
    return '; '.join(results)


def case_beside_service(env):
    env.start_broker()
    env.start_service()
    before = env.retained_status()
    check(before and before.get('state') == 'online',
          f'the retained status before the check is {before}')
    time.sleep(1)               # anything the start-up still sends
    with env.status_cond:
        seen = len(env.statuses)
    rc, out, took = run_check(env, ['--broker', env.broker_uri,
                                    '--device', DEVICE])
    check(rc == 0, f'--check beside the running service exited {rc}')
    time.sleep(2)               # a will or a status would arrive by now
    with env.status_cond:
        new = env.statuses[seen:]
    check(not new, f'the service\'s status changed during the check: {new}')
    after = env.retained_status()
    check(after == before, f'the retained status was {before}, after the '
          f'check {after}')
    env.service_alive()
    broker_log = env.broker.log_text(200000)
    check('picamrtc-check-' in broker_log,
          'the broker log shows no client picamrtc-check-*')
    # the service kept its connection: the broker never took it over
    check('already connected' not in broker_log,
          'the broker dropped a client for a duplicate id')
    return (f'exit 0 in {took:.1f} s beside the running service; its '
            'retained status unchanged, no status published')


def case_clock(env):
    """A Pi without a real-time clock, booted at 1970: the TLS broker's
    certificate is not valid yet."""
    env.start_broker()
    conf = env.write_service_conf(
        'picamrtc.conf', broker=env.broker_uri, username='cam1',
        password=env.passwords['cam1'], ca_file=env.ca, device=DEVICE)
    rc, out, took = run_check(env, ['--config', conf], clock_epoch=0)
    check(rc == 1, f'--check at 1970 against a TLS broker exited {rc}, '
          'expected 1')
    check(line(out, 'clock').startswith('clock:      WRONG') and
          '1970-01-01' in line(out, 'clock'),
          f'the clock line does not say WRONG, 1970-01-01: {out}')
    check('TLS error' in line(out, 'broker'),
          f'the broker line does not say TLS error: {out}')
    last = out.strip().splitlines()[-1]
    check(last.startswith('not ready') and 'clock' in last,
          f'the last line does not point at the clock: "{last}"')
    return (f'clock at 1970: exit 1 in {took:.1f} s, clock WRONG, broker '
            'TLS error, the last line points at the clock')


def case_relay(env):
    """With --relay: a relay line, ok for a Janus that answers, UNREACHABLE
    (still ready: the camera would serve viewers directly) for none."""
    env.start_broker()
    janus = env.start_janus()
    rc, out, took = run_check(env, ['--broker', env.broker_uri, '--device',
                                    DEVICE, '--relay', janus.relay_url()])
    check(rc == 0, f'--check with Janus up exited {rc}, expected 0')
    ok = line(out, 'relay')
    check(ok.startswith('relay:      ok') and janus.url in ok,
          f'the relay line does not say Janus answers: {out}')
    check('adminkey' not in out, f'the check printed the admin key: {out}')
    port = free_port()
    rc, out, took2 = run_check(env, ['--broker', env.broker_uri, '--device',
                                     DEVICE, '--relay',
                                     f'http://127.0.0.1:{port}/janus'])
    down = line(out, 'relay')
    check(rc == 0 and 'UNREACHABLE' in down and 'directly' in down,
          f'Janus down: exit {rc}, relay line "{down}"')
    check(out.strip().splitlines()[-1].startswith('ready'),
          f'Janus down should not make the camera not ready: {out}')
    return (f'Janus up: relay ok in {took:.1f} s; down: exit 0, "{down}" '
            f'in {took2:.1f} s')


CASES = {
    'check-ready': case_ready,
    'check-broker-down': case_broker_down,
    'check-refused': case_refused,
    'check-bad-option': case_bad_option,
    'check-beside-service': case_beside_service,
    'check-clock': case_clock,
    'check-relay': case_relay,
}


def make_env(case):
    return SecureEnv(case) if case in ('check-refused', 'check-clock') \
        else Env(case)


if __name__ == '__main__':
    sys.exit(pcrtest.main(CASES, make_env,
                          tools=('mosquitto_passwd', 'openssl')))
