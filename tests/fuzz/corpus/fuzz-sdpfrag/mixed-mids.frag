4a=mid:audio
a=candidate:1 1 udp 1 192.0.2.1 1 typ host
m=x
m=y
a=candidate:2 1 udp 1 192.0.2.1 2 typ host
a=mid:video
a=end-of-candidates
