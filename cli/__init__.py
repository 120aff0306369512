"""The `vigil` command: a thin dispatcher over every package's own sub-commands."""
