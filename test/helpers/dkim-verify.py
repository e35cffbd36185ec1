#!/usr/bin/python3
# An independent DKIM verifier for tests: Debian's python3-dkim checks every DKIM-Signature
# of the message on stdin, looking keys up in the test's loopback DNS server (dnspython).
# Usage: dkim-verify.py <dns-port>; prints "<index> pass|fail" per signature; exit 0 when
# there is at least one signature and all pass.
import sys

import dkim
import dns.resolver

resolver = dns.resolver.Resolver(configure=False)
resolver.nameservers = ['127.0.0.1']
resolver.port = int(sys.argv[1])


def dnsfunc(name, timeout=5):
    answer = resolver.resolve(name.decode().rstrip('.'), 'TXT', lifetime=timeout)
    return b''.join(b''.join(r.strings) for r in answer)


msg = sys.stdin.buffer.read()
header = msg.split(b'\r\n\r\n', 1)[0]
count = sum(1 for line in header.split(b'\r\n') if line.lower().startswith(b'dkim-signature:'))
d = dkim.DKIM(msg)
ok = count > 0
for i in range(count):
    good = d.verify(idx=i, dnsfunc=dnsfunc)
    ok = ok and good
    print(i, 'pass' if good else 'fail')
sys.exit(0 if ok else 1)
