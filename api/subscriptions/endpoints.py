"""Where a rest-hook may point: the public internet, never this server's own network.

A Subscription makes the server POST to an address its creator chose, with headers its
creator chose; without a check, any patient could have Vigil call its database port, a
cloud metadata service or a router's admin page, and read the errors back as a port scan.
So an endpoint's host must resolve only to global addresses, checked when the subscription
is made and again before every POST (a name's addresses change). Loopback and private
networks are for development and tests: ``VIGIL_API_LOCAL_HOOKS=on``.

What this does not close: a name that resolves to a public address for the check and to a
private one a moment later (DNS rebinding) still reaches it once; pinning the connection to
the address checked would need an HTTP client that connects by address.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class EndpointRefused(ValueError):
    """The endpoint's host is not one Vigil may call."""


def check_endpoint(url: str, local_allowed: bool) -> None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise EndpointRefused(
            "channel.endpoint has a port that is not a number from 1 to 65535"
        ) from None
    if local_allowed:
        return
    try:
        found = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise EndpointRefused(
            f"channel.endpoint: the host {host[:80]!r} does not resolve"
        ) from None
    for *_, address in found:
        if not ipaddress.ip_address(address[0]).is_global:
            raise EndpointRefused(
                "channel.endpoint must be a public address (loopback and private networks "
                "are refused; VIGIL_API_LOCAL_HOOKS=on allows them for development)"
            )
