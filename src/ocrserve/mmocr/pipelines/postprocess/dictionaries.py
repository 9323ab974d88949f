"""MMOCR's character dictionaries, and reading a dictionary file as MMOCR 0.x does."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ocrserve.errors import ConfigError

__all__ = ["DICT36", "DICT37", "DICT90", "DICT91", "DICTIONARIES", "load_dictionary"]

DICT36 = tuple("0123456789abcdefghijklmnopqrstuvwxyz")
DICT90 = tuple(
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!\"#$%&'()*+,-./:;<=>?@[\\]_`~"
)
#: The same with a space at the end.
DICT37 = (*DICT36, " ")
DICT91 = (*DICT90, " ")
DICTIONARIES: dict[str, tuple[str, ...]] = {
    "DICT36": DICT36,
    "DICT37": DICT37,
    "DICT90": DICT90,
    "DICT91": DICT91,
}


def load_dictionary(
    dict_type: str = "DICT90",
    dict_file: str | Path | None = None,
    dict_list: Sequence[str] | None = None,
) -> list[str]:
    """The characters, in index order: ``dict_file`` wins over ``dict_list`` over ``dict_type``.

    A dictionary file holds one character per line (UTF-8); empty lines are skipped, a line of
    more than one character is an error, as in MMOCR 0.x.
    """
    if dict_file is not None:
        try:
            # Text mode, as MMOCR reads it: universal newlines, only "\n"/"\r" stripped.
            with open(dict_file, encoding="utf-8") as f:
                lines = [line.rstrip("\n\r") for line in f]
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Cannot read the dictionary file {dict_file}: {exc}") from exc
        chars = []
        for number, line in enumerate(lines, start=1):
            if len(line) > 1:
                raise ConfigError(
                    f"Dictionary file {dict_file}: expected 0 or 1 character per line, "
                    f"got {len(line)} at line {number}"
                )
            if line:
                chars.append(line)
    elif dict_list is not None:
        chars = list(dict_list)
    elif dict_type in DICTIONARIES:
        chars = list(DICTIONARIES[dict_type])
    else:
        raise ConfigError(
            f"Unsupported dict_type {dict_type!r}; supported: {', '.join(sorted(DICTIONARIES))}"
            " (or give dict_file)"
        )
    if len(set(chars)) != len(chars):
        raise ConfigError("Invalid dictionary: it has duplicated characters")
    return chars
