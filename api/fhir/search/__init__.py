"""FHIR search: parameter values, the controls every search shares (count, sort, total,
summary, elements, includes, strict or lenient handling), keyset paging, and the
Observation search. Parsing only; the routes run the queries."""
