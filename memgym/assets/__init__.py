"""Files shipped inside the package: the embedded tiny MemAgent model.

`TINY_MEMAGENT` is a standard transformers model folder (config, safetensors weights, tokenizer):
`AutoModelForCausalLM.from_pretrained(TINY_MEMAGENT)`. It is built by
`python -m memgym.quickstart.build_model`; BUILD.json inside records how.
"""

from pathlib import Path

__all__ = ["TINY_MEMAGENT", "resolve_model_path"]

TINY_MEMAGENT = Path(__file__).resolve().parent / "tiny-memagent"


def resolve_model_path(spec: str) -> str:
    """The folder `spec` names: "embedded" is the embedded tiny MemAgent model; anything else
    (a path or hub id) is returned unchanged."""
    return str(TINY_MEMAGENT) if spec == "embedded" else spec
