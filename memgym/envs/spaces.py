"""Unicode text spaces: Gymnasium's `Text` with its charset check lifted and honest length bounds.

Gymnasium's `Text` rejects any character outside its charset (alphanumerics by default), which
would make every real observation - spaces, punctuation, accents - invalid. `UnicodeText` accepts
any `str` within its length bounds, while `sample()` still draws short strings from a printable
charset (letters, digits, punctuation, spaces, a few non-ASCII letters and braces) so that
`check_env` and random-action fuzzing can step environments.

Gymnasium flattens a `Text` into `max_length` charset indexes, and `AsyncVectorEnv` reserves that
many int32 per field and env in shared memory; so the bounds must be honest, not 2^31 (which
reserved 8 GB per field). memgym envs derive them from their budgets (`chars_for_tokens`), and
`UnicodeText` flattens to Unicode code points (padding -1), so any character survives the trip
through shared memory. Gymnasium (1.4) reads a Text's shared memory once, at construction, into
immutable strings, so every later observation would read as the first; `UnicodeText` reads it
as `SharedTexts`, a live view decoded on access (as Gymnasium's Box views are live), which
`deepcopy` - what AsyncVectorEnv returns by default - turns into a plain tuple of strings.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.spaces.utils import flatten, flatten_space, unflatten
from gymnasium.vector.utils.shared_memory import (
    read_from_shared_memory,
    write_to_shared_memory,
)

__all__ = ["UnicodeText", "SharedTexts", "SAMPLE_CHARSET", "MAX_TEXT_LENGTH", "CHARS_PER_TOKEN",
           "chars_for_tokens"]

SAMPLE_CHARSET = string.ascii_letters + string.digits + string.punctuation + " \n" + "éüßøçñ中文あ€"
MAX_TEXT_LENGTH = 2**20
"""The default bound of a UnicodeText: 1 Mi characters (4 MiB when flattened)."""
CHARS_PER_TOKEN = 16
"""Characters allowed per budgeted token when a token budget becomes a character bound. English
text averages about 5 characters per word token (measured on the bundled HotpotQA chunks: 5.0,
at most 5.4 per chunk) and about 4 per BPE token, so real text never reaches it; a pathological
"token" (a 1 MB string without spaces is one word) is cut there."""
_SAMPLE_MAX = 64
_PAD = -1
_MAX_CODE_POINT = 0x10FFFF


def chars_for_tokens(tokens: int) -> int:
    """The character bound of a text budgeted at `tokens` tokens (`tokens * CHARS_PER_TOKEN`)."""
    return max(1, int(tokens)) * CHARS_PER_TOKEN


class UnicodeText(spaces.Text):
    """A text space that contains every Unicode string of `min_length..max_length` characters."""

    def __init__(self, max_length: int = MAX_TEXT_LENGTH, *, min_length: int = 0,
                 seed: int | None = None):
        super().__init__(max_length, min_length=min_length, charset=SAMPLE_CHARSET, seed=seed)

    def contains(self, x: Any) -> bool:
        """True for any `str` whose length lies within the bounds, whatever its characters."""
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        """A random string from SAMPLE_CHARSET, at most 64 characters unless a mask sets the length."""
        if mask is None and probability is None:
            high = min(self.max_length, self.min_length + _SAMPLE_MAX)
            length = int(self.np_random.integers(self.min_length, high + 1))
            picks = self.np_random.integers(0, len(self._char_list), size=length)
            return "".join(self._char_list[i] for i in picks)
        return super().sample(mask=mask, probability=probability)

    def __repr__(self) -> str:
        return f"UnicodeText({self.min_length}, {self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return (isinstance(other, UnicodeText) and self.min_length == other.min_length
                and self.max_length == other.max_length)


# -- flattening to code points (used by AsyncVectorEnv's shared memory) -----------------------------
def _encode(space: UnicodeText, text: str) -> np.ndarray:
    if len(text) > space.max_length:
        raise ValueError(f"a {len(text)}-character string does not fit {space!r}")
    out = np.full(space.max_length, _PAD, dtype=np.int32)
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    out[: len(codes)] = codes
    return out


def _decode(space: UnicodeText, values: np.ndarray) -> str:
    codes = np.asarray(values, dtype=np.int32)
    codes = codes[codes != _PAD].astype(np.uint32)
    return codes.tobytes().decode("utf-32-le", "surrogatepass")


@flatten.register(UnicodeText)
def _flatten_unicode(space: UnicodeText, x: str) -> np.ndarray:
    return _encode(space, x)


@unflatten.register(UnicodeText)
def _unflatten_unicode(space: UnicodeText, x: np.ndarray) -> str:
    return _decode(space, x)


@flatten_space.register(UnicodeText)
def _flatten_unicode_space(space: UnicodeText) -> spaces.Box:
    return spaces.Box(low=_PAD, high=_MAX_CODE_POINT, shape=(space.max_length,), dtype=np.int32)


@write_to_shared_memory.register(UnicodeText)
def _write_unicode(space: UnicodeText, index: int, values: str, shared_memory: Any) -> None:
    size = space.max_length
    destination = np.frombuffer(shared_memory.get_obj(), dtype=np.int32)
    np.copyto(destination[index * size:(index + 1) * size], _encode(space, values))


class SharedTexts(Sequence):
    """A live view of the `n` strings of one text field in AsyncVectorEnv's shared memory.

    Each access decodes the current contents; `deepcopy` gives a plain tuple of strings.
    """

    def __init__(self, space: UnicodeText, data: np.ndarray):
        self._space, self._data = space, data  # data: [n, max_length] int32 view

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return tuple(self)[index]
        return _decode(self._space, self._data[index])

    def __deepcopy__(self, memo: dict) -> tuple[str, ...]:
        return tuple(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    def __repr__(self) -> str:
        return f"SharedTexts({tuple(self)!r})"


@read_from_shared_memory.register(UnicodeText)
def _read_unicode(space: UnicodeText, shared_memory: Any, n: int = 1) -> SharedTexts:
    data = np.frombuffer(shared_memory.get_obj(), dtype=np.int32).reshape((n, space.max_length))
    return SharedTexts(space, data)
