"""FHIR R4: one module per resource's rendering (pure code over stored rows), the searchset
Bundle, search parameters, errors as OperationOutcome, and the CapabilityStatement made
from the routes that are registered."""
