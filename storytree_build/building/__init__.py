"""Building targets: the only place money is spent, and everything that makes a paid result safe (locks, records,
atomic files, write-back, renames, verification)."""
