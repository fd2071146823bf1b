"""OpenMP's wait policy, chosen before torch loads its OpenMP runtime.

torch's CPU kernels run on OpenMP (GNU libgomp in the PyPI wheels). By default an idle OpenMP
worker busy-waits (spins) for a while before sleeping. On a machine whose cores other jobs
also use, a spinning worker takes the core from the very thread it waits for: on 2 loaded
cores a [32, 128] x [128, 1000] matmul took 16 ms instead of 0.2 ms, and the first GRPO
rollout of `train/quickstart.yaml` took 30-103 s against 1.3-5 s for the later ones (libgomp
spins less once the process holds more OpenMP threads than cores, which the first training
step brings about; bench/README.md, "The first training step"). With OMP_WAIT_POLICY=PASSIVE
workers sleep at once and every rollout ran at the later steps' speed.

libgomp reads the variable once, when torch is first imported, so `import memgym` sets it.
"""

from __future__ import annotations

import os
import sys

__all__ = ["WAIT_POLICY", "prefer_passive_omp_wait", "wait_policy_warning"]

WAIT_POLICY = "PASSIVE"
"""The OMP_WAIT_POLICY memgym sets when the user has not set one."""

# True once memgym set the policy after torch had already loaded its runtime (too late).
_too_late = False


def prefer_passive_omp_wait() -> bool:
    """Default OMP_WAIT_POLICY to PASSIVE unless the user chose one; True if memgym set it.

    It has no effect on an OpenMP runtime that is already loaded: when torch was imported
    before memgym, the policy stays the runtime's default (set OMP_WAIT_POLICY=PASSIVE in the
    environment then). A user's own value, e.g. ACTIVE on a dedicated machine, is kept.
    """
    global _too_late
    if os.environ.get("OMP_WAIT_POLICY"):
        return False
    os.environ["OMP_WAIT_POLICY"] = WAIT_POLICY
    _too_late = "torch" in sys.modules
    return not _too_late


def wait_policy_warning(threads: int) -> str | None:
    """What to tell a user whose torch CPU work runs with spinning OpenMP workers, or None.

    Only when torch was imported before memgym (so memgym's default came too late) and more
    than one torch thread runs: the case that made the first rollout 20-40x slower.
    """
    if not _too_late or threads <= 1:
        return None
    return (f"torch was imported before memgym, so its OpenMP workers spin while idle; with "
            f"{threads} torch threads on busy cores that made generation up to 30x slower. "
            "Import memgym first, or set OMP_WAIT_POLICY=PASSIVE "
            "(or ACTIVE to keep spinning) in the environment.")
