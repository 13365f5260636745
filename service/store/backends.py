"""Backends chosen by a URL's scheme: `<package>.<scheme>` is the module that implements it."""

from __future__ import annotations

import importlib
import re
from types import ModuleType
from urllib.parse import urlparse

from service.errors import ConfigError

_SCHEME = re.compile(r"^[a-z][a-z0-9]*$")


def backend_module(package: str, url: str, *, what: str, example: str) -> ModuleType:
    """The module of `package` named after the URL's scheme (sqlite://... -> .sqlite).

    Raises:
        ConfigError: a malformed URL, or no module for its scheme.
    """
    scheme = urlparse(url).scheme
    if not _SCHEME.match(scheme):
        raise ConfigError(f"malformed {what} URL {url!r} (like {example})")
    name = f"{package}.{scheme}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise ConfigError(f"unsupported {what} URL {scheme}://... (like {example})") from None
