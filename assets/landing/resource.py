"""The landing folder where survey-tool and HR exports (and the team map) are dropped."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg


class LandingFolderResource(dg.ConfigurableResource):
    """A folder of export files. ``hr_id_salt`` keys the hash that replaces employee ids
    before they reach the warehouse; keep it secret and stable across runs.
    ``survey_scale_points`` is the survey export's Likert K (5 or 7); ``export_encoding`` is
    ``auto`` (BOM, UTF-16 and Windows-1252 detected) or a fixed codec for every export."""

    path: str
    hr_id_salt: str
    survey_scale_points: int = 7
    export_encoding: str = "auto"

    def file(self, name: str) -> Path:
        path = Path(self.path) / name
        if not path.is_file():
            raise FileNotFoundError(
                f"expected export {name!r} in the landing folder {self.path!r}; found "
                f"{sorted(p.name for p in Path(self.path).glob('*')) or 'nothing'}"
            )
        return path

    def pseudonymise(self, employee_id: str) -> str:
        return hashlib.sha256(f"{self.hr_id_salt}:{employee_id}".encode()).hexdigest()[:20]
