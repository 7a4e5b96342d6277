"""Mutation scores per module from `mutmut results --all true` (docs/mutation-testing.md):

    .venv/bin/mutmut results --all true | .venv/bin/python tests/support/mutation_scores.py

A mutant counts as killed when a test failed on it or it ran into mutmut's timeout (an endless loop the tests
reached); survived, "no tests", suspicious and not checked count against the score.
"""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable

# storytree_build.core.status.x_decide__mutmut_3: killed   (methods: ...xǁClassǁmethod__mutmut_3)
LINE = re.compile(r"^\s*(?P<module>storytree_build(?:\.\w+)*?)\.x[_ǁ]\S*__mutmut_\d+: (?P<result>.+?)\s*$")
CAUGHT = ("killed", "timeout")


def scores(lines: Iterable[str]) -> dict[str, Counter[str]]:
    found: dict[str, Counter[str]] = defaultdict(Counter)
    for line in lines:
        match = LINE.match(line)
        if match:
            found[match["module"]][match["result"]] += 1
    return dict(found)


def report(found: dict[str, Counter[str]]) -> str:
    rows = []
    for module, results in [*sorted(found.items()), ("all", sum(found.values(), Counter()))]:
        total, caught = sum(results.values()), sum(results[r] for r in CAUGHT)
        if total:
            rows.append(f"{module:42} {caught:4}/{total:<4} {100 * caught / total:5.1f} %  "
                        f"{dict(sorted(results.items()))}")
    return "\n".join(rows)


if __name__ == "__main__":
    print(report(scores(sys.stdin)))
