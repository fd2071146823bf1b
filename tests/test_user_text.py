"""User-facing text never names the engineers' shared/ data folder: users get data through
`memgym data get` (the envs' default data_path), so a path into shared/ works nowhere else."""

from pathlib import Path

ROOT = Path(__file__).parents[1]
USER_FACING = ("memgym", "agents", "train", "envs", "leaderboards", "scripts", "README.md")
SUFFIXES = {".md", ".py", ".yaml", ".yml", ".json", ".jinja", ".html", ".sh", ".txt"}


def _is_record(path: Path) -> bool:
    """A committed run record (what a run saw, kept as it was), not text written for users."""
    return "submissions" in path.parts and path.name in ("run.json", "summary.json")


def test_user_facing_text_never_names_the_shared_folder():
    named = []
    for top in USER_FACING:
        paths = [ROOT / top] if (ROOT / top).is_file() else (ROOT / top).rglob("*")
        for path in paths:
            rel = path.relative_to(ROOT).as_posix()
            if path.suffix not in SUFFIXES or _is_record(path):
                continue
            if "shared/data" in path.read_text(encoding="utf-8", errors="replace"):
                named.append(rel)
    assert not named, f"these name the shared/ data folder (use `memgym data get`): {named}"
