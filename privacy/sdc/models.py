"""Disclosure checks on printed model outputs: too few residual degrees of freedom, too few events.

A regression fitted on a handful of people can reproduce their values. The checks read what common
tools print: statsmodels ``summary()`` (``No. Observations:``, ``Df Residuals:``, ``Df Model:``),
lifelines ``print_summary()`` (``number of observations =``, ``number of events observed =``), R's
``summary()`` (``on 8 degrees of freedom``), Stata (``Number of obs =``) and JSON or dict reprs with
``df_resid``, ``nobs`` or ``n_events`` fields.

Values are grouped into one model per summary: a value whose kind the current model already has
starts the next model. Where the residual degrees of freedom are not printed they are derived (from
observations and model degrees of freedom), or bounded by the number of observations.
"""

from __future__ import annotations

import re
from typing import Final

from privacy.findings import Check, Finding, Severity
from privacy.sdc.rules import SdcRules, fails_dof

# Bounded, so that every value converts to a finite float.
_NUMBER: Final = r"(-?\d[\d,]{0,30}(?:\.\d{0,30})?)"
_KEY_START: Final = r"(?<![\w])[\"']?"
_KEY_END: Final = r"[\"']?\s*[:=]\s*"

# (kind of value, pattern whose first group is the value)
_PATTERNS: Final = (
    ("dof", re.compile(r"Df Residuals:\s+" + _NUMBER)),
    ("nobs", re.compile(r"No\. Observations:\s+" + _NUMBER)),
    ("df_model", re.compile(r"Df Model:\s+" + _NUMBER)),
    ("nobs", re.compile(r"number of observations\s*=\s*" + _NUMBER)),
    ("events", re.compile(r"number of events observed\s*=\s*" + _NUMBER)),
    ("fitted", re.compile(r"fitted with " + _NUMBER + r" total observations")),
    ("censored", re.compile(_NUMBER + r" (?:right|left|interval)-censored observations")),
    (
        "dof",
        re.compile(r"Residual (?:standard error|deviance):[^\n]{0,200}?\bon\s+" + _NUMBER + r"\s+degrees"),
    ),
    ("nobs", re.compile(r"Number of obs\s*=\s*" + _NUMBER)),
    ("dof", re.compile(_KEY_START + r"df_resid(?:uals)?" + _KEY_END + _NUMBER)),
    ("nobs", re.compile(_KEY_START + r"(?:nobs|n_obs)" + _KEY_END + _NUMBER)),
    ("df_model", re.compile(_KEY_START + r"df_model" + _KEY_END + _NUMBER)),
    ("events", re.compile(_KEY_START + r"(?:n_events|num_events|number_of_events)" + _KEY_END + _NUMBER)),
)
_MAX_EXCERPT_CHARS: Final = 160


# What was read for one model: kind of value → (value, 1-based line number, that line).
_Model = dict[str, tuple[float, int, str]]


def check_model_output(
    text: str, *, file: str, location: str = "", rules: SdcRules = SdcRules()
) -> list[Finding]:
    """Findings for the model summaries printed in ``text``: ``dof`` and, for survival models, ``events``.

    A model breaks ``dof`` when its residual degrees of freedom are below ``rules.dof_threshold``,
    and ``events`` when fewer than ``rules.threshold`` events were observed; both are
    :attr:`~privacy.findings.Severity.REVIEW`. ``location`` (such as ``cell 4, output 1``) prefixes
    the line number in each finding. Text without model output gives no findings.
    """
    findings: list[Finding] = []
    for model in _models(text):
        findings += _check_model(model, file=file, location=location, rules=rules)
    return findings


def _models(text: str) -> list[_Model]:
    models: list[_Model] = [{}]
    for line_number, line in enumerate(text.splitlines(), start=1):
        found = sorted(
            (match.start(), kind, match.group(1))
            for kind, pattern in _PATTERNS
            for match in pattern.finditer(line)
        )
        for _, kind, raw in found:
            if kind in models[-1]:
                models.append({})
            models[-1][kind] = (float(raw.replace(",", "")), line_number, line.strip())
    return [model for model in models if model]


def _check_model(values: _Model, *, file: str, location: str, rules: SdcRules) -> list[Finding]:
    findings: list[Finding] = []

    def add(rule: str, found: tuple[float, int, str], message: str, suggestion: str) -> None:
        _, line_number, line = found
        where = f"{location}, line {line_number}" if location else f"line {line_number}"
        excerpt = line if len(line) <= _MAX_EXCERPT_CHARS else line[: _MAX_EXCERPT_CHARS - 1] + "…"
        findings.append(
            Finding(
                check=Check.SDC,
                rule=rule,
                severity=Severity.REVIEW,
                file=file,
                location=where,
                message=message,
                excerpt=excerpt,
                suggestion=suggestion,
            )
        )

    nobs = values.get("nobs") or values.get("fitted")
    dof_suggestion = (
        f"withhold the model, or refit it with more observations or fewer parameters "
        f"(≥ {rules.dof_threshold} residual degrees of freedom)"
    )
    if "dof" in values:
        dof = values["dof"][0]
        if fails_dof(dof, rules.dof_threshold):
            add(
                "dof",
                values["dof"],
                f"residual degrees of freedom {_fmt(dof)} < {rules.dof_threshold}",
                dof_suggestion,
            )
    elif nobs is not None and "df_model" in values:
        # statsmodels counts the intercept outside Df Model.
        dof = nobs[0] - values["df_model"][0] - 1
        if fails_dof(dof, rules.dof_threshold):
            add(
                "dof",
                nobs,
                f"residual degrees of freedom {_fmt(dof)} (= {_fmt(nobs[0])} observations - "
                f"{_fmt(values['df_model'][0])} model degrees of freedom - 1) < {rules.dof_threshold}",
                dof_suggestion,
            )
    elif nobs is not None and fails_dof(nobs[0], rules.dof_threshold):
        add(
            "dof",
            nobs,
            f"{_fmt(nobs[0])} observations, so at most {_fmt(nobs[0])} residual degrees of freedom "
            f"< {rules.dof_threshold}",
            dof_suggestion,
        )

    events = values.get("events")
    if events is None and "fitted" in values and "censored" in values:
        events = (values["fitted"][0] - values["censored"][0], *values["fitted"][1:])
    if events is not None and events[0] < rules.threshold:
        add(
            "events",
            events,
            f"{_fmt(events[0])} events observed < {rules.threshold}",
            f"withhold the model, or pool groups until ≥ {rules.threshold} events are observed",
        )
    return findings


def _fmt(number: float) -> str:
    return str(int(number)) if number == int(number) else f"{number:g}"
