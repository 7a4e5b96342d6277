"""A deadline for reading a whole request. A socket timeout bounds one read only: a client that sends a byte every
few seconds never trips it and holds a worker of `storytree serve` for as long as it likes. This reader bounds every
read by what is left of one deadline, covering the wait for a request, its request line, its headers and its body;
past it the read raises TimeoutError and the server drops the connection. A connection's first deadline counts from
when it was accepted, so connections that trickle cannot push a waiting one further back than one deadline; past a
deadline what has already arrived is still read, so a request that waited whole in the queue is answered.
"""

from __future__ import annotations

import io
import socket
import time


class DeadlineReader(io.RawIOBase):
    """The bytes of a connection (wrap it in io.BufferedReader), each read bounded by `deadline` while one is set."""

    def __init__(self, connection: socket.socket):
        super().__init__()
        self._connection = connection
        self.deadline: float | None = None  # time.monotonic() by which the request must have been read

    def start(self, seconds: float, since: float | None = None) -> None:
        """The request must be read whole within `seconds` of `since` (a time.monotonic(); default now)."""
        self.deadline = (time.monotonic() if since is None else since) + seconds

    def stop(self, timeout: float | None) -> None:
        """The request is read: from now on only the per-operation `timeout` applies (to writing the answer)."""
        self.deadline = None
        self._connection.settimeout(timeout)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override] # io's stub takes any buffer
        if self.deadline is None:
            return self._connection.recv_into(buffer)
        self._connection.settimeout(max(0.0, self.deadline - time.monotonic()))  # 0: only what has arrived
        try:
            return self._connection.recv_into(buffer)
        except BlockingIOError:
            raise TimeoutError("the request was not read whole before its deadline") from None
