"""The folder the CIO report and its CSV/XLSX exports are written to."""

from __future__ import annotations

from pathlib import Path

import dagster as dg


class ReportFolderResource(dg.ConfigurableResource):
    """A folder for the report's files; created on first use. Each run replaces the files."""

    path: str

    def folder(self) -> Path:
        folder = Path(self.path)
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"the report folder {self.path!r} exists but is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        return folder
