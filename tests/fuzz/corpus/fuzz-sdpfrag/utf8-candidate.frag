2a=candidate:1 1 udp 1 hést 1 typ host
