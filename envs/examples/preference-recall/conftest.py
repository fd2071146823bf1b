"""Make `preference_recall` importable when pytest runs from elsewhere (memgym's root), uninstalled."""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
