"""Hosts on one machine: network namespaces joined to a bridge by veth pairs, so a test
can run a server on each "host" and cut one off the network (and heal it).

::

    host side                      namespace ptXXXX-1 (10.N.M.1)
    bridge ptbrXXXX (10.N.M.254) ── veth ptXXXXh1 ═ ptXXXXn1
                                 ── veth ptXXXXh2 ═ ptXXXXn2   namespace ptXXXX-2 ...

Every name carries a random tag, so two runs never collide; :meth:`Hosts.remove`
deletes all of it (a namespace's processes must be stopped first).
"""

from __future__ import annotations

import ipaddress
import os
import random
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field

SUBNETS = ipaddress.ip_network("10.200.0.0/13")
"""Where a run's /24 is drawn from, clear of the machine's own routes."""


class NetnsUnavailable(RuntimeError):
    """This machine (or this user) cannot make network namespaces."""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


def unavailable_reason() -> str | None:
    """Why :class:`Hosts` cannot be built here, or None."""
    if shutil.which("ip") is None:
        return "iproute2's ip is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"ptprobe-{secrets.token_hex(3)}"
    try:
        _ip("netns", "add", probe)
    except subprocess.CalledProcessError as error:
        return f"ip netns add is not allowed here: {error.stderr.strip()}"
    _ip("netns", "del", probe)
    return None


def _free_subnet() -> ipaddress.IPv4Network:
    routes = subprocess.run(
        ["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True, check=True
    ).stdout
    taken = [
        ipaddress.ip_network(word, strict=False)
        for line in routes.splitlines()
        for word in line.split()[:2]
        if "/" in word or word.count(".") == 3
    ]
    candidates = list(SUBNETS.subnets(new_prefix=24))
    random.shuffle(candidates)
    for subnet in candidates:
        if not any(subnet.overlaps(other) for other in taken):
            return subnet
    raise NetnsUnavailable("no free /24 for the test hosts")


@dataclass
class Hosts:
    """``count`` namespaces on a bridge; host ``n`` (1-based) has address ``address(n)``."""

    count: int
    tag: str = field(default_factory=lambda: secrets.token_hex(2))
    subnet: ipaddress.IPv4Network = field(default_factory=_free_subnet)

    @property
    def bridge(self) -> str:
        return f"ptbr{self.tag}"

    def namespace(self, n: int) -> str:
        return f"pt{self.tag}-{n}"

    def _host_side(self, n: int) -> str:
        return f"pt{self.tag}h{n}"

    def address(self, n: int) -> str:
        return str(self.subnet[n])

    @property
    def gateway(self) -> str:
        """The host's own address on the bridge (where the services reach the hosts from)."""
        return str(self.subnet[254])

    def prefix(self, n: int) -> tuple[str, ...]:
        """The command that runs a program on host ``n``."""
        return ("ip", "netns", "exec", self.namespace(n))

    def create(self) -> Hosts:
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for n in range(1, self.count + 1):
                namespace, host_side, inside = (
                    self.namespace(n),
                    self._host_side(n),
                    f"pt{self.tag}n{n}",
                )
                _ip("netns", "add", namespace)
                _ip("link", "add", host_side, "type", "veth", "peer", "name", inside)
                _ip("link", "set", inside, "netns", namespace)
                _ip("link", "set", host_side, "master", self.bridge, "up")
                _ip("-n", namespace, "addr", "add", f"{self.address(n)}/24", "dev", inside)
                _ip("-n", namespace, "link", "set", inside, "up")
                _ip("-n", namespace, "link", "set", "lo", "up")
        except BaseException:
            self.remove()
            raise
        return self

    def cut(self, n: int) -> None:
        """Host ``n`` loses the network: its link goes down, packets to and from it are
        dropped (no reset: its peers notice only by their timeouts)."""
        _ip("link", "set", self._host_side(n), "down")

    def heal(self, n: int) -> None:
        _ip("link", "set", self._host_side(n), "up")

    def remove(self) -> None:
        for n in range(1, self.count + 1):
            subprocess.run(["ip", "netns", "del", self.namespace(n)], capture_output=True)
            subprocess.run(["ip", "link", "del", self._host_side(n)], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)

    def __enter__(self) -> Hosts:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.remove()
