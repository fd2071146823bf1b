"""The quickstart: memgym's embedded tiny MemAgent model, evaluated, trained with GRPO, re-evaluated.

`memgym quickstart` (see `memgym.quickstart.run`) is the README's first command; the model it
loads is built by the repository's `scripts/build_tiny_memagent.py`; `memgym.quickstart.experiment`
holds the settings both share. `memgym.quickstart.memory_r1` and `.rmm` are the other agents'
quickstarts, `.smollm2` the real-LLM one (GRPO of SmolLM2 with vLLM rollouts);
`memgym.quickstart.report` what they share. This package holds runners over the
shipped assets only: the scripts that built the assets live in scripts/.
"""

from memgym.quickstart.run import EMBEDDED_MODEL, QuickstartResult, run_quickstart

__all__ = ["EMBEDDED_MODEL", "QuickstartResult", "run_quickstart"]
