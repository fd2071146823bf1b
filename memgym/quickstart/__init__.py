"""The quickstart: memgym's embedded tiny MemAgent model, evaluated, trained with GRPO, re-evaluated.

`memgym quickstart` (see `memgym.quickstart.run`) is the README's first command; the model it
loads is built by `python -m memgym.quickstart.build_model`; `memgym.quickstart.experiment` holds
the settings both share.
"""

from memgym.quickstart.run import EMBEDDED_MODEL, QuickstartResult, run_quickstart

__all__ = ["EMBEDDED_MODEL", "QuickstartResult", "run_quickstart"]
