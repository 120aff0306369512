"""The administrators' channel: what the deployment's administrators are told when nobody of
a care team could be told of an alert.

The team cannot act on that (it does not know), so it is an operational failure for the
people who run the service: contacts out of date, an integration down, a channel
misconfigured; and meanwhile a patient's alert that nobody has seen. The report is written
to the outbox in the transaction that finds the team unreachable (:mod:`alerts.outbox`)
and delivered, retried and kept like every notification, to the apprise URLs of
``VIGIL_ALERTS_ADMIN_URLS``. It names the alert, the patient, the team and each delivery
that failed, and no vital-sign value: an operations channel (a chat room, a pager) is no
place for clinical data, and the alert itself has it for whoever may see it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import apprise
import psycopg

from alerts.channels import send_apprise_text


def admin_urls(setting: str) -> tuple[str, ...]:
    """The administrators' apprise URLs of ``VIGIL_ALERTS_ADMIN_URLS``. One apprise cannot
    use is refused at the start, not found out when a team could not be reached; it is named
    by its place and scheme, since a URL may carry a password."""
    urls = tuple(u.strip() for u in setting.split(",") if u.strip())
    for place, url in enumerate(urls, 1):
        if not apprise.Apprise().add(url):
            scheme = url.split("://", 1)[0] if "://" in url else "no scheme"
            raise ValueError(
                f"VIGIL_ALERTS_ADMIN_URLS: URL {place} ({scheme}) is not one apprise can use;"
                " give apprise URLs (mailto://, ntfy://, slack://, json:// ...), comma-separated"
            )
    return urls


def report(conn: psycopg.Connection, alert_id: int, revision: int) -> dict[str, Any]:
    """The report of an alert whose telling ``revision`` reached nobody: as the outbox keeps
    it, complete, so that its delivery after a restart needs nothing else."""
    row = conn.execute(
        "SELECT a.patient, a.rule, a.priority, t.id, t.name FROM alert a"
        " LEFT JOIN patient_team p ON p.patient = a.patient"
        " LEFT JOIN care_team t ON t.id = p.team WHERE a.id = %s",
        (alert_id,),
    ).fetchone()
    assert row is not None
    patient, rule, priority, team, team_name = row
    failed = conn.execute(
        "SELECT channel, target, body ->> 'to', body ->> 'tier', attempts, last_error"
        " FROM notification WHERE alert = %s AND revision = %s AND audience = 'care_team'"
        " AND state = 'failed' ORDER BY id",
        (alert_id, revision),
    ).fetchall()
    return {
        "alert": alert_id,
        "revision": revision,
        "patient": patient,
        "rule": rule,
        "priority": priority,
        "team": team,
        "team_name": team_name or "",
        "failed": [
            {
                # A webhook's URL may carry a token: its host says which one it is.
                "to": member or f"webhook at {urlsplit(target).hostname}",
                "tier": int(tier) if tier else None,
                "channel": channel,
                "attempts": attempts,
                "error": error,
            }
            for channel, target, member, tier, attempts, error in failed
        ],
    }


def send_report(url: str, reports: list[dict[str, Any]], key: str) -> None:
    """One message to one administrators' contact, of one or more reports (a patient's
    alerts found unreachable together). ``key`` is the delivery's idempotency key, shown as
    its reference: apprise carries no header for it, and an administrator who gets a report
    again after a crash can tell it is the same one."""
    teams = sorted({r["team"] or "(none)" for r in reports})
    what = f"alert {reports[0]['alert']}" if len(reports) == 1 else f"{len(reports)} alerts"
    title = f"Vigil: care team {', '.join(teams)} could not be reached ({what})"
    lines = []
    for r in reports:
        team = _team(r)
        lines.append(
            f"Alert {r['alert']} ({r['priority']}, {r['rule']}) of patient {r['patient']}:"
            f" nobody of {team} could be told."
        )
        lines.extend(_failure(f) for f in r["failed"])
    lines.append(
        "Tell the team another way, then check its contacts (`vigil team member`) and"
        f" channels. Reference: {key}"
    )
    send_apprise_text(url, title, "\n".join(lines), apprise.NotifyType.FAILURE)


def _team(report: dict[str, Any]) -> str:
    if report["team"] is None:
        return "the care-team webhooks (the patient is on no team)"
    name = f" ({report['team_name']})" if report["team_name"] else ""
    return f"care team {report['team']}{name}"


def _failure(failed: dict[str, Any]) -> str:
    tier = "" if failed["tier"] is None else f" (tier {failed['tier']})"
    error = failed["error"] or "failed"
    return (
        f"- {failed['to']}{tier} by {failed['channel']}: {error},"
        f" after {failed['attempts']} attempt(s)"
    )
