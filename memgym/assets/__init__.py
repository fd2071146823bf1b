"""Files shipped inside the package: the embedded tiny models (MemAgent, Memory-R1's manager), and
LoRA adapters.

`TINY_MEMAGENT` is a standard transformers model folder (config, safetensors weights, tokenizer):
`AutoModelForCausalLM.from_pretrained(TINY_MEMAGENT)`. It is built by
`scripts/build_tiny_memagent.py` of the repository; BUILD.json inside records how. Name it `embedded`
wherever a model is named (`memgym.models.resolve_model_path` maps the name to this folder).
"""

from pathlib import Path

__all__ = ["ASSETS", "TINY_MEMAGENT", "TINY_MEMORY_R1"]

ASSETS = Path(__file__).resolve().parent
"""This folder; also holds the LoRA adapters of `adapter` models (memgym.models.registry)."""

TINY_MEMAGENT = ASSETS / "tiny-memagent"

TINY_MEMORY_R1 = ASSETS / "tiny-memory-r1"
"""The embedded tiny Memory-R1 manager (`embedded-memory-r1`), built by
`scripts/build_tiny_memory_r1.py` of the repository."""

