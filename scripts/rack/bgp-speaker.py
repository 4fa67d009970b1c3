#!/usr/bin/env python3
"""A BGP speaker on the node, as MetalLB's speakers (placed by metal-ccm) or kube-vip are: it opens
iBGP to the machine's own FRR (peer group LOCAL, `bgp listen range`) from the node's address and
announces one service address with a next hop on the node. Copied into the machine by the rack
test (test-only, removed with the VM); Python's standard library only.

    bgp-speaker.py <node ip> <asn> <prefix> <next hop> <router id>

The router id must differ from FRR's (the node's address): FRR refuses an iBGP OPEN that carries
its own identifier (NOTIFICATION 2/3, Bad BGP Identifier), so the speaker uses its pod's address.

Keeps the session up (KEEPALIVE every 2 s, the LOCAL group's timers are 2 8) until it is killed;
prints "established" once FRR accepted the OPEN and the UPDATE went out.
"""
import socket
import struct
import sys
import time


def msg(kind, body):
    return b"\xff" * 16 + struct.pack("!HB", 19 + len(body), kind) + body


def read(s):
    def exactly(n):
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c:
                raise EOFError("the peer closed the session")
            b += c
        return b

    head = exactly(19)
    length, kind = struct.unpack("!HB", head[16:19])
    return kind, exactly(length - 19)


# RFC 4271 §4.5 (and 4486 for cease) names of the NOTIFICATIONs FRR may send
NOTIFICATIONS = {
    (2, 1): "unsupported version", (2, 2): "bad peer AS", (2, 3): "bad BGP identifier",
    (2, 4): "unsupported optional parameter", (2, 6): "unacceptable hold time",
    (2, 7): "unsupported capability", (6, 2): "cease: administrative shutdown",
    (6, 5): "cease: connection rejected", (6, 7): "cease: connection collision resolution",
}


def main(node_ip, asn, prefix, next_hop, router_id):
    asn = int(asn)
    caps = bytes([65, 4]) + struct.pack("!I", asn) + bytes([1, 4, 0, 1, 0, 1])
    opt = bytes([2, len(caps)]) + caps
    open_msg = msg(1, struct.pack("!BHH4sB", 4, 23456 if asn > 65535 else asn, 9, socket.inet_aton(router_id), len(opt)) + opt)
    addr, plen = prefix.split("/")
    attrs = bytes([0x40, 1, 1, 0]) + bytes([0x40, 2, 0]) + bytes([0x40, 3, 4]) + socket.inet_aton(next_hop)
    attrs += bytes([0x40, 5, 4]) + struct.pack("!I", 100)
    nlri = bytes([int(plen)]) + socket.inet_aton(addr)[: (int(plen) + 7) // 8]
    update = msg(2, struct.pack("!H", 0) + struct.pack("!H", len(attrs)) + attrs + nlri)
    for _ in range(120):
        try:
            s = socket.create_connection((node_ip, 179), timeout=10, source_address=(node_ip, 0))
            break
        except OSError:
            time.sleep(0.5)
    else:
        print("nothing listens on port 179", flush=True)
        return 1
    s.sendall(open_msg)
    while True:
        kind, body = read(s)
        if kind == 3:
            name = NOTIFICATIONS.get((body[0], body[1]), "see RFC 4271 4.5")
            print(f"notification {body[0]}/{body[1]} ({name})", flush=True)
            return 1
        if kind == 1:
            s.sendall(msg(4, b""))
        if kind == 4:
            break
    s.sendall(update)
    print("established", flush=True)
    s.settimeout(None)
    while True:
        time.sleep(2)
        s.sendall(msg(4, b""))


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:6]))
