"""Mosquitto's ``password_file`` and ``acl_file``, written from the broker accounts.

Every right follows from the topics in :mod:`vigil.wire.topics` and what each process does
on them. A gateway writes only its own readings, status and devices (both retained, status
also as its will) and reads only its own inbox and commitments: it can neither speak on
another gateway's topics nor write a message into its own inbox. Ingest reads every
gateway's readings, status and devices (for the device registry) and writes their
commitments; analytics reads the readings and writes patients' events; alerts reads the
events and writes gateways' inboxes; a monitor (the operator's dashboards, the tests) reads
the retained status of services and gateways.
Each service writes its own retained status, ``vigil/v1/svc/{username}/status``: with
``use_username_as_clientid`` the username is the client id the status topic is named after.
Anything not granted is refused, anonymous clients included (``allow_anonymous false``).

Both files are replaced atomically, so a broker reloading (SIGHUP) reads the old file or
the new one, never half of one, and they keep the mode and owner they had: the broker's
own user must be able to read them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from ingest.credentials import Account, Role
from vigil.wire.topics import ALL, EVENTS, Topics, service_status

Right = tuple[Literal["read", "write"], str]

ACL_HEADER = """\
# Mosquitto acl_file for Vigil, written by `vigil enroll` from its database: edits here are
# lost at the next enrollment (`vigil enroll --write-broker-files` writes it again).
# Each user may do only what is listed under it; the config refuses anonymous clients.
"""


def rights(role: Role, username: str) -> list[Right]:
    """What an account of ``role`` may read and write."""
    if role == "gateway":
        own = Topics(username)
        return [
            ("write", own.readings),
            ("write", own.status),
            ("write", own.devices),
            ("read", own.inbox),
            ("read", own.committed),
        ]
    if role == "monitor":
        return [("read", service_status("+")), ("read", ALL.status), ("read", ALL.devices)]
    uses: dict[Role, list[Right]] = {
        "ingest": [
            ("read", ALL.readings),
            ("read", ALL.status),
            ("read", ALL.devices),
            ("write", ALL.committed),
        ],
        "analytics": [("read", ALL.readings), ("write", EVENTS)],
        "alerts": [("read", EVENTS), ("write", ALL.inbox)],
    }
    return [*uses[role], ("write", service_status(username))]


def password_file(accounts: Iterable[Account]) -> str:
    return "".join(f"{a.username}:{a.password_hash}\n" for a in accounts)


def acl_file(accounts: Iterable[Account]) -> str:
    blocks = [ACL_HEADER]
    for account in accounts:
        lines = [f"# {account.role}", f"user {account.username}"]
        lines += [
            f"topic {access} {topic}" for access, topic in rights(account.role, account.username)
        ]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def write(path: Path, text: str) -> bool:
    """Replace ``path`` with ``text`` atomically, keeping an existing file's mode and owner;
    a new file is readable by its owner only. Returns whether the file is new."""
    try:
        before: os.stat_result | None = path.stat()
    except FileNotFoundError:
        before = None
    temporary = path.with_name(f".{path.name}.vigil-tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        if before is not None:
            os.chmod(temporary, stat.S_IMODE(before.st_mode))
            if (before.st_uid, before.st_gid) != (os.getuid(), os.getgid()):
                os.chown(temporary, before.st_uid, before.st_gid)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return before is None


def reload_broker(pid: int) -> None:
    """Mosquitto reads its password and ACL files again on SIGHUP."""
    os.kill(pid, signal.SIGHUP)
