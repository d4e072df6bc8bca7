"""Synthetic breast-cancer registries of the three demo hospitals.

All values come from one seeded NumPy generator, so a (hospital, size, seed) triple always yields
the same table. The data are plausible, not real: each hospital has its own stage mix; tumour size,
grade, receptors, Ki-67 and treatment depend on stage and grade; survival follows exponential
hazards by stage (scaled by age, grade and ER status), censored at the data cut-off or on loss to
follow-up.
Direct identifiers (name, RRN, phone, MRN) are synthetic but well-formed, so the data broker and
the PII scanner meet realistic values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from privacy.identifiers.korea import RRN_WEIGHTS, rrn_sex_digit

DIAGNOSIS_START: Final = date(2010, 1, 1)
DIAGNOSIS_END: Final = date(2024, 12, 31)
#: Data cut-off: survival is censored here for patients alive and in follow-up.
DATA_CUTOFF: Final = date(2025, 6, 30)
#: ``survival_months`` counts whole average Gregorian months of this many days.
DAYS_PER_MONTH: Final = 365.2425 / 12
MAX_SURVIVAL_MONTHS: Final = math.floor((DATA_CUTOFF - DIAGNOSIS_START).days / DAYS_PER_MONTH)
AGE_BOUNDS: Final = (20, 95)
TUMOR_SIZE_BOUNDS_MM: Final = (0.0, 150.0)
KI67_BOUNDS_PCT: Final = (0.0, 100.0)

SEXES: Final = ("F", "M")
STAGES: Final = ("0", "I", "II", "III", "IV")
GRADES: Final = ("1", "2", "3")
RECEPTOR_STATUSES: Final = ("positive", "negative")
TREATMENTS: Final = (
    "surgery",
    "surgery+radiation",
    "surgery+chemo",
    "surgery+chemo+radiation",
    "neoadjuvant+surgery",
    "palliative",
)
VITAL_STATUSES: Final = ("alive", "deceased")

MALE_SHARE: Final = 0.01
#: Share of foreign residents, whose registration numbers use sex digits 5 to 8.
FOREIGN_SHARE: Final = 0.01
MRN_DIGITS: Final = 8

StageWeights = tuple[float, float, float, float, float]


@dataclass(frozen=True, slots=True)
class HospitalSpec:
    """A demo hospital: its custodian organisation, registry data set and case mix."""

    org_id: str
    name: str
    dataset_id: str
    mrn_prefix: str
    n_patients: int
    seed: int
    #: Relative frequency of stages 0, I, II, III, IV at diagnosis.
    stage_weights: StageWeights
    #: Custodian approvals an egress request touching this registry needs.
    egress_reviews: int = 1


HOSPITALS: Final = (
    # Screening-heavy centre: many early cancers.
    HospitalSpec(
        org_id="hanbit-cancer-center",
        name="Hanbit Cancer Center",
        dataset_id="hanbit_registry",
        mrn_prefix="HB",
        n_patients=30_000,
        seed=20_100_101,
        stage_weights=(0.20, 0.42, 0.27, 0.08, 0.03),
        # Two independent reviewers (the demo's second Hanbit custodian makes this possible).
        egress_reviews=2,
    ),
    # Tertiary referral hospital.
    HospitalSpec(
        org_id="dasom-university-hospital",
        name="Dasom University Hospital",
        dataset_id="dasom_registry",
        mrn_prefix="DS",
        n_patients=20_000,
        seed=20_100_202,
        stage_weights=(0.13, 0.35, 0.32, 0.14, 0.06),
    ),
    # Oncology institute that receives advanced and neoadjuvant cases.
    HospitalSpec(
        org_id="mirae-oncology-institute",
        name="Mirae Oncology Institute",
        dataset_id="mirae_registry",
        mrn_prefix="MR",
        n_patients=25_000,
        seed=20_100_303,
        stage_weights=(0.09, 0.29, 0.34, 0.19, 0.09),
    ),
)

# Approximate shares (%) of Korean family names in the 2015 census; the tail is truncated.
_FAMILY_NAMES: Final = (
    ("김", 21.5), ("이", 14.7), ("박", 8.4), ("최", 4.7), ("정", 4.3), ("강", 2.4), ("조", 2.1),
    ("윤", 2.1), ("장", 2.0), ("임", 1.7), ("한", 1.5), ("오", 1.5), ("서", 1.5), ("신", 1.5),
    ("권", 1.4), ("황", 1.4), ("안", 1.3), ("송", 1.3), ("류", 1.2), ("전", 1.1), ("홍", 1.1),
    ("고", 0.9), ("문", 0.9), ("양", 0.9), ("손", 0.9), ("배", 0.8), ("백", 0.8), ("허", 0.7),
    ("유", 0.6), ("남", 0.6), ("심", 0.5), ("노", 0.4), ("하", 0.4), ("곽", 0.4), ("성", 0.4),
    ("차", 0.4), ("주", 0.4), ("우", 0.4), ("구", 0.4), ("민", 0.3), ("진", 0.3), ("나", 0.3),
    ("지", 0.3), ("엄", 0.3), ("채", 0.3), ("원", 0.3), ("천", 0.2), ("방", 0.2), ("공", 0.2),
    ("현", 0.2), ("함", 0.2), ("변", 0.2), ("염", 0.2), ("여", 0.2), ("추", 0.1), ("도", 0.1),
    ("소", 0.1), ("석", 0.1), ("선", 0.1), ("설", 0.1), ("마", 0.1), ("길", 0.1), ("연", 0.1),
    ("위", 0.1), ("표", 0.1), ("명", 0.1), ("기", 0.1), ("반", 0.1), ("남궁", 0.04),
    ("황보", 0.02), ("제갈", 0.01), ("선우", 0.01),
)  # fmt: skip

# Given-name syllable pools (first, second syllable) by sex and birth cohort (before/from 1970):
# older women are often 영숙 or 순자, younger ones 지은 or 서연.
_GIVEN_NAME_SYLLABLES: Final = {
    ("F", "older"): ("영순정미경명옥춘은혜현선금말", "숙자희순옥애란미경화선남임"),
    ("F", "younger"): ("지수서민은혜유현소하예윤다나아채진", "영은현진연희아민윤정경지주원빈"),
    ("M", "older"): ("영정성상동종재광병진창용", "수호철식일석환길남근기훈"),
    ("M", "younger"): ("민준지현성동재승상우태정", "준호우훈민혁수석진원빈현"),
}
_YOUNGER_COHORT_FROM: Final = 1970

# Clinical model; rows follow STAGES, GRADES or TREATMENTS.
_TUMOR_SIZE_MEDIAN_MM: Final = np.array([12.0, 14.0, 27.0, 45.0, 50.0])
_TUMOR_SIZE_LOG_SD: Final = np.array([0.60, 0.40, 0.35, 0.45, 0.50])
_GRADE_BY_STAGE: Final = np.array(
    [
        [0.35, 0.45, 0.20],
        [0.30, 0.50, 0.20],
        [0.15, 0.50, 0.35],
        [0.10, 0.40, 0.50],
        [0.08, 0.40, 0.52],
    ]
)
_ER_POSITIVE_BY_GRADE: Final = np.array([0.93, 0.82, 0.52])
_ER_POSITIVE_MALE: Final = 0.95
_PR_POSITIVE_GIVEN_ER: Final = (0.80, 0.05)  # ER positive, ER negative
_HER2_POSITIVE_BY_GRADE: Final = np.array([0.07, 0.15, 0.30])
_KI67_MEAN_BY_GRADE: Final = np.array([0.08, 0.18, 0.42])
_KI67_CONCENTRATION: Final = 8.0
_TREATMENT_BY_STAGE: Final = np.array(
    [
        [0.38, 0.60, 0.01, 0.01, 0.00, 0.00],
        [0.15, 0.45, 0.12, 0.25, 0.02, 0.01],
        [0.07, 0.18, 0.20, 0.35, 0.18, 0.02],
        [0.02, 0.05, 0.10, 0.38, 0.40, 0.05],
        [0.02, 0.02, 0.04, 0.04, 0.08, 0.80],
    ]
)
# Yearly death hazard at age 55, grade 1-2, ER positive; scaled by the factors below.
_DEATH_HAZARD_PER_YEAR_BY_STAGE: Final = np.array([0.004, 0.009, 0.022, 0.06, 0.28])
_HAZARD_AGE_SLOPE_PER_YEAR: Final = 0.035
_HAZARD_RATIO_GRADE3: Final = 1.3
_HAZARD_RATIO_ER_NEGATIVE: Final = 1.4
_LOSS_TO_FOLLOW_UP_PER_YEAR: Final = 0.02
# Age at diagnosis = 20 + 76 * Beta(a, b): mean about 53 for women and 61 for men.
_AGE_BETA: Final = {"F": (4.4, 5.6), "M": (6.0, 5.0)}
# Incidence density over the diagnosis period rises linearly to 1 + this at the end.
_INCIDENCE_GROWTH: Final = 0.5

_DAYS_PER_YEAR: Final = 365.2425


def generate_registry(
    hospital: HospitalSpec, n_patients: int | None = None, seed: int | None = None
) -> pa.Table:
    """Return the synthetic registry of ``hospital``, one row per patient, ordered by diagnosis.

    ``n_patients`` and ``seed`` default to the hospital's own. The same arguments always give an
    identical table; columns, types and value ranges are those of :func:`registry_metadata`.
    """
    n = hospital.n_patients if n_patients is None else n_patients
    rng = np.random.default_rng(hospital.seed if seed is None else seed)

    male = rng.random(n) < MALE_SHARE
    foreign = rng.random(n) < FOREIGN_SHARE
    diagnosis = _draw_diagnosis_dates(rng, n)
    birth, age = _draw_birth_dates(rng, diagnosis, male)

    stage = rng.choice(len(STAGES), size=n, p=_normalised(hospital.stage_weights))
    tumor_size = rng.lognormal(np.log(_TUMOR_SIZE_MEDIAN_MM[stage]), _TUMOR_SIZE_LOG_SD[stage])
    tumor_size = np.round(np.clip(tumor_size, 1.0, TUMOR_SIZE_BOUNDS_MM[1]), 1)
    grade = _draw_conditional(rng, _GRADE_BY_STAGE, stage)
    er_positive = rng.random(n) < np.where(male, _ER_POSITIVE_MALE, _ER_POSITIVE_BY_GRADE[grade])
    pr_positive = rng.random(n) < np.where(er_positive, *_PR_POSITIVE_GIVEN_ER)
    her2_positive = rng.random(n) < _HER2_POSITIVE_BY_GRADE[grade]
    ki67_mean = _KI67_MEAN_BY_GRADE[grade]
    ki67 = rng.beta(ki67_mean * _KI67_CONCENTRATION, (1 - ki67_mean) * _KI67_CONCENTRATION)
    ki67 = np.round(100 * ki67, 1)
    treatment = _draw_conditional(rng, _TREATMENT_BY_STAGE, stage)
    survival_months, deceased = _draw_survival(rng, diagnosis, age, stage, grade, er_positive)

    columns: dict[str, pa.Array] = {
        "patient_name": _draw_names(rng, male, birth),
        "rrn": _draw_rrns(rng, birth, male, foreign),
        "phone": _draw_phones(rng, n),
        "mrn": _draw_mrns(rng, n, hospital.mrn_prefix),
        "sex": _labels(SEXES, male),
        "age_at_diagnosis": pa.array(age, pa.int64()),
        "diagnosis_date": pa.array(diagnosis, pa.date32()),
        "stage": _labels(STAGES, stage),
        "tumor_size_mm": pa.array(tumor_size, pa.float64()),
        "grade": _labels(GRADES, grade),
        "er_status": _labels(RECEPTOR_STATUSES, ~er_positive),
        "pr_status": _labels(RECEPTOR_STATUSES, ~pr_positive),
        "her2_status": _labels(RECEPTOR_STATUSES, ~her2_positive),
        "ki67_pct": pa.array(ki67, pa.float64()),
        "treatment": _labels(TREATMENTS, treatment),
        "survival_months": pa.array(survival_months, pa.int64()),
        "vital_status": _labels(VITAL_STATUSES, deceased),
    }
    return pa.table(columns)


def registry_metadata(hospital: HospitalSpec) -> dict[str, Any]:
    """Return the dataset metadata (contract 4.4) of the hospital's registry."""

    def identifier(name: str, on_release: str) -> dict[str, Any]:
        return {"name": name, "type": "str", "role": "direct_identifier", "on_release": on_release}

    def categorical(name: str, role: str, categories: tuple[str, ...]) -> dict[str, Any]:
        return {"name": name, "type": "category", "role": role, "categories": list(categories)}

    def numeric(name: str, type_: str, bounds: tuple[float, float]) -> dict[str, Any]:
        return {"name": name, "type": type_, "role": "sensitive", "bounds": list(bounds)}

    return {
        "id": hospital.dataset_id,
        "title": f"{hospital.name} breast cancer registry (synthetic)",
        "description": (
            f"Synthetic clinical registry of breast-cancer patients of {hospital.name}, a "
            f"fictional hospital: one row per patient diagnosed {DIAGNOSIS_START}.."
            f"{DIAGNOSIS_END}, with stage, tumour biology, treatment and survival followed up to "
            f"{DATA_CUTOFF}. "
            "survival_months counts whole average months (30.44 days) from diagnosis to death or "
            "last follow-up. Names, resident registration numbers, phone numbers and MRNs are "
            "generated; any resemblance to real persons is coincidental."
        ),
        "custodian_org": hospital.org_id,
        "tier": "enclave",
        "max_rows_per_person": 1,
        "egress_reviews": hospital.egress_reviews,
        "columns": [
            identifier("patient_name", "drop"),
            identifier("rrn", "drop"),
            identifier("phone", "drop"),
            identifier("mrn", "pseudonymise") | {"pattern": f"{hospital.mrn_prefix}[0-9]{{{MRN_DIGITS}}}"},
            categorical("sex", "quasi_identifier", SEXES),
            {
                "name": "age_at_diagnosis",
                "type": "int",
                "role": "quasi_identifier",
                "bounds": list(AGE_BOUNDS),
            },
            {
                "name": "diagnosis_date",
                "type": "date",
                "role": "quasi_identifier",
                "bounds": [DIAGNOSIS_START.isoformat(), DIAGNOSIS_END.isoformat()],
            },
            categorical("stage", "sensitive", STAGES),
            numeric("tumor_size_mm", "float", TUMOR_SIZE_BOUNDS_MM),
            categorical("grade", "sensitive", GRADES),
            categorical("er_status", "sensitive", RECEPTOR_STATUSES),
            categorical("pr_status", "sensitive", RECEPTOR_STATUSES),
            categorical("her2_status", "sensitive", RECEPTOR_STATUSES),
            numeric("ki67_pct", "float", KI67_BOUNDS_PCT),
            categorical("treatment", "sensitive", TREATMENTS),
            numeric("survival_months", "int", (0, MAX_SURVIVAL_MONTHS)),
            categorical("vital_status", "sensitive", VITAL_STATUSES),
        ],
    }


def _draw_diagnosis_dates(rng: np.random.Generator, n: int) -> NDArray[np.datetime64]:
    """Diagnosis dates in ascending order, with incidence rising over the period."""
    period_days = (DIAGNOSIS_END - DIAGNOSIS_START).days + 1
    # Inverse CDF of the density (1 + g t) / (1 + g / 2) on [0, 1].
    g = _INCIDENCE_GROWTH
    t = (np.sqrt(1 + g * (2 + g) * rng.random(n)) - 1) / g
    offsets = np.minimum(np.floor(t * period_days).astype(np.int64), period_days - 1)
    return np.datetime64(DIAGNOSIS_START, "D") + np.sort(offsets)


def _draw_birth_dates(
    rng: np.random.Generator, diagnosis: NDArray[np.datetime64], male: NDArray[np.bool_]
) -> tuple[NDArray[np.datetime64], NDArray[np.int64]]:
    """Birth dates and the exact age at diagnosis they imply (within :data:`AGE_BOUNDS`)."""
    low, high = AGE_BOUNDS
    a = np.where(male, _AGE_BETA["M"][0], _AGE_BETA["F"][0])
    b = np.where(male, _AGE_BETA["M"][1], _AGE_BETA["F"][1])
    # A few days' margin keeps the calendar age inside the bounds whatever the leap days.
    margin = 4 / _DAYS_PER_YEAR
    exact_age = np.clip(low + (high + 1 - low) * rng.beta(a, b), low + margin, high + 1 - margin)
    days_before_diagnosis = np.round(exact_age * _DAYS_PER_YEAR).astype(np.int64)
    birth = diagnosis - days_before_diagnosis.astype("timedelta64[D]")
    birth_year, birth_month, birth_day = _year_month_day(birth)
    diag_year, diag_month, diag_day = _year_month_day(diagnosis)
    before_birthday = diag_month * 100 + diag_day < birth_month * 100 + birth_day
    return birth, diag_year - birth_year - before_birthday


def _draw_survival(
    rng: np.random.Generator,
    diagnosis: NDArray[np.datetime64],
    age: NDArray[np.int64],
    stage: NDArray[np.int64],
    grade: NDArray[np.int64],
    er_positive: NDArray[np.bool_],
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Observed whole months of survival and whether death was observed (else censored)."""
    hazard = _DEATH_HAZARD_PER_YEAR_BY_STAGE[stage] * np.exp(_HAZARD_AGE_SLOPE_PER_YEAR * (age - 55))
    hazard *= np.where(grade == GRADES.index("3"), _HAZARD_RATIO_GRADE3, 1.0)
    hazard *= np.where(er_positive, 1.0, _HAZARD_RATIO_ER_NEGATIVE)
    death_days = rng.exponential(_DAYS_PER_YEAR / hazard)
    lost_days = rng.exponential(_DAYS_PER_YEAR / _LOSS_TO_FOLLOW_UP_PER_YEAR, size=len(diagnosis))
    cutoff_days = (np.datetime64(DATA_CUTOFF, "D") - diagnosis).astype(np.int64)
    censor_days = np.minimum(cutoff_days, lost_days)
    deceased = death_days <= censor_days
    months = np.floor(np.minimum(death_days, censor_days) / DAYS_PER_MONTH).astype(np.int64)
    return months, deceased


def _draw_names(rng: np.random.Generator, male: NDArray[np.bool_], birth: NDArray[np.datetime64]) -> pa.Array:
    """Korean full names: family name by census share, given-name syllables by sex and cohort."""
    family_names, shares = zip(*_FAMILY_NAMES, strict=True)
    family = rng.choice(len(family_names), size=len(male), p=_normalised(shares))
    younger = _year_month_day(birth)[0] >= _YOUNGER_COHORT_FROM
    # All pools side by side; each person picks within the slice of their (sex, cohort) pool.
    pool_keys = [(sex, cohort) for sex in SEXES for cohort in ("older", "younger")]
    pool_of_person = male.astype(np.int64) * 2 + younger
    syllables: list[NDArray[np.str_]] = []
    for position in (0, 1):
        pools = [_GIVEN_NAME_SYLLABLES[key][position] for key in pool_keys]
        sizes = np.array([len(pool) for pool in pools])[pool_of_person]
        starts = np.cumsum([0, *(len(pool) for pool in pools)])[pool_of_person]
        pick = rng.integers(0, sizes)
        pool_syllables = np.array(list("".join(pools)))
        if position == 1:  # no doubled syllable such as 순순: take the pool's next one instead
            doubled = pool_syllables[starts + pick] == syllables[0]
            pick = np.where(doubled, (pick + 1) % sizes, pick)
        syllables.append(pool_syllables[starts + pick])
    surnames = pa.array(family_names, pa.string()).take(family)
    return pc.binary_join_element_wise(surnames, *(pa.array(s) for s in syllables), "")


def _draw_rrns(
    rng: np.random.Generator,
    birth: NDArray[np.datetime64],
    male: NDArray[np.bool_],
    foreign: NDArray[np.bool_],
) -> pa.Array:
    """Distinct resident registration numbers ``YYMMDD-SBBBBBC`` with valid check digits."""
    year, month, day = _year_month_day(birth)
    century = year // 100 - 19
    if np.any((century < 0) | (century > 1)):
        raise ValueError("synthetic RRNs need birth years 1900..2099")
    sex_digit = np.array(
        [
            [[int(rrn_sex_digit(sex, 1900 + 100 * c, foreign=f)) for f in (False, True)] for sex in SEXES]
            for c in (0, 1)
        ]
    )[century, male.astype(np.int64), foreign.astype(np.int64)]
    prefix = ((year % 100) * 10_000 + month * 100 + day) * 10 + sex_digit
    serial = rng.integers(0, 100_000, size=len(birth))
    while True:  # real RRNs are unique: redraw the serial of any repeat
        first12 = prefix * 100_000 + serial
        _, first_seen = np.unique(first12, return_index=True)
        repeated = np.ones(len(first12), dtype=bool)
        repeated[first_seen] = False
        if not repeated.any():
            break
        serial[repeated] = rng.integers(0, 100_000, size=int(repeated.sum()))
    digits = _digits(first12, 12)
    check = (11 - digits @ np.array(RRN_WEIGHTS) % 11) % 10
    return _ascii_strings(digits[:, :6], b"-", digits[:, 6:], check[:, np.newaxis])


def _draw_phones(rng: np.random.Generator, n: int) -> pa.Array:
    """Mobile numbers ``010-XXXX-XXXX``; exchanges never start with 0 or 1."""
    exchange = rng.integers(2_000, 10_000, size=n)
    line = rng.integers(0, 10_000, size=n)
    return _ascii_strings(b"010-", _digits(exchange, 4), b"-", _digits(line, 4))


def _draw_mrns(rng: np.random.Generator, n: int, prefix: str) -> pa.Array:
    """Distinct MRNs: the prefix and increasing zero-padded numbers, as assigned at registration."""
    numbers = 1_000_000 + np.cumsum(rng.integers(1, 100, size=n))
    if n and numbers[-1] >= 10**MRN_DIGITS:
        raise ValueError(f"too many patients for {MRN_DIGITS}-digit MRNs")
    return _ascii_strings(prefix.encode("ascii"), _digits(numbers, MRN_DIGITS))


def _draw_conditional(
    rng: np.random.Generator, probabilities: NDArray[np.float64], given: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Draw, per row, an outcome index from ``probabilities[given[row]]``."""
    cumulative = np.cumsum(probabilities / probabilities.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(len(given))
    drawn: NDArray[np.int64] = (u[:, np.newaxis] >= cumulative[given]).sum(axis=1)
    # Guards against u landing above a last cumulative sum rounded just below 1.
    return np.minimum(drawn, np.int64(probabilities.shape[1] - 1))


def _normalised(weights: tuple[float, ...]) -> NDArray[np.float64]:
    array = np.asarray(weights, dtype=np.float64)
    normalised: NDArray[np.float64] = array / array.sum()
    return normalised


def _labels(labels: tuple[str, ...], index: NDArray[np.int64] | NDArray[np.bool_]) -> pa.Array:
    """String column with ``labels[index[row]]`` (``False``/``True`` index the first two)."""
    return pa.array(labels, pa.string()).take(index.astype(np.int64))


def _year_month_day(
    dates: NDArray[np.datetime64],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    year = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    month_start = dates.astype("datetime64[M]")
    month = month_start.astype(np.int64) % 12 + 1
    day = (dates - month_start).astype(np.int64) + 1
    return year, month, day


def _digits(values: NDArray[np.int64], width: int) -> NDArray[np.int64]:
    """Decimal digits of non-negative integers, zero-padded to ``width`` columns."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return values[:, np.newaxis] // powers % 10


def _ascii_strings(*parts: bytes | NDArray[np.int64]) -> pa.Array:
    """Concatenate, row by row, constant ASCII parts and digit matrices into a string column."""
    rows = next(len(part) for part in parts if isinstance(part, np.ndarray))
    blocks = [
        np.broadcast_to(np.frombuffer(part, dtype=np.uint8), (rows, len(part)))
        if isinstance(part, bytes)
        else (part + ord("0")).astype(np.uint8)
        for part in parts
    ]
    codes = np.ascontiguousarray(np.hstack(blocks))
    width = codes.shape[1]
    offsets = np.arange(0, rows * width + 1, width, dtype=np.int32)
    return pa.StringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(codes))
