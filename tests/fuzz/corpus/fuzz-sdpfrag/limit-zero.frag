;a=candidate:1 1 udp 1 192.0.2.1 1 typ host
