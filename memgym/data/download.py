"""`memgym data`: fetch the real datasets memgym cannot ship, from their upstream sources.

    memgym data                     # each dataset, its files and whether they are in the cache
    memgym data get locomo          # download (or tell exactly what to download, offline)
    memgym data path locomo         # print the cached file's path (the envs' default data_path)

Files go to `$MEMGYM_CACHE/data/` (default `~/.cache/memgym/data`, beside the prepared models).
Each file is written under a temporary name and moved into place only once its size and sha256
match the pin, so a half-downloaded or altered file never looks present. Offline (or when the
source refuses), the error names the URL, the file name and the folder to put it in.

Pins: `locomo10.json`'s sha256 is the released file's (snap-research/locomo, `data/`). The
LongMemEval and MemoryAgentBench files are not pinned yet (their sha256 was not computed here):
`get` prints the sha256 and size it downloaded so they can be pinned, and says the file was not
checked against a pin.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from memgym.cache import cache_root
from memgym.errors import DataError, unknown_name

__all__ = ["DATASETS", "DataFile", "Dataset", "add_arguments", "data_dir", "data_file",
           "fetch", "run"]


@dataclass(frozen=True)
class DataFile:
    """One upstream file: its name in the cache, where it comes from, and its pin (if known)."""

    name: str
    url: str
    sha256: str = ""
    """The released file's sha256; "" when not pinned (then `get` reports what it fetched)."""
    size: int = 0
    """Its size in bytes (0 when not pinned)."""


@dataclass(frozen=True)
class Dataset:
    """A dataset `memgym data get` fetches: its files, licence and the envs that read it."""

    name: str
    files: tuple[DataFile, ...]
    license: str
    source: str
    envs: str


_HF = "https://huggingface.co/datasets"
DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset("locomo", (DataFile(
        "locomo10.json",
        "https://raw.githubusercontent.com/snap-research/locomo/main/data/locomo10.json",
        "79fa87e90f04081343b8c8debecb80a9a6842b76a7aa537dc9fdf651ea698ff4", 2805274),),
        "CC BY-NC 4.0", "https://github.com/snap-research/locomo",
        "MemoryR1-LoCoMo-v0, RMM-LoCoMo-v0; the locomo board"),
    Dataset("longmemeval", tuple(DataFile(
        f"longmemeval_{v}.json", f"{_HF}/xiaowu0162/longmemeval-cleaned/resolve/main/"
                                 f"longmemeval_{v}.json") for v in ("s_cleaned", "oracle")),
        "MIT", "https://huggingface.co/datasets/xiaowu0162/longmemeval-cleaned",
        "RMM-LongMemEval-v0, MemoryR1-LongMemEval-v0; the longmemeval board"),
    Dataset("memoryagentbench", tuple(DataFile(
        f"memoryagentbench/{c}-00000-of-00001.parquet",
        f"{_HF}/ai-hyz/MemoryAgentBench/resolve/main/data/{c}-00000-of-00001.parquet")
        for c in ("Accurate_Retrieval", "Test_Time_Learning", "Long_Range_Understanding",
                  "Conflict_Resolution")),
        "MIT", "https://huggingface.co/datasets/ai-hyz/MemoryAgentBench",
        "the MemoryAgentBench envs (data_path= the memoryagentbench folder)"),
)}
"""Every dataset `memgym data get` knows, by name."""


def data_dir() -> Path:
    """The data cache: `$MEMGYM_CACHE/data`, else `$XDG_CACHE_HOME/memgym/data` or
    `~/.cache/memgym/data` (the models' cache root, as `memgym models` uses it)."""
    return cache_root() / "data"


def _dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise unknown_name("dataset", name, DATASETS)
    return DATASETS[name]


def data_file(name: str, file: str | None = None) -> Path:
    """The cached path of a dataset's file (its first file by default), which must exist.

    Raises:
        DataError: the file is not in the cache; the message gives the `memgym data get` command
            and the manual download (URL and folder).
    """
    dataset = _dataset(name)
    chosen = next((f for f in dataset.files if file in (None, f.name, Path(f.name).name)), None)
    if chosen is None:
        raise DataError(f"dataset {name} has no file {file!r}; its files: "
                        f"{', '.join(f.name for f in dataset.files)}")
    path = data_dir() / chosen.name
    if not path.is_file():
        raise DataError(f"{chosen.name} is not in memgym's data cache ({data_dir()}). Get it "
                        f"with `memgym data get {name}`, or download {chosen.url} and save it as "
                        f"{path} (or pass data_path= to the env)")
    return path


def fetch(name: str, *, force: bool = False) -> list[tuple[Path, str]]:
    """Download every file of dataset `name` into the cache; returns (path, note) per file.

    Files already present (and matching their pin) are kept unless `force`.

    Raises:
        DataError: a download failed (offline, refused) or a file does not match its pin; the
            message says what to download and where to put it.
    """
    dataset = _dataset(name)
    out = []
    for file in dataset.files:
        target = data_dir() / file.name
        if target.is_file() and not force and _matches(target, file):
            out.append((target, "already present" + (", sha256 checked" if file.sha256 else "")))
            continue
        out.append((target, _download(file, target, name)))
    return out


def _matches(path: Path, file: DataFile) -> bool:
    return not file.sha256 or (path.stat().st_size == file.size
                               and _sha256(path) == file.sha256)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(file: DataFile, target: Path, name: str) -> str:
    """Fetch `file.url` to a temporary file beside `target`, check it, then move it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    manual = f"download {file.url} and save it as {target}"
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(file.url, timeout=60) as response:
            shutil.copyfileobj(response, f, 1 << 20)
        got_size, got_sha = Path(tmp).stat().st_size, _sha256(Path(tmp))
        if file.sha256 and (got_sha != file.sha256 or got_size != file.size):
            raise DataError(f"{file.url}: got {got_size} bytes with sha256 {got_sha}, not the "
                            f"pinned {file.size} bytes / {file.sha256} (a changed or damaged "
                            f"upstream file); nothing was written. To use it anyway, {manual} "
                            "and pass data_path= to the env")
        os.replace(tmp, target)
    except DataError:
        raise
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DataError(f"could not download {file.name} for dataset {name} "
                        f"({getattr(exc, 'reason', exc)}). Offline? Then {manual} (and run "
                        f"`memgym data get {name}` to check it)") from exc
    finally:
        Path(tmp).unlink(missing_ok=True)
    if file.sha256:
        return f"downloaded, sha256 matches the pin ({got_size} bytes)"
    return (f"downloaded {got_size} bytes, sha256 {got_sha}: NOT checked (memgym has no pin "
            "for this file yet)")


# -- command line ---------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`memgym data` (list), `memgym data get NAME`, `memgym data path NAME`."""
    sub = parser.add_subparsers(dest="data_command")
    get = sub.add_parser("get", help="download a dataset from its upstream source into the cache")
    get.add_argument("name", metavar="NAME", help=f"one of {', '.join(DATASETS)}")
    get.add_argument("--force", action="store_true", help="download again even if present")
    path = sub.add_parser("path", help="print the cached path of a dataset's file")
    path.add_argument("name", metavar="NAME", help=f"one of {', '.join(DATASETS)}")
    path.add_argument("--file", default=None, help="which file (default: the first)")


def run(args: argparse.Namespace) -> int:
    """List the datasets, or get one, or print a cached file's path."""
    command = getattr(args, "data_command", None)
    if command == "get":
        for path, note in fetch(args.name, force=args.force):
            print(f"{path}: {note}")
        print(f"licence: {DATASETS[args.name].license} ({DATASETS[args.name].source}); "
              f"read by {DATASETS[args.name].envs}")
        return 0
    if command == "path":
        print(data_file(args.name, args.file))
        return 0
    print(f"memgym data (cache: {data_dir()}; set MEMGYM_CACHE to move it)")
    for dataset in DATASETS.values():
        present = [(data_dir() / f.name).is_file() for f in dataset.files]
        state = "present" if all(present) else f"`memgym data get {dataset.name}`"
        print(f"  {dataset.name}: {len(dataset.files)} file(s), {state}; {dataset.license}; "
              f"{dataset.envs}")
    return 0
