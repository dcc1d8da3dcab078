/* STUB: to be written. */
#include "pcr-sdp.h"
