"""Orchestrator address parsing (the same rules as the TypeScript SDK's ``url.ts``)."""

from __future__ import annotations

import re
from typing import Mapping, Optional, Tuple

from cumulus.errors import InvalidUrlError

#: Address used when neither an argument nor CUMULUS_ORCHESTRATOR_URL gives one.
DEFAULT_ORCHESTRATOR_URL = "127.0.0.1:50051"
#: Port used when an address names none.
DEFAULT_ORCHESTRATOR_PORT = 50051

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_HOST = re.compile(r"^[A-Za-z0-9.\-_]+$")
_LOOPBACK = ("localhost", "127.", "[::1]")


def parse_orchestrator_url(url: str) -> str:
    """Turn ``host:port``, ``grpc://host:port``, ``[::1]:port`` or a bare host into ``host:port``.

    Raises :class:`~cumulus.errors.InvalidUrlError` naming what is wrong.

    >>> parse_orchestrator_url("grpc://10.0.0.5:7000")
    '10.0.0.5:7000'
    >>> parse_orchestrator_url("gpu-box")
    'gpu-box:50051'
    """
    if not isinstance(url, str):
        raise InvalidUrlError(f"orchestrator URL must be a string, got {type(url).__name__}")
    rest = url.strip()
    if not rest:
        raise InvalidUrlError("invalid orchestrator URL '': empty")
    scheme = _SCHEME.match(rest)
    if scheme:
        if scheme.group(1).lower() != "grpc":
            raise _bad(url, f"unsupported scheme {scheme.group(1)}:// (use host:port or grpc://)")
        rest = rest[scheme.end():]
    # A trailing slash is common when pasting URLs; a real path is not supported.
    if rest.endswith("/"):
        rest = rest[:-1]
    if any(c in rest for c in "/?#@"):
        raise _bad(url, "expected host:port")
    host, port = _split(url, rest)
    if host in ("", "[]"):
        raise _bad(url, "missing host")
    if not host.startswith("[") and not _HOST.match(host):
        raise _bad(url, f"invalid host {host!r}")
    if port is None:
        return f"{host}:{DEFAULT_ORCHESTRATOR_PORT}"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise _bad(url, f"invalid port {port!r}")
    return f"{host}:{int(port)}"


def _split(url: str, rest: str) -> Tuple[str, Optional[str]]:
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise _bad(url, "unterminated IPv6 address")
        after = rest[end + 1:]
        if after and not after.startswith(":"):
            raise _bad(url, "expected host:port")
        return rest[: end + 1], (after[1:] if after else None)
    parts = rest.split(":")
    if len(parts) > 2:
        raise _bad(url, "put IPv6 addresses in brackets")
    return parts[0], (parts[1] if len(parts) == 2 else None)


def _bad(url: str, why: str) -> InvalidUrlError:
    return InvalidUrlError(f"invalid orchestrator URL {url!r}: {why}")


def default_orchestrator_url(env: Mapping[str, str]) -> str:
    """``CUMULUS_ORCHESTRATOR_URL`` from ``env`` when set, else :data:`DEFAULT_ORCHESTRATOR_URL`."""
    value = env.get("CUMULUS_ORCHESTRATOR_URL", "").strip()
    return value or DEFAULT_ORCHESTRATOR_URL


def is_loopback(target: str) -> bool:
    """True for ``localhost``/``127.x``/``[::1]`` targets (reached without any proxy)."""
    return target.startswith(_LOOPBACK)
