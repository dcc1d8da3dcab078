2a=ice-ufrag:847r
a=ice-pwd:t+BhdbNGyBuxgvZxZkX5nHiC
m=video 9 UDP/TLS/RTP/SAVPF 96
a=mid:0
a=candidate:1 1 udp 2122260223 192.0.2.9 40000 typ host
a=end-of-candidates
