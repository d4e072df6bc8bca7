"""Disclosure checks on printed model outputs (privacy.sdc.models).

statsmodels and lifelines are not installed here, so their outputs are embedded as captured text:
the OLS and Logit summaries are statsmodels' documentation examples (Longley-style OLS on 50
observations, Spector and Mazzeo's Logit on 32), the Cox summary is lifelines' Rossi recidivism
example (its last column dropped to fit the line length); the small-sample variants change only
the counts.
"""

from __future__ import annotations

import json

import pytest

from privacy.findings import Check, Severity
from privacy.sdc import SdcRules, check_model_output

STATSMODELS_OLS = """\
                            OLS Regression Results
==============================================================================
Dep. Variable:                      y   R-squared:                       0.933
Model:                            OLS   Adj. R-squared:                  0.928
Method:                 Least Squares   F-statistic:                     211.8
Date:                Tue, 02 Jan 2024   Prob (F-statistic):           6.30e-27
Time:                        10:15:32   Log-Likelihood:                -34.438
No. Observations:                  50   AIC:                             76.88
Df Residuals:                      46   BIC:                             84.52
Df Model:                           3
Covariance Type:            nonrobust
==============================================================================
                 coef    std err          t      P>|t|      [0.025      0.975]
------------------------------------------------------------------------------
x1             0.4687      0.026     17.751      0.000       0.416       0.522
x2             0.4836      0.104      4.659      0.000       0.275       0.693
x3            -0.0174      0.002     -7.507      0.000      -0.022      -0.013
const          5.2058      0.171     30.405      0.000       4.861       5.550
==============================================================================
Omnibus:                        0.655   Durbin-Watson:                   2.896
Prob(Omnibus):                  0.721   Jarque-Bera (JB):                0.360
Skew:                           0.207   Prob(JB):                        0.835
Kurtosis:                       3.026   Cond. No.                         221.
==============================================================================

Notes:
[1] Standard Errors assume that the covariance matrix of the errors is correctly specified.
"""


def small_ols(nobs: int, df_resid: int) -> str:
    return STATSMODELS_OLS.replace(
        "No. Observations:                  50", f"No. Observations:                  {nobs}"
    ).replace("Df Residuals:                      46", f"Df Residuals:                      {df_resid}")


STATSMODELS_LOGIT = """\
                           Logit Regression Results
==============================================================================
Dep. Variable:                  GRADE   No. Observations:                   32
Model:                          Logit   Df Residuals:                       28
Method:                           MLE   Df Model:                            3
Date:                Tue, 02 Jan 2024   Pseudo R-squ.:                  0.3740
Time:                        10:15:32   Log-Likelihood:                -12.890
converged:                       True   LL-Null:                       -20.592
Covariance Type:            nonrobust   LLR p-value:                  0.001502
==============================================================================
                 coef    std err          z      P>|z|      [0.025      0.975]
------------------------------------------------------------------------------
const        -13.0213      4.931     -2.641      0.008     -22.687      -3.356
GPA            2.8261      1.263      2.238      0.025       0.351       5.301
TUCE           0.0952      0.142      0.672      0.501      -0.182       0.373
PSI            2.3787      1.065      2.234      0.025       0.292       4.465
==============================================================================
"""

STATSMODELS_GLM_SMALL = """\
                 Generalized Linear Model Regression Results
==============================================================================
Dep. Variable:                   died   No. Observations:                   14
Model:                            GLM   Df Residuals:                        9
Model Family:                Binomial   Df Model:                            4
Link Function:                  Logit   Scale:                          1.0000
Method:                          IRLS   Log-Likelihood:                -7.1231
Date:                Tue, 02 Jan 2024   Deviance:                       14.246
Time:                        10:15:32   Pearson chi2:                     12.9
No. Iterations:                     5   Pseudo R-squ. (CS):             0.2803
Covariance Type:            nonrobust
==============================================================================
"""

LIFELINES_COX = """\
<lifelines.CoxPHFitter: fitted with 432 total observations, 318 right-censored observations>
             duration col = 'week'
                event col = 'arrest'
      baseline estimation = breslow
   number of observations = 432
number of events observed = 114
   partial log-likelihood = -658.75
         time fit was run = 2024-01-02 10:15:32 UTC

---
            coef  exp(coef)   se(coef)   coef lower 95%   coef upper 95%  exp(coef) lower 95%
covariate
fin        -0.38       0.68       0.19            -0.75            -0.00                 0.47
age        -0.06       0.94       0.02            -0.10            -0.01                 0.90
race        0.31       1.37       0.31            -0.29             0.92                 0.75
wexp       -0.15       0.86       0.21            -0.57             0.27                 0.57
mar        -0.43       0.65       0.38            -1.18             0.31                 0.31
paro       -0.08       0.92       0.20            -0.47             0.30                 0.63
prio        0.09       1.10       0.03             0.04             0.15                 1.04
---
Concordance = 0.64
Partial AIC = 1331.50
log-likelihood ratio test = 33.27 on 7 df
-log2(p) of ll-ratio test = 15.37
"""


def small_cox(total: int, censored: int, *, with_counts: bool = True) -> str:
    text = LIFELINES_COX.replace("432 total", f"{total} total").replace("318 right", f"{censored} right")
    counts = f"number of observations = {total}\nnumber of events observed = {total - censored}\n"
    original = "   number of observations = 432\nnumber of events observed = 114\n"
    return text.replace(original, counts if with_counts else "")


R_LM = """\
Call:
lm(formula = weight ~ group, data = small)

Residuals:
    Min      1Q  Median      3Q     Max
-1.0710 -0.4938  0.0685  0.2462  1.3690

Coefficients:
            Estimate Std. Error t value Pr(>|t|)
(Intercept)   5.0320     0.2202  22.850 9.55e-15 ***
grouptrt     -0.3710     0.3114  -1.191    0.249
---

Residual standard error: 0.6964 on 8 degrees of freedom
Multiple R-squared:  0.07308,	Adjusted R-squared:  0.06993
F-statistic: 1.419 on 1 and 8 DF,  p-value: 0.249
"""

R_GLM = """\
    Null deviance: 43.230  on 31  degrees of freedom
Residual deviance: 25.779  on 28  degrees of freedom
AIC: 33.779
"""

STATA = """\
      Source |       SS           df       MS      Number of obs   =         7
-------------+----------------------------------   F(1, 5)         =      3.21
       Model |  1.2345         1  1.2345           Prob > F        =    0.1331
"""


def rules_at(text: str, **kwargs: object) -> list[tuple[str, str]]:
    return [(f.rule, f.location) for f in check_model_output(text, file="model.txt", **kwargs)]  # type: ignore[arg-type]


# (text, expected (rule, location) pairs)
MODEL_CASES = [
    pytest.param(STATSMODELS_OLS, [], id="OLS with 46 residual df"),
    pytest.param(small_ols(12, 8), [("dof", "line 9")], id="OLS with 8 residual df"),
    pytest.param(small_ols(13, 9), [("dof", "line 9")], id="9 residual df"),
    pytest.param(small_ols(14, 10), [], id="10 residual df"),
    pytest.param(small_ols(15, 11), [], id="11 residual df"),
    pytest.param(STATSMODELS_LOGIT, [], id="Logit with 28 residual df"),
    pytest.param(STATSMODELS_GLM_SMALL, [("dof", "line 4")], id="GLM with 9 residual df"),
    pytest.param(STATSMODELS_OLS + small_ols(12, 8), [("dof", "line 36")], id="second of two summaries"),
    pytest.param(LIFELINES_COX, [], id="Cox with 114 events"),
    pytest.param(small_cox(40, 33), [("events", "line 6")], id="Cox with 7 events"),
    pytest.param(small_cox(40, 30), [], id="Cox with 10 events"),
    pytest.param(small_cox(8, 2), [("dof", "line 5"), ("events", "line 6")], id="Cox with 8 observations"),
    pytest.param(small_cox(40, 33, with_counts=False), [("events", "line 1")], id="Cox header only"),
    pytest.param(R_LM, [("dof", "line 14")], id="R lm with 8 df"),
    pytest.param(R_GLM, [], id="R glm with 28 df (null deviance ignored)"),
    pytest.param(STATA, [("dof", "line 1")], id="Stata with 7 observations"),
    pytest.param(
        json.dumps({"model": "OLS", "nobs": 50.0, "df_model": 3.0, "df_resid": 46.0}), [], id="JSON ok"
    ),
    pytest.param(json.dumps({"nobs": 8.0, "df_model": 2.0, "df_resid": 5.0}), [("dof", "line 1")], id="JSON"),
    pytest.param(json.dumps({"nobs": 13, "df_model": 3}), [("dof", "line 1")], id="JSON derived 9 df"),
    pytest.param(json.dumps({"nobs": 14, "df_model": 3}), [], id="JSON derived 10 df"),
    pytest.param(
        json.dumps([{"nobs": 100, "df_resid": 90}, {"nobs": 12, "df_resid": 4}], indent=1),
        [("dof", "line 8")],
        id="JSON list of two models",
    ),
    pytest.param("{'nobs': 9, 'n_events': 3}", [("dof", "line 1"), ("events", "line 1")], id="dict repr"),
    pytest.param("", [], id="empty"),
    pytest.param("stage,n\nI,3\n", [], id="a table"),
    pytest.param("No observations were made; Df Residuals: unknown.\nnobs=many", [], id="prose"),
    pytest.param("snobs: 3, df_residency = 2", [], id="longer words"),
]


@pytest.mark.parametrize(("text", "expected"), MODEL_CASES)
def test_model_outputs(text: str, expected: list[tuple[str, str]]) -> None:
    assert rules_at(text) == expected


def test_finding_gives_value_threshold_and_suggestion() -> None:
    (finding,) = check_model_output(small_ols(12, 8), file="ols.ipynb", location="cell 4, output 1")
    assert finding.check is Check.SDC and finding.severity is Severity.REVIEW
    assert (finding.file, finding.location) == ("ols.ipynb", "cell 4, output 1, line 9")
    assert finding.message == "residual degrees of freedom 8 < 10"
    assert finding.excerpt == small_ols(12, 8).splitlines()[8].strip()
    assert finding.excerpt.startswith("Df Residuals:") and finding.excerpt.endswith("84.52")
    assert "≥ 10 residual degrees of freedom" in finding.suggestion


def test_derived_and_bounded_degrees_of_freedom_say_how() -> None:
    (derived,) = check_model_output(json.dumps({"nobs": 13, "df_model": 3}), file="m.json")
    assert "9 (= 13 observations - 3 model degrees of freedom - 1) < 10" in derived.message
    (bounded,) = check_model_output("number of observations = 8", file="m.txt")
    assert "8 observations, so at most 8 residual degrees of freedom < 10" in bounded.message


def test_events_message() -> None:
    (finding,) = check_model_output(small_cox(40, 33), file="cox.txt")
    assert finding.message == "7 events observed < 10"
    assert "≥ 10 events" in finding.suggestion


def test_thresholds_are_configurable() -> None:
    assert rules_at(small_ols(30, 26), rules=SdcRules(dof_threshold=30)) == [("dof", "line 9")]
    assert rules_at(small_cox(40, 33), rules=SdcRules(threshold=5)) == []


def test_long_lines_are_shortened_in_excerpts() -> None:
    (finding,) = check_model_output("Df Residuals: 3" + " " * 500 + "x", file="m.txt")
    assert len(finding.excerpt) == 160
    assert finding.excerpt.endswith("…")
