/* An LD_PRELOAD library for tests/integration/check.py: the wall clock of
 * a Raspberry Pi without a real-time clock, which boots at 1970 until NTP
 * sets the time. PCR_FAKE_CLOCK_EPOCH (seconds since 1970) is where the
 * clock starts; it runs on from there. Only CLOCK_REALTIME and its kin
 * move: monotonic time, and so every timeout, stays real. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

typedef int (*ClockGettime) (clockid_t id, struct timespec * ts);

/* Seconds to subtract from the real wall clock. */
static time_t
offset (ClockGettime real)
{
  static time_t value = -1;

  if (value == -1) {
    const char *epoch = getenv ("PCR_FAKE_CLOCK_EPOCH");
    struct timespec now;

    real (CLOCK_REALTIME, &now);
    value = epoch ? now.tv_sec - (time_t) strtoll (epoch, NULL, 10) : 0;
  }
  return value;
}

int
clock_gettime (clockid_t id, struct timespec *ts)
{
  static ClockGettime real;
  int rc;

  if (real == NULL)
    real = (ClockGettime) dlsym (RTLD_NEXT, "clock_gettime");
  rc = real (id, ts);
  if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE ||
          id == CLOCK_TAI))
    ts->tv_sec -= offset (real);
  return rc;
}

int
gettimeofday (struct timeval *tv, void *tz)
{
  struct timespec ts;

  (void) tz;
  if (clock_gettime (CLOCK_REALTIME, &ts) != 0)
    return -1;
  tv->tv_sec = ts.tv_sec;
  tv->tv_usec = ts.tv_nsec / 1000;
  return 0;
}

time_t
time (time_t * t)
{
  struct timespec ts;

  clock_gettime (CLOCK_REALTIME, &ts);
  if (t != NULL)
    *t = ts.tv_sec;
  return ts.tv_sec;
}
