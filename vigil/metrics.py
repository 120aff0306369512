"""The metric catalogue: one entry per measured quantity, with its codes and plausible range.

Every service agrees on metrics through this table. The wire carries the short ``name``;
storage carries the small integer ``id`` (compact rows); the FHIR API renders ``loinc``,
``mdc`` and ``ucum`` from it. Plausible ranges are physical limits of the sensor and of
human physiology, not clinical thresholds: a value outside them is a broken reading.
"""

from __future__ import annotations

from dataclasses import dataclass

LOINC = "http://loinc.org"
MDC = "urn:iso:std:iso:11073:10101"
UCUM = "http://unitsofmeasure.org"
VITAL_SIGNS_PROFILE = "http://hl7.org/fhir/StructureDefinition/vitalsigns"


@dataclass(frozen=True, slots=True)
class Coding:
    system: str
    code: str
    display: str


@dataclass(frozen=True, slots=True)
class Metric:
    id: int
    name: str
    title: str
    codings: tuple[Coding, ...]
    ucum: str
    unit: str
    low: float
    high: float
    profile: str | None
    """The FHIR vital-signs profile the Observation claims, when one applies."""

    @property
    def vital_sign(self) -> bool:
        return self.profile is not None

    def plausible(self, value: float) -> bool:
        return self.low <= value <= self.high


HEART_RATE = Metric(
    id=1,
    name="heart_rate",
    title="Heart rate (chest strap)",
    codings=(
        Coding(LOINC, "8867-4", "Heart rate"),
        Coding(MDC, "147842", "MDC_ECG_HEART_RATE"),
    ),
    ucum="/min",
    unit="beats/minute",
    low=20,
    high=300,
    profile="http://hl7.org/fhir/StructureDefinition/heartrate",
)
SPO2 = Metric(
    id=2,
    name="spo2",
    title="Oxygen saturation (pulse oximeter)",
    codings=(
        Coding(LOINC, "2708-6", "Oxygen saturation in Arterial blood"),
        Coding(LOINC, "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
        Coding(MDC, "150456", "MDC_PULS_OXIM_SAT_O2"),
    ),
    ucum="%",
    unit="%",
    low=50,
    high=100,
    profile="http://hl7.org/fhir/StructureDefinition/oxygensat",
)
PULSE_RATE = Metric(
    id=3,
    name="pulse_rate",
    title="Pulse rate (pulse oximeter)",
    codings=(
        Coding(LOINC, "8867-4", "Heart rate"),
        Coding(MDC, "149530", "MDC_PULS_OXIM_PULS_RATE"),
    ),
    ucum="/min",
    unit="beats/minute",
    low=20,
    high=300,
    profile="http://hl7.org/fhir/StructureDefinition/heartrate",
)
RR_INTERVAL = Metric(
    id=4,
    name="rr_interval",
    title="R-R interval (chest strap)",
    codings=(Coding(MDC, "147240", "MDC_ECG_TIME_PD_RR_GL"),),
    ucum="ms",
    unit="ms",
    low=200,
    high=3000,
    profile=None,
)
BATTERY = Metric(
    id=5,
    name="battery",
    title="Battery level",
    codings=(Coding(MDC, "67996", "MDC_ATTR_VAL_BATT_CHARGE"),),
    ucum="%",
    unit="%",
    low=0,
    high=100,
    profile=None,
)

CATALOGUE: tuple[Metric, ...] = (HEART_RATE, SPO2, PULSE_RATE, RR_INTERVAL, BATTERY)
BY_NAME: dict[str, Metric] = {m.name: m for m in CATALOGUE}
BY_ID: dict[int, Metric] = {m.id: m for m in CATALOGUE}


def by_code(system: str | None, code: str) -> list[Metric]:
    """Metrics carrying ``code`` (in ``system`` when given), for FHIR ``code=`` searches.

    LOINC 8867-4 matches both heart rate and the oximeter's pulse rate, as in FHIR.
    """
    return [
        m
        for m in CATALOGUE
        if any(c.code == code and (system is None or c.system == system) for c in m.codings)
    ]
