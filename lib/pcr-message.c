/* STUB: to be written. */
#include "pcr-message.h"
