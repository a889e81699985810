import json

import pytest

from netpress.errors import ConfigError, FormatError, NetpressError
from netpress.evaluate.gate import BUDGETS, Check, check_budgets, load_report, report_value, verdict

REPORT = {
    "accuracy_drop_pp": 0.29,
    "compression_ratio": 45.5,
    "latency_ms": {"batch1_p50": 0.41, "batch1_p95": 0.6, "batchN_p50": 3.0, "batch_n": 256},
    "behaviour": {"max_class_drop_pp": 1.5, "worst_class": "Shirt"},
}


def test_all_budgets_hold():
    checks = check_budgets(REPORT, max_acc_drop=0.5, min_ratio=10, max_latency_ms=1.0,
                           max_class_drop=2)
    assert [c.name for c in checks] == ["max_acc_drop", "min_ratio", "max_latency_ms",
                                        "max_class_drop"]
    assert all(c.passed for c in checks)
    assert [c.value for c in checks] == [0.29, 45.5, 0.41, 1.5]
    assert [c.limit for c in checks] == [0.5, 10.0, 1.0, 2.0]
    assert checks[0].text == "PASS  accuracy drop: 0.29 pp <= 0.5 pp (--max-acc-drop)"
    assert checks[1].text == "PASS  compression ratio: 45.5 × >= 10 × (--min-ratio)"
    assert verdict(checks) == "gate: PASS, all 4 budgets hold"


def test_each_budget_can_fail():
    checks = check_budgets(REPORT, max_acc_drop=0.2, min_ratio=50, max_latency_ms=0.4,
                           max_class_drop=1.0)
    assert [c.passed for c in checks] == [False, False, False, False]
    assert checks[0].text.startswith("FAIL  accuracy drop: 0.29 pp > 0.2 pp")
    assert checks[1].text.startswith("FAIL  compression ratio: 45.5 × < 50 ×")
    assert verdict(checks[:2]) == "gate: FAIL, 2 of 2 budgets broken (max_acc_drop, min_ratio)"


def test_limits_are_inclusive_and_direction_is_right():
    assert check_budgets(REPORT, max_acc_drop=0.29)[0].passed
    assert check_budgets(REPORT, min_ratio=45.5)[0].passed
    assert not check_budgets(REPORT, min_ratio=45.6)[0].passed
    # a negative drop (the compressed model is better) passes a zero budget
    assert check_budgets({"accuracy_drop_pp": -0.1}, max_acc_drop=0)[0].passed
    assert not check_budgets({"accuracy_drop_pp": 0.01}, max_acc_drop=0)[0].passed


def test_no_budget_names_the_flags():
    with pytest.raises(ConfigError, match="--max-acc-drop, --min-ratio, --max-latency-ms, "
                                          "--max-class-drop"):
        check_budgets(REPORT)


@pytest.mark.parametrize("kw, match", [
    ({"min_ratio": 0}, "--min-ratio must be > 0"),
    ({"max_latency_ms": -1.0}, "--max-latency-ms must be > 0"),
    ({"max_acc_drop": float("nan")}, "--max-acc-drop must be a finite number"),
])
def test_bad_limits(kw, match):
    with pytest.raises(ConfigError, match=match):
        check_budgets(REPORT, **kw)


def test_missing_or_bad_keys():
    with pytest.raises(FormatError, match="no latency_ms.batch1_p50, which --max-latency-ms needs"):
        check_budgets({"accuracy_drop_pp": 0.1}, max_latency_ms=1)
    with pytest.raises(FormatError, match="behaviour.max_class_drop_pp or max_class_drop_pp"):
        check_budgets(REPORT | {"behaviour": {}}, max_class_drop=1)
    with pytest.raises(FormatError, match="compression_ratio is None, not a number"):
        check_budgets({"compression_ratio": None}, min_ratio=1)
    with pytest.raises(FormatError, match="is '12', not a number"):
        check_budgets({"compression_ratio": "12"}, min_ratio=1)
    with pytest.raises(FormatError, match="is True, not a number"):
        check_budgets({"accuracy_drop_pp": True}, max_acc_drop=1)


def test_behaviour_json_can_be_gated():
    b = {"accuracy_drop_pp": 0.4, "max_class_drop_pp": 3.0, "per_class": {}}
    checks = check_budgets(b, max_acc_drop=0.5, max_class_drop=2)
    assert [c.passed for c in checks] == [True, False]
    assert report_value(b, BUDGETS["max_class_drop"]) == 3.0


def test_load_report(tmp_path):
    p = tmp_path / "report.json"
    p.write_text(json.dumps(REPORT))
    assert load_report(p) == REPORT
    assert load_report(tmp_path) == REPORT  # a run folder holding report.json
    with pytest.raises(FormatError, match="report not found"):
        load_report(tmp_path / "nope.json")
    with pytest.raises(FormatError, match="report not found: .*empty/report.json"):
        (tmp_path / "empty").mkdir()
        load_report(tmp_path / "empty")
    p.write_text('{"accuracy_drop_pp": 0.2,')
    with pytest.raises(FormatError, match=r"not valid JSON \(line 1, column 26"):
        load_report(p)
    p.write_text("[1, 2]")
    with pytest.raises(FormatError, match="holds a JSON list, not an object"):
        load_report(p)
    p.write_bytes(b"\xff\xfe{}")
    with pytest.raises(NetpressError, match="not UTF-8"):
        load_report(p)


def test_check_as_dict():
    c = Check("min_ratio", 8.0, 10.0, False, "FAIL")
    assert c.as_dict() == {"name": "min_ratio", "value": 8.0, "limit": 10.0, "passed": False,
                           "text": "FAIL"}
