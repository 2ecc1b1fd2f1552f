"""The client's token sources, in the order the TypeScript SDK and the CLI use."""

from __future__ import annotations

import json
from pathlib import Path

from cumulus._credentials import credentials_path, read_credentials_token, resolve_token


def test_credentials_path_prefers_cumulus_credentials_then_xdg_then_home() -> None:
    assert credentials_path({"CUMULUS_CREDENTIALS": "/c", "HOME": "/h"}) == "/c"
    assert credentials_path({"XDG_CONFIG_HOME": "/x", "HOME": "/h"}) == "/x/cumulus/credentials"
    assert credentials_path({"HOME": "/h"}) == "/h/.config/cumulus/credentials"
    assert credentials_path({}) is None


def test_resolve_token_takes_the_argument_then_the_env_then_the_file(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text(json.dumps({"token": "from-file"}))
    env = {"CUMULUS_CREDENTIALS": str(path)}
    assert resolve_token(None, env) == "from-file"
    env["CUMULUS_TOKEN"] = "from-env"
    assert resolve_token(None, env) == "from-env"
    assert resolve_token("explicit", env) == "explicit"
    path.write_text("not json")
    assert read_credentials_token(str(path)) == ""
    assert read_credentials_token(str(tmp_path / "missing")) == ""
