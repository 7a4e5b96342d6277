"""The names `storytree serve` answers to. It listens on 127.0.0.1 only, but a page on another site can make its own
name resolve to 127.0.0.1 (DNS rebinding) and then read whatever the server answers; the browser still sends that
site's name in the Host header. So every request must name this server: `127.0.0.1:<port>`, `localhost:<port>` or
`[::1]:<port>`, exactly one Host header, the port the server is bound to.
"""

from __future__ import annotations


def local_hosts(port: int) -> frozenset[str]:
    """The Host values (and, after `http://`, the Origins) of this server's own pages."""
    return frozenset({f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"})


def host_problem(hosts: list[str], port: int) -> str | None:
    """Why a request with these Host header values is not for this server (None when it is). Host names are
    case-insensitive."""
    if len(hosts) != 1:
        return f"send exactly one Host header (got {len(hosts)})"
    if hosts[0].strip().lower() not in local_hosts(port):
        return f"this server answers to Host 127.0.0.1:{port} or localhost:{port} only"
    return None
