2a=ice-ufrag:OTHER
a=ice-pwd:xxxxxxxxxxxxxxxxxxxxxxxx
