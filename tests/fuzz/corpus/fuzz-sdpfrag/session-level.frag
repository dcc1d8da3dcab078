1a=ice-options:trickle
a=group:BUNDLE 0
a=candidate:1 1 udp 1 192.0.2.1 1 typ host
