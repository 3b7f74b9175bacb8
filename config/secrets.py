"""Find secrets written into the YAML itself, so `check-config` can warn before they leak.

Secrets belong in environment variables (or secret files mounted into them); the config names the
variable. The scan reports key paths only, never the values.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

KNOWN_TOKEN = re.compile(
    r"^(?:xox[abposr]-|xapp-|sk-[A-Za-z0-9_-]{16,}|gh[pousr]_|github_pat_|AKIA[0-9A-Z]{16}$"
    r"|AAAAAAAAAAAAAAAAAAAAA|Bearer\s|glpat-|AIza[0-9A-Za-z_-]{30,})"
)
SECRET_KEY = re.compile(r"(?i)(?:token|secret|password|passwd|api_?key|bearer|credential)s?$")
ENV_VAR_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
MIN_OPAQUE_LENGTH = 32
MIN_ENTROPY_BITS = 3.5


def _looks_opaque(value: str) -> bool:
    """Long, space-free and high-entropy: the shape of a key, not of a word or a URL."""
    if len(value) < MIN_OPAQUE_LENGTH or " " in value or value.startswith(("http", "/", ".")):
        return False
    counts = Counter(value)
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return entropy >= MIN_ENTROPY_BITS


def _suspicious(key: str, value: str) -> bool:
    if ENV_VAR_NAME.match(value):
        return False  # the name of a variable: the right way
    if KNOWN_TOKEN.match(value):
        return True
    return bool(SECRET_KEY.search(key)) or _looks_opaque(value)


def find_secrets(data: Any, path: str = "") -> list[str]:
    """Key paths (like `sources[0].credentials.bearer_token`) whose values look like secrets."""
    found: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(value, str):
                if _suspicious(str(key), value):
                    found.append(child)
            else:
                found += find_secrets(value, child)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            child = f"{path}[{index}]"
            if isinstance(value, str):
                if KNOWN_TOKEN.match(value) or _looks_opaque(value):
                    found.append(child)
            else:
                found += find_secrets(value, child)
    return found


def secret_warnings(data: Any, file: str) -> list[str]:
    return [
        f"{file}: {path}: this looks like a secret written in the file; put it in an"
        " environment variable and write the variable's name here instead (for example"
        " X_BEARER_TOKEN). The value is not shown."
        for path in find_secrets(data)
    ]
