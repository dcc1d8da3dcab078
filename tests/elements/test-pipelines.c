/* STUB: to be written. */
#include <gst/check/gstcheck.h>
int
main (int argc, char **argv)
{
  return 0;
}
