"""What `storytree serve` writes to stderr. By default only what matters: the start (printed by serve.py), one line per
review or restore, and the server's own errors; each request's line, and a client's protocol errors and timeouts,
only with `--verbose`. The review token never appears (it is only in the addresses printed at start), and control
characters a client sent are escaped, so a request cannot forge or hide a line.
"""

from __future__ import annotations

import sys

MAX_LINE = 500  # characters of one line: a client chooses much of what a line says


class ServeLog:
    def __init__(self, verbose: bool = False, quiet: bool = False, secret: str | None = None):
        self.verbose = verbose
        self.quiet = quiet  # nothing at all (tests and benchmarks)
        self._secret = secret

    def say(self, text: str) -> None:
        """A line shown by default: a review, a restore, an error of the server."""
        if not self.quiet:
            self._write([text])

    def detail(self, text: str) -> None:
        """A line shown only with --verbose: a request, a client's error, a traceback."""
        if self.verbose and not self.quiet:
            self._write(text.rstrip("\n").split("\n"))

    def _write(self, lines: list[str]) -> None:
        if self._secret:
            lines = [line.replace(self._secret, "***") for line in lines]
        lines = [printable(line)[:MAX_LINE] for line in lines]
        # sys.stderr is looked up now: a test (or the CLI) may have replaced it since the server was made
        sys.stderr.write("".join(f"storytree serve: {line}\n" for line in lines))


def printable(text: str) -> str:
    """`text` with every non-printable character (line breaks, escape codes, lone surrogates) as an escape."""
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)
