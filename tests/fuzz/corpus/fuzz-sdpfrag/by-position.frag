5m=video 9 RTP/AVP 0
a=candidate:1 1 udp 1 192.0.2.1 1 typ host
m=audio 9 RTP/AVP 0
a=candidate:2 1 udp 1 192.0.2.1 2 typ host
