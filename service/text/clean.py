"""Characters that are never text: removed wherever text enters langdu."""

from __future__ import annotations

import re

# C0 controls but tab, newline and carriage return; DEL; C1 controls; lone surrogates;
# the noncharacters U+FFFE/U+FFFF. None of them is text, and XML 1.0 forbids most of them.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def clean_text(text: str) -> str:
    """The text without control characters, lone surrogates and noncharacters."""
    return CONTROL.sub("", text)
