"""Models by name: the registry, the resolver every `--model` / `model:` / `tokenizer:` uses,
and `prepare`, which makes a named pretrained model present offline, once.

    >>> from memgym.models import MODELS, prepare, resolve_model_path
    >>> sorted(MODELS)
    ['all-minilm-l6-v2', 'embedded', 'embedded-memory-r1', 'smollm2-135m-instruct',
     'smollm2-135m-memagent']
    >>> prepare("smollm2-135m-instruct")            # or: memgym models prepare NAME
    >>> resolve_model_path("smollm2-135m-instruct")  # its folder, loadable by from_pretrained

`registry` says what each name is and where it lives; `prepare` fetches and converts;
`resolve` turns any model spec (name, folder, hub id) into what `from_pretrained` loads.
"""

from memgym.models.preparation import convert_gguf, merge_adapter, prepare
from memgym.models.registry import (
    MODELS,
    ModelSpec,
    adapter_folder,
    cache_dir,
    get_spec,
    is_present,
    local_folder,
    prepare_command,
)
from memgym.models.resolve import BUILTIN_MODELS, HUB_TIMEOUT_S, resolve_model_path

__all__ = ["BUILTIN_MODELS", "HUB_TIMEOUT_S", "MODELS", "ModelSpec", "adapter_folder",
           "cache_dir", "convert_gguf", "get_spec", "is_present", "local_folder",
           "merge_adapter", "prepare",
           "prepare_command", "resolve_model_path"]
