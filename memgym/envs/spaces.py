"""Unicode text spaces: Gymnasium's `Text` with its charset check lifted.

Gymnasium's `Text` rejects any character outside its charset (alphanumerics by default), which
would make every real observation - spaces, punctuation, accents - invalid. `UnicodeText` accepts
any `str` within its length bounds, while `sample()` still draws short strings from a printable
charset (letters, digits, punctuation, spaces, a few non-ASCII letters and braces) so that
`check_env` and random-action fuzzing can step environments.
"""

from __future__ import annotations

import string
from typing import Any

from gymnasium import spaces

__all__ = ["UnicodeText", "SAMPLE_CHARSET", "MAX_TEXT_LENGTH"]

SAMPLE_CHARSET = string.ascii_letters + string.digits + string.punctuation + " \n" + "éüßøçñ中文あ€"
MAX_TEXT_LENGTH = 2**31 - 1
_SAMPLE_MAX = 64


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
