3m=audio 9 RTP/AVP 0
m=video 9 RTP/AVP 0
m=video 9 RTP/AVP 0
a=candidate:4 1 udp 1 192.0.2.1 4 typ host
