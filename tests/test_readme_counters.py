"""
The README's counters example runs against a real Redis and says what it claims.
"""

from __future__ import annotations

import re
from pathlib import Path

from twisted.internet.defer import Deferred

from .reactor_case import MetricaTestCase, coroutine_test

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


class ReadmeCountersTests(MetricaTestCase):
    @coroutine_test
    async def test_readme_counters_example(self) -> None:
        """
        The README's Staste examples give Staste's numbers.
        """
        [block] = [
            b
            for b in re.findall(r"```python\n(.*?)```", README, flags=re.S)
            if "async def staste_examples" in b
        ]
        namespace: dict[str, object] = {}
        exec(compile(block, "README.md", "exec"), namespace)
        run = namespace["staste_examples"]
        result = await Deferred.fromCoroutine(run(await self.store()))  # type: ignore[operator]
        self.assertEqual(result["girls"], 1)
        self.assertEqual(result["boys aged 19"], 1)
        self.assertEqual(result["days"], [(6, 0), (7, 2), (8, 2), (9, 1), (10, 0)])
        self.assertEqual(result["averages"], [(6, None), (7, 7), (8, 3.83), (9, 1), (10, None)])
        self.assertEqual(result["by c"], [("a", 3), ("b", 2)])
