"""The README's settings table must list every setting, and only those."""

import re
from pathlib import Path

from vigil.settings import Settings


def test_settings_table_matches_the_code() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    documented = set(re.findall(r"^\| `(VIGIL_[A-Z0-9_]+)` \|", readme, flags=re.M))
    assert documented == {f"VIGIL_{name.upper()}" for name in Settings.model_fields}
