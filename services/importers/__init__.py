"""Importers: plain functions that turn real files into validated envelopes.

They read files only; sending the envelopes (through the API) is the CLI's job.
"""

from services.importers.attendance import (
    import_attendance_csv,
    import_conference_checkins,
)
from services.importers.common import (
    ImporterError,
    ImportResult,
    MemberRef,
    RejectedRow,
    members_from,
    read_text,
)
from services.importers.edinet import import_members
from services.importers.formats import is_edinet_list, read_members_file
from services.importers.members_csv import import_members_csv
from services.importers.toronto import import_supply_links

__all__ = [
    "ImportResult",
    "ImporterError",
    "MemberRef",
    "RejectedRow",
    "import_attendance_csv",
    "import_conference_checkins",
    "import_members",
    "import_members_csv",
    "import_supply_links",
    "is_edinet_list",
    "members_from",
    "read_members_file",
    "read_text",
]
