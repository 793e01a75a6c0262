"""The landing folder where survey-tool and HR exports (and the team map) are dropped."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from assets.identity import checked_salt, employee_pseudonym
from assets.landing.item_sets import DEFAULT_SCALE_POINTS, SCALE_POINTS
from assets.landing.snapshot import ENCODINGS


class LandingFolderResource(dg.ConfigurableResource):
    """A folder of export files (PSAFE_LANDING_DIR). ``hr_id_salt`` (PSAFE_HR_ID_SALT) keys
    the hash that replaces employee ids before they reach the warehouse; keep it secret and
    stable across runs. ``scale_points`` is the surveys' Likert K, 5 or 7, unless the mapping
    file says otherwise for a file; ``export_encoding`` is ``auto`` (BOM, UTF-16 and
    Windows-1252 detected) or a fixed codec. Both are optional settings users change often:
    left unset here, they come from PSAFE_SURVEY_SCALE_POINTS and PSAFE_EXPORT_ENCODING when
    a run uses the folder, else 7 and ``auto``. A file is read only once it has not changed
    for ``settle_seconds`` (the sensor and every run apply the same rule)."""

    path: str
    hr_id_salt: str
    survey_scale_points: int | None = None
    export_encoding: str | None = None
    settle_seconds: int = 60

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        checked_salt(self.hr_id_salt, context.log.warning)

    @property
    def scale_points(self) -> int:
        """The surveys' Likert K; a value other than 5 or 7 fails here, naming the setting it
        came from (later, a file's check could name only the number)."""
        setting = ("the landing resource's survey_scale_points" if self.survey_scale_points
                   else "PSAFE_SURVEY_SCALE_POINTS")
        configured = self.survey_scale_points or os.environ.get("PSAFE_SURVEY_SCALE_POINTS") or DEFAULT_SCALE_POINTS
        try:
            points = int(configured)
        except ValueError:
            points = None
        if points not in SCALE_POINTS:
            raise ValueError(f"{setting} must be {' or '.join(map(str, SCALE_POINTS))}, not {configured!r}")
        return points

    def missing_folder(self) -> str | None:
        """Why the landing folder cannot be read, or None. Checked before any file in it is, so
        a wrong PSAFE_LANDING_DIR is not reported as a missing export or team map."""
        folder = Path(self.path)
        if folder.is_dir():
            return None
        state = "is not a folder" if folder.exists() else "does not exist"
        return (f"The landing folder {self.path} (PSAFE_LANDING_DIR) {state}: create it, or set PSAFE_LANDING_DIR "
                "to the folder the survey and HR exports and team_map.yml are dropped into.")

    @property
    def folder(self) -> Path:
        """The landing folder; a missing one fails the step at once, naming PSAFE_LANDING_DIR
        (RetryPolicy would only find it missing again)."""
        if problem := self.missing_folder():
            raise dg.Failure(description=problem, metadata={"landing": self.path}, allow_retries=False)
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
        encoding = configured or self.export_encoding or os.environ.get("PSAFE_EXPORT_ENCODING") or "auto"
        if encoding not in ENCODINGS:
            raise ValueError(f"export encoding {encoding!r} is not one of {', '.join(ENCODINGS)} "
                             "(PSAFE_EXPORT_ENCODING or the mapping file's encoding)")
        return encoding

    def pseudonymise(self, employee_id: str) -> str:
        """The hash the HR loader writes for ``employee_id``."""
        return employee_pseudonym(self.hr_id_salt, employee_id)
