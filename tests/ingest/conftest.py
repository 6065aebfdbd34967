"""
Pywikibot, imported by these tests, reads no user configuration and writes nothing in the
project: it gets a directory of its own for the run.
"""

from __future__ import annotations

import os
import tempfile

os.environ["PYWIKIBOT_NO_USER_CONFIG"] = "1"
os.environ.setdefault("PYWIKIBOT_DIR", tempfile.mkdtemp(prefix="ts-pywikibot-"))
