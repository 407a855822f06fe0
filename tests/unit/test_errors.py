"""Error lines: what, where and exactly one fix, also when one error wraps another."""

from appliance.errors import UserError


def test_line_has_where_what_and_fix():
    assert UserError("no cluster", "state.json", "run `appliance up`").line() == \
        "state.json: no cluster — fix: run `appliance up`"
    assert UserError("odd").line() == "odd"


def test_wrapped_error_keeps_the_inner_fix_only():
    inner = UserError("host unreachable", "dgx-01", "check that dgx-01:22 is up")
    outer = UserError(f"step 'cluster' failed: {inner.line()}", "logs in /tmp/x", "fix the cause and run again")
    assert outer.line() == "logs in /tmp/x: step 'cluster' failed: dgx-01: host unreachable — fix: check that dgx-01:22 is up"
    assert outer.fix == "check that dgx-01:22 is up" and outer.line().count("fix:") == 1
    twice = UserError(f"wrapped again: {outer.line()}", fix="generic")
    assert twice.line().count("fix:") == 1 and twice.fix == inner.fix
