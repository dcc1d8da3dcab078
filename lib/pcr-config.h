/* Kept for code that still includes it (the element): the shared defaults,
 * the settings validators and the Debian package lookup now have headers of
 * their own. New code includes those. */
#pragma once

#include "pcr-defaults.h"
#include "pcr-packages.h"
#include "pcr-settings.h"
