"""Broker passwords hashed as Mosquitto 2's mosquitto_passwd hashes them, and stored only
hashed."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from ingest import credentials

HASH = re.compile(r"\$7\$101\$([A-Za-z0-9+/]{16})\$([A-Za-z0-9+/]{86}==)")


def test_the_hash_is_pbkdf2_sha512_in_mosquittos_form() -> None:
    line = credentials.mosquitto_hash("s3cret")
    match = HASH.fullmatch(line)
    assert match, line
    salt, digest = (base64.b64decode(part) for part in match.groups())
    assert len(salt) == 12
    assert digest == hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, 101)
    assert credentials.mosquitto_hash("s3cret") != line  # a new salt every time


def test_the_same_as_mosquitto_passwd_writes(tmp_path: Path) -> None:
    mosquitto_passwd = shutil.which("mosquitto_passwd")
    if mosquitto_passwd is None:
        pytest.skip("mosquitto_passwd is not installed (it comes with Mosquitto)")
    passwd = tmp_path / "passwd"
    subprocess.run([mosquitto_passwd, "-c", "-b", str(passwd), "gw-a", "pä ss:wörd"], check=True)
    username, theirs = passwd.read_text().strip().split(":", 1)
    match = HASH.fullmatch(theirs)
    assert username == "gw-a" and match, theirs
    assert credentials.mosquitto_hash("pä ss:wörd", base64.b64decode(match[1])) == theirs


def test_passwords_are_random_and_fit_in_a_url() -> None:
    passwords = {credentials.new_password() for _ in range(100)}
    assert len(passwords) == 100
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", p) for p in passwords)


@pytest.mark.services
def test_only_the_hash_is_stored_and_a_new_password_replaces_it(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        first = credentials.issue(conn, "gw-a", "gateway")
        (stored,) = credentials.accounts(conn)
        second = credentials.issue(conn, "gw-a", "gateway")
        (replaced,) = credentials.accounts(conn)
        rows = conn.execute("SELECT * FROM broker_account").fetchall()
    assert first != second and stored.password_hash != replaced.password_hash
    assert first not in repr(rows) and second not in repr(rows)
    salt = base64.b64decode(replaced.password_hash.split("$")[3])
    assert credentials.mosquitto_hash(second, salt) == replaced.password_hash
    assert (replaced.username, replaced.role) == ("gw-a", "gateway")
