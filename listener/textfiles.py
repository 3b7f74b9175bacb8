"""Reading line-per-record text files (JSONL, UMSAB's text and label files) as their writers meant.

`str.splitlines` also breaks at U+2028, U+2029, U+0085 and form feeds, which tweets carry inside a
text and `json.dumps(..., ensure_ascii=False)` writes raw: one mention would become two broken
lines, and a UMSAB text file would hold more texts than its labels. Records end at "\\n" (or
"\\r\\n") only, and a byte-order mark (Excel and Notepad write one) is no part of the first record.
"""

from __future__ import annotations

from pathlib import Path


class TextFileError(ValueError):
    """A file that is not UTF-8 text, said with where (`line`, the first bad `byte`) and how to
    fix it (`problem`: the message without the file's name)."""

    def __init__(self, path: Path, line: int, byte: int) -> None:
        self.line, self.byte = line, byte
        self.problem = f"not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8"
        super().__init__(f"{path} line {line}: {self.problem}")


def read_text(path: Path) -> str:
    """The UTF-8 text of `path`, without a byte-order mark."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise TextFileError(path, line, error.object[error.start]) from None


def read_lines(path: Path) -> list[str]:
    """The lines of the UTF-8 text file `path`, without their line ends; a final line end opens
    no empty line."""
    lines = read_text(path).split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]
