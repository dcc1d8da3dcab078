/* STUB: to be written. */
#include "pcr-config.h"
