"""Statistical disclosure control of outputs leaving the enclave (the anchors are ACRO/SACRO and OpenSAFELY).

Pure library: findings in, no I/O except :func:`write_table`. The egress airlock calls
:func:`check_table` on every parsed table (with its ``.sdc.json`` sidecar when there is one) and
:func:`check_model_output` on text outputs; researchers call :func:`crosstab` and :func:`write_table`
inside their sessions so that magnitude tables arrive with the statistics that let them be checked::

    table, stats = crosstab(patients, index="stage", columns="sex", values="size", aggfunc="mean")
    write_table(table, stats, "outputs/size.csv")          # also writes outputs/size.csv.sdc.json
    findings = check_table(pl.read_csv("outputs/size.csv", infer_schema=False), file="size.csv",
                           stats=TableStats.from_json(sidecar_path("outputs/size.csv").read_bytes()))

Rules that fail give :attr:`~privacy.findings.Severity.REVIEW` findings for the custodians;
suggestions (redact, round to 5) give :attr:`~privacy.findings.Severity.INFO` ones.
"""

from privacy.sdc.models import check_model_output
from privacy.sdc.producer import AggFunc, crosstab, write_table
from privacy.sdc.rules import SdcRules
from privacy.sdc.stats import SIDECAR_SUFFIX, CellStats, TableStats, sidecar_path
from privacy.sdc.tables import check_table, count_columns, is_count_name

__all__ = [
    "SIDECAR_SUFFIX",
    "AggFunc",
    "CellStats",
    "SdcRules",
    "TableStats",
    "check_model_output",
    "check_table",
    "count_columns",
    "crosstab",
    "is_count_name",
    "sidecar_path",
    "write_table",
]
