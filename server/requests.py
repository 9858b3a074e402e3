"""AIP-155 request ids: the first response to a request_id is kept and replayed
for `request_log_retention_seconds` (a day by default); a background loop
(flowdeck.server.loops) prunes older entries, so the table stays bounded."""
from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.orm import Session

from flowdeck.core.errors import invalid_field
from flowdeck.server.models import RequestLogRow, utcnow

def check_request_id(request_id: str) -> str:
    """The request_id in canonical form ("" when not given): every spelling
    uuid.UUID accepts ("{...}", no dashes, upper case) names the same request."""
    if not request_id:
        return ""
    try:
        return str(uuid.UUID(request_id))
    except ValueError:
        raise invalid_field("request_id", request_id, "must be a UUID", reason="INVALID_REQUEST_ID") from None


# Prebuilt Core statements: on every mutating call with a request_id.
_T = RequestLogRow.__table__
_FIND = select(_T.c.response).where(_T.c.method == bindparam("method"), _T.c.request_id == bindparam("request_id"))
_SAVE = insert(_T)


def find(s: Session, method: str, request_id: str) -> bytes | None:
    return s.connection().execute(_FIND, {"method": method, "request_id": request_id}).scalar()


def save(s: Session, method: str, request_id: str, response: bytes) -> None:
    # Inserted at once (a duplicate raises IntegrityError here, in the transaction).
    s.connection().execute(_SAVE, {"method": method, "request_id": request_id, "response": response,
                                   "created": utcnow()})


def prune(s: Session, retention_seconds: float, now: dt.datetime | None = None) -> int:
    """Forget the responses kept longer than the retention window; returns how many."""
    cutoff = (now or utcnow()) - dt.timedelta(seconds=retention_seconds)
    return s.execute(delete(RequestLogRow).where(RequestLogRow.created < cutoff)).rowcount
