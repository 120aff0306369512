from vigil.metrics import BY_ID, BY_NAME, CATALOGUE, LOINC, MDC, SPO2, by_code


def codes(name: str, system: str) -> set[str]:
    return {c.code for c in BY_NAME[name].codings if c.system == system}


def test_catalogue_codes_follow_the_design() -> None:
    assert codes("heart_rate", LOINC) == {"8867-4"} and codes("heart_rate", MDC) == {"147842"}
    assert codes("spo2", LOINC) == {"2708-6", "59408-5"} and codes("spo2", MDC) == {"150456"}
    assert codes("pulse_rate", MDC) == {"149530"}  # not 149546, the cuff's pulse
    assert BY_NAME["heart_rate"].ucum == "/min" and SPO2.ucum == "%"
    assert BY_NAME["rr_interval"].ucum == "ms"


def test_ids_and_names_are_unique() -> None:
    assert len(BY_ID) == len(BY_NAME) == len(CATALOGUE)


def test_plausible_ranges() -> None:
    assert SPO2.plausible(97) and not SPO2.plausible(101) and not SPO2.plausible(10)


def test_code_search_matches_like_fhir() -> None:
    assert {m.name for m in by_code(LOINC, "8867-4")} == {"heart_rate", "pulse_rate"}
    assert [m.name for m in by_code(None, "59408-5")] == ["spo2"]
    assert by_code(MDC, "8867-4") == []
