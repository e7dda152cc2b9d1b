/*
 * Teddy protocol core, version 1 (docs/protocol.md): the portable C side of hub/protocol.
 * Include this for everything; teddy_port.h declares what the platform around it provides.
 */
#ifndef TEDDY_CORE_H
#define TEDDY_CORE_H

#include "teddy_common.h"
#include "teddy_frame.h"
#include "teddy_keys.h"
#include "teddy_token.h"

#endif /* TEDDY_CORE_H */
