"""The tuning component's simulated trial metrics (components/tuning/sim_results.py):
declared expressions over a trial's parameters, evaluated safely."""

import re

import pytest

from appliance.components.tuning import sim_results


def test_an_expression_over_the_parameters_is_evaluated():
    assert sim_results.evaluate("(log10(lr) + 1.5) ** 2 + 8 / epochs", {"lr": 0.01, "epochs": 40}) == pytest.approx(0.25 + 0.2)
    assert sim_results.evaluate("max(abs(-x), 2) - sqrt(4) + exp(0) + log(1)", {"x": 3}) == 2.0


def test_metrics_reads_the_annotation_and_the_assignments():
    got = sim_results.metrics('{"loss": "lr * epochs", "accuracy": "1 - lr"}',
                              [{"name": "lr", "value": "0.5"}, {"name": "epochs", "value": "4"}])
    assert got == {"loss": 2.0, "accuracy": 0.5}


@pytest.mark.parametrize("expression, says", [
    ("__import__('os')", "not allowed"),
    ("lr.real", "not allowed"),
    ("open('x')", "not allowed"),
    ("lr +", "not an expression"),
    ("momentum * 2", "unknown name 'momentum' (parameters: epochs, lr)"),
    ("1 / (lr - lr)", "division by zero"),
])
def test_anything_but_arithmetic_is_refused_with_what_is_wrong(expression, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        sim_results.evaluate(expression, {"lr": 0.1, "epochs": 10})


def test_the_annotation_must_map_metric_names_to_expressions():
    with pytest.raises(ValueError, match="JSON object"):
        sim_results.metrics('["loss"]', [])


def test_a_job_is_done_when_its_complete_or_succeeded_condition_is_true():
    assert sim_results._succeeded({"status": {"conditions": [{"type": "Created", "status": "True"}, {"type": "Succeeded", "status": "True"}]}})
    assert sim_results._succeeded({"status": {"conditions": [{"type": "Complete", "status": "True"}]}})
    assert not sim_results._succeeded({"status": {"conditions": [{"type": "Succeeded", "status": "False"}]}})
    assert not sim_results._succeeded({})
