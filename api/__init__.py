"""The HTTP API: the app (``api.app.create_app``) with its routes (``api.routes``), the
caller and the audit trail of every read of patient data, and FHIR rendering (``api.fhir``).

Importing the package imports nothing else, so `vigil` starts where FastAPI is not installed
(a gateway) and says so only if asked to serve the API."""
