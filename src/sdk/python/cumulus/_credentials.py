"""Where clients find their user token.

An explicit ``token=``, else ``CUMULUS_TOKEN``, else the credentials file that
``cumulus login`` and ``cumulus up`` write: ``CUMULUS_CREDENTIALS``, else
``$XDG_CONFIG_HOME/cumulus/credentials``, else ``~/.config/cumulus/credentials``
(JSON ``{"token": "..."}``, mode 0600). The same order as the TypeScript SDK
and the CLI (src/sdk/credentials.ts).
"""

from __future__ import annotations

import json
from typing import Mapping, Optional

__all__ = ["credentials_path", "read_credentials_token", "resolve_token", "user_config_dir"]


def user_config_dir(environ: Mapping[str, str]) -> Optional[str]:
    """The user's Cumulus config directory: ``$XDG_CONFIG_HOME/cumulus``, else
    ``~/.config/cumulus``; None when no home is known. The credentials file and
    ``cumulus up``'s record (:func:`cumulus._url.up_endpoint`) live there by default."""
    xdg = (environ.get("XDG_CONFIG_HOME") or "").strip()
    if xdg:
        return f"{xdg}/cumulus"
    home = (environ.get("HOME") or "").strip()
    return f"{home}/.config/cumulus" if home else None


def credentials_path(environ: Mapping[str, str]) -> Optional[str]:
    """The credentials file's path, or None when no home is known."""
    explicit = environ.get("CUMULUS_CREDENTIALS")
    if explicit:
        return explicit
    directory = user_config_dir(environ)
    return f"{directory}/credentials" if directory else None


def read_credentials_token(path: Optional[str]) -> str:
    """The token in the credentials file at ``path``, or "" when there is none."""
    if not path:
        return ""
    try:
        with open(path, encoding="utf-8") as f:
            parsed = json.load(f)
    except (OSError, ValueError):
        return ""
    token = parsed.get("token") if isinstance(parsed, dict) else None
    return token.strip() if isinstance(token, str) else ""


def resolve_token(explicit: Optional[str], environ: Mapping[str, str]) -> str:
    """The token a client sends: ``explicit``, else ``CUMULUS_TOKEN``, else the file's; "" when none."""
    if explicit:
        return explicit
    from_env = (environ.get("CUMULUS_TOKEN") or "").strip()
    if from_env:
        return from_env
    return read_credentials_token(credentials_path(environ))
