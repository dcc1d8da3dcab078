"""The installed camera service on the test pattern, watched by a viewer:
the last step of tests/packages/packages.sh, after the Debian packages are
installed. pcrtest.py's harness (a private loopback-only network namespace,
a real mosquitto, pcr-test-viewer of the build tree) with PCR_SERVICE set to
/usr/bin/picamrtc and no GST_PLUGIN_PATH: the service must find
mqttwebrtcsink in the system plugin path, where gstreamer1.0-picamrtc put
it."""

import os
import sys

import pcrtest
from pcrtest import Env, check, watch_to_end


def case_installed_service(env):
    check(not os.environ.get('GST_PLUGIN_PATH'),
          'GST_PLUGIN_PATH is set: the test would not show that the '
          'installed service finds the installed plugin')
    env.start_broker()
    env.start_service()
    v, ff, done = watch_to_end(env)
    check(done and done['frames'] >= 60, f'viewer decoded only {done}')
    env.service_alive()
    return (f'{env.service_bin}: 1280x720 to a viewer, first frame after '
            f'{ff["ms"]} ms, {done["frames"]} frames')


CASES = {'installed-service': case_installed_service}

if __name__ == '__main__':
    sys.exit(pcrtest.main(CASES, Env, 'packages-'))
