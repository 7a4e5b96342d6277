"""A value made on first use, once, safely across threads: the story store and the providers are opened only when a
build needs them, so a no-op build touches neither."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar, cast

T = TypeVar("T")


class Lazy(Generic[T]):
    def __init__(self, factory: Callable[[], T]):
        self._factory = factory
        self._value: T | None = None
        self._made = False
        self._lock = threading.Lock()

    def __call__(self) -> T:
        with self._lock:
            if not self._made:
                self._value = self._factory()  # a failure is raised to every caller, and retried on the next call
                self._made = True
            return cast(T, self._value)  # made: the factory's value (which may itself be None)

    @property
    def made(self) -> bool:
        return self._made

    def peek(self) -> T | None:
        """The value if it was made, without making it."""
        return self._value if self._made else None
