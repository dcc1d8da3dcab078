2a=candidate:1 1 udp 1 Ã( 1 typ host
