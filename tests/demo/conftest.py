"""The demo's input generator is a repository tool (config/demo/generate/), not part of the
installed package: its modules import each other by plain name, so put its folder on
sys.path, as running its script does."""

from __future__ import annotations

import sys
from pathlib import Path

GENERATE = Path(__file__).resolve().parents[2] / "config" / "demo" / "generate"
if str(GENERATE) not in sys.path:
    sys.path.insert(0, str(GENERATE))
