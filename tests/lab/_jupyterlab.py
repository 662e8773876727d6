"""What the JupyterLab browser tests share."""

from __future__ import annotations

import json
from pathlib import Path


def quiet_settings(folder: Path) -> dict[str, str]:
    """Environment for a fresh JupyterLab settings/workspaces folder without the news and update pop-ups."""
    notification = folder / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    (folder / "workspaces").mkdir()
    return {"JUPYTERLAB_SETTINGS_DIR": str(folder / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(folder / "workspaces")}
