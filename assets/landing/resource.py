"""The landing folder where survey-tool and HR exports (and the team map) are dropped."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg

from assets.landing.snapshot import ENCODINGS


class LandingFolderResource(dg.ConfigurableResource):
    """A folder of export files (PSAFE_LANDING_DIR). ``hr_id_salt`` (PSAFE_HR_ID_SALT) keys
    the hash that replaces employee ids before they reach the warehouse; keep it secret and
    stable across runs. ``survey_scale_points`` (PSAFE_SURVEY_SCALE_POINTS) is the surveys'
    Likert K, 5 or 7, unless the mapping file says otherwise for a file; ``export_encoding``
    (PSAFE_EXPORT_ENCODING) is ``auto`` (BOM, UTF-16 and Windows-1252 detected) or a fixed
    codec. A file is read only once it has not changed for ``settle_seconds`` (the sensor
    and every run apply the same rule)."""

    path: str
    hr_id_salt: str
    survey_scale_points: int = 7
    export_encoding: str = "auto"
    settle_seconds: int = 60

    @property
    def folder(self) -> Path:
        return Path(self.path)

    def file(self, name: str) -> Path:
        path = self.folder / name
        if not path.is_file():
            raise FileNotFoundError(
                f"expected {name!r} in the landing folder {self.path!r}; found "
                f"{sorted(p.name for p in self.folder.glob('*')) or 'nothing'}"
            )
        return path

    def encoding(self, configured: str | None) -> str:
        encoding = configured or self.export_encoding
        if encoding not in ENCODINGS:
            raise ValueError(f"export encoding {encoding!r} is not one of {', '.join(ENCODINGS)} "
                             "(PSAFE_EXPORT_ENCODING or the mapping file's encoding)")
        return encoding

    def pseudonymise(self, employee_id: str) -> str:
        """The hash the HR loader writes for ``employee_id`` (the same as its SQL)."""
        return hashlib.sha256(f"{self.hr_id_salt}:{employee_id}".encode()).hexdigest()[:20]
