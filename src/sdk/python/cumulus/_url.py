"""Orchestrator address parsing (the same rules as the TypeScript SDK's ``url.ts``)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Tuple

from cumulus._credentials import user_config_dir
from cumulus.errors import InvalidUrlError

#: Address used when neither an argument nor CUMULUS_ORCHESTRATOR_URL gives one.
DEFAULT_ORCHESTRATOR_URL = "127.0.0.1:50051"
#: Port used when an address names none.
DEFAULT_ORCHESTRATOR_PORT = 50051
#: Port used by ``https://`` addresses that name none.
DEFAULT_HTTPS_PORT = 443

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_HOST = re.compile(r"^[A-Za-z0-9.\-_]+$")
_LOOPBACK = ("localhost", "127.", "[::1]")


@dataclass(frozen=True)
class Endpoint:
    """A parsed orchestrator address."""

    #: ``host:port`` as grpc dials it.
    target: str
    #: The host alone (IPv6 in brackets): the name the server certificate must carry.
    host: str
    #: True for ``grpcs://`` and ``https://``: the channel is TLS.
    tls: bool


def parse_orchestrator_url(url: str) -> str:
    """Turn ``host:port``, ``grpc://host:port``, ``[::1]:port`` or a bare host into ``host:port``.

    ``grpcs://`` and ``https://`` addresses are accepted too (see
    :func:`parse_orchestrator_endpoint`, which keeps the scheme's TLS flag).
    Raises :class:`~cumulus.errors.InvalidUrlError` naming what is wrong.

    >>> parse_orchestrator_url("grpc://10.0.0.5:7000")
    '10.0.0.5:7000'
    >>> parse_orchestrator_url("gpu-box")
    'gpu-box:50051'
    """
    return parse_orchestrator_endpoint(url).target


def parse_orchestrator_endpoint(url: str) -> Endpoint:
    """Parse an address: ``host:port``/``grpc://`` (plaintext), ``grpcs://`` or ``https://`` (TLS).

    ``https://`` without a port means 443; every other form means 50051.
    Raises :class:`~cumulus.errors.InvalidUrlError` naming what is wrong.

    >>> parse_orchestrator_endpoint("grpcs://gpu-box")
    Endpoint(target='gpu-box:50051', host='gpu-box', tls=True)
    """
    if not isinstance(url, str):
        raise InvalidUrlError(f"orchestrator URL must be a string, got {type(url).__name__}")
    rest = url.strip()
    if not rest:
        raise InvalidUrlError("invalid orchestrator URL '': empty")
    tls = False
    default_port = DEFAULT_ORCHESTRATOR_PORT
    scheme = _SCHEME.match(rest)
    if scheme:
        name = scheme.group(1).lower()
        if name in ("grpcs", "https"):
            tls = True
            if name == "https":
                default_port = DEFAULT_HTTPS_PORT
        elif name != "grpc":
            raise _bad(
                url,
                f"unsupported scheme {scheme.group(1)}:// (use host:port, grpc://, grpcs:// or https://)",
            )
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
        return Endpoint(f"{host}:{default_port}", host, tls)
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise _bad(url, f"invalid port {port!r}")
    return Endpoint(f"{host}:{int(port)}", host, tls)


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


def up_endpoint(env: Mapping[str, str]) -> Optional[Tuple[str, str]]:
    """``(url, ca_file)`` that ``cumulus up`` recorded for clients on this machine, or ``None``.

    The record is ``up.json`` in ``CUMULUS_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/cumulus``,
    else ``~/.config/cumulus`` (the CLI reads the same file); one whose CA file is gone
    counts as none.
    """
    directory = env.get("CUMULUS_CONFIG_DIR", "").strip() or user_config_dir(env)
    if not directory:
        return None
    path = os.path.join(directory, "up.json")
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
        url, ca_file = record["url"], record["caFile"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(url, str) or not isinstance(ca_file, str) or not os.path.isfile(ca_file):
        return None
    return url, ca_file


def default_orchestrator_url(env: Mapping[str, str]) -> str:
    """``CUMULUS_ORCHESTRATOR_URL`` from ``env`` when set, else the orchestrator ``cumulus up``
    recorded (see :func:`up_endpoint`), else :data:`DEFAULT_ORCHESTRATOR_URL`."""
    value = env.get("CUMULUS_ORCHESTRATOR_URL", "").strip()
    if value:
        return value
    up = up_endpoint(env)
    return up[0] if up else DEFAULT_ORCHESTRATOR_URL


def default_ca_pem(env: Mapping[str, str]) -> Optional[bytes]:
    """The CA to verify a TLS orchestrator against: ``CUMULUS_CA_PEM`` (the PEM itself, as the
    orchestrator gives its jobs), else the file ``CUMULUS_CA_FILE`` names, else the CA
    ``cumulus up`` recorded, else ``None`` (the system store). Raises ``OSError`` when the
    named file cannot be read."""
    pem = env.get("CUMULUS_CA_PEM", "").strip()
    if pem:
        return pem.encode()
    path = env.get("CUMULUS_CA_FILE", "").strip()
    if not path:
        up = up_endpoint(env)
        path = up[1] if up else ""
    if path:
        with open(path, "rb") as f:
            return f.read()
    return None


def new_channel(target: str, tls: bool, options: Sequence[Tuple[str, Any]], ca_pem: Optional[bytes] = None) -> Any:
    """A grpc channel to ``target`` (``host:port``): TLS verified against ``ca_pem`` (``None``:
    the system store) when ``tls``, plaintext otherwise."""
    import grpc

    if not tls:
        return grpc.insecure_channel(target, options=list(options))
    creds = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    return grpc.secure_channel(target, creds, options=list(options))


def grpc_target(url: str) -> str:
    """``host:port`` of an address as a job gets it (``CUMULUS_ORCHESTRATOR_URL``): the scheme
    (``grpc://``, ``http://``, ``grpcs://``, ``https://``) and a trailing slash dropped."""
    for scheme in ("grpc://", "http://", "grpcs://", "https://"):
        if url.startswith(scheme):
            return url[len(scheme):].rstrip("/")
    return url


def is_tls_url(url: str) -> bool:
    """True when ``url`` names a TLS scheme (``grpcs://`` or ``https://``)."""
    return url.strip().lower().startswith(("grpcs://", "https://"))


def is_loopback(target: str) -> bool:
    """True for ``localhost``/``127.x``/``[::1]`` targets (reached without any proxy)."""
    return target.startswith(_LOOPBACK)
