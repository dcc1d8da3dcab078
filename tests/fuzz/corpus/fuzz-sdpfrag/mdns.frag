0a=candidate:3 1 udp 2113937151 6b3f1c7e-0000-4000-8000-000000000000.local 54400 typ host generation 0 ufrag 847r network-cost 999
