"""Tell file formats apart, so that one command reads every members file.

A members file is the FSA's EDINET filer list when a cell of one of its first three
lines is the list's metadata label (``ダウンロード実行日``) or its header's
``ＥＤＩＮＥＴコード`` (compared after NFKC); any other file is a plain members CSV.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from pathlib import Path

from services.importers.common import ImportResult, ProgressCallback, read_text
from services.importers.edinet import import_members
from services.importers.members_csv import import_members_csv

logger = logging.getLogger(__name__)

EDINET_MARKS = ("ダウンロード実行日", "EDINETコード")
SNIFFED_LINES = 3


def is_edinet_list(text: str) -> bool:
    """Return whether a file's text is the EDINET filer list.

    A cell of one of its first lines, without quotes and spaces, must be a mark.
    """
    head = unicodedata.normalize("NFKC", "\n".join(text.splitlines()[:SNIFFED_LINES]))
    cells = {c.strip().strip('"').strip() for c in re.split(r"[,\t\n]", head)}
    return not cells.isdisjoint(EDINET_MARKS)


def read_members_file(
    path: Path | str,
    *,
    encoding: str | None = None,
    progress: ProgressCallback | None = None,
) -> ImportResult:
    """Read a members file: the EDINET filer list or a plain members CSV.

    Raises:
        ImporterError: if the file cannot be decoded or read (see each importer).
    """
    if is_edinet_list(read_text(path, encoding)):
        logger.info("%s is the EDINET filer list", path)
        return import_members(path, encoding=encoding, progress=progress)
    logger.info("%s is a plain members CSV", path)
    return import_members_csv(path, encoding=encoding, progress=progress)
