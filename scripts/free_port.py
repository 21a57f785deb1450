#!/usr/bin/env python3
"""Prints (or returns) a TCP port on 127.0.0.1 that is free now and stays clear of the kernel's
ephemeral range, so an outgoing connection (a PostgreSQL client, a browser) cannot take it
between the pick and the server's bind.

The end-to-end scripts start `adserve serve` on the port this picks; a CI run once failed when a
random port in 20000–40000 was already in use (that range overlaps Linux's ephemeral ports,
32768–60999 by default).

Usage: python3 scripts/free_port.py [COUNT]   (prints COUNT free ports, one per line)
"""
import random
import socket
import sys


def ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


def is_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def kernel_pick():
    """A free port the kernel picks (inside the ephemeral range)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port(avoid=()):
    """A free port in 10000–(ephemeral start − 1), or above the ephemeral range; where the
    ephemeral range leaves neither (e.g. 1024–65535), one the kernel picks."""
    low, high = ephemeral_range()
    if low - 1 > 10000:
        start, end = 10000, low - 1
    elif high < 65535:
        start, end = high + 1, 65535
    else:
        port = kernel_pick()
        while port in avoid:
            port = kernel_pick()
        return port
    for _ in range(500):
        port = random.randint(start, end)
        if port not in avoid and is_free(port):
            return port
    raise SystemExit(f"no free port found in {start}–{end}")


def free_ports(count):
    """`count` distinct free ports."""
    picked = []
    for _ in range(count):
        picked.append(free_port(avoid=picked))
    return picked


if __name__ == "__main__":
    print("\n".join(str(p) for p in free_ports(int(sys.argv[1]) if len(sys.argv) > 1 else 1)))
