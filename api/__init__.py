"""The HTTP API: one FastAPI app mounting each service's router, with shared
authentication (bearer tokens) and the audit trail of every read of patient data."""

from api.app import create_app

__all__ = ["create_app"]
