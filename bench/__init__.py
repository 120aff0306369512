"""`vigil bench ...`: benchmarks whose last printed line is one JSON object of figures."""
