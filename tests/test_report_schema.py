"""The JSON report carries its schema version and every field docs/report-schema.md lists."""

import json
import pathlib
import re

import pytest

pytest.importorskip("torch")
from mlm_ref import MaskingConfig  # noqa: E402
from verify import check_masker  # noqa: E402
from verify.token.verdicts import SCHEMA  # noqa: E402

DOC = pathlib.Path(__file__).parent.parent / "docs" / "report-schema.md"


def test_every_documented_field_is_in_the_report_and_nothing_undocumented():
    config = MaskingConfig(padding_token=0, mask_token=1, no_mask_tokens=(2,), n_tokens=100)
    report = json.loads(check_masker("numpy", config, tokens=1 << 16).to_json())
    documented = set(re.findall(r"^\| `(\w+)` \|", DOC.read_text(), re.M))
    assert documented - {"schema"} <= set(report)
    assert set(report) - {"schema", "alpha", "seed", "device", "config"} <= documented
    assert report["schema"] == SCHEMA and f"**`{SCHEMA}`**" in DOC.read_text()
    effective = report["effective"]["numpy"]
    assert {"selection", "outcomes", "categories", "expected_categories"} <= set(effective)
    for e in effective["outcomes"]:
        assert e["ci_low"] <= e["observed"] <= e["ci_high"]
