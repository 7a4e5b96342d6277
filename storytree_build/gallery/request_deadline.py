"""A deadline for reading a whole request. A socket timeout bounds one read only: a client that sends a byte every
few seconds never trips it and holds a worker of `storytree serve` for as long as it likes. This reader bounds every
read by what is left of one deadline, set when the server starts waiting for a request and covering the wait, the
request line, the headers and the body; past it the read raises TimeoutError and the server drops the connection.
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

    def start(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def stop(self, timeout: float | None) -> None:
        """The request is read: from now on only the per-operation `timeout` applies (to writing the answer)."""
        self.deadline = None
        self._connection.settimeout(timeout)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override] # io's stub takes any buffer
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request was not read whole before its deadline")
            self._connection.settimeout(left)
        return self._connection.recv_into(buffer)
