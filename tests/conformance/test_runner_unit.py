"""The runner's own rules, checked without a node: fixture loading, hive's comparison, schemas."""
import json

import pytest

from tests.conformance.runner import Exchange, Fixture, check, json_diff, load_fixtures, schema_errors


def test_every_fixture_loads_with_requests_and_responses():
    fixtures = load_fixtures()
    assert len(fixtures) >= 100
    assert all(f.exchanges for f in fixtures)
    assert any(f.speconly for f in fixtures) and any(not f.speconly for f in fixtures)


def test_zero_fixtures_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_fixtures(tmp_path)


def test_numbers_compare_numerically_and_everything_else_exactly():
    assert json_diff({"a": 1}, {"a": 1.0}) is None
    assert json_diff({"a": "0x1"}, {"a": "0x01"}) is not None
    assert json_diff([1, 2], [1]) is not None
    assert json_diff({"a": True}, {"a": 1}) is not None
    assert json_diff({"a": 1}, {"a": 1, "b": None}) is not None


def _fixture(expected, speconly=False, method="eth_chainId"):
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method})
    return Fixture(method, "x", speconly, (Exchange(request, expected),))


def test_errors_compare_codes_not_messages():
    fixture = _fixture({"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "geth words"}})
    exchange = fixture.exchanges[0]
    assert check(fixture, exchange, {"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "ours"}}) is None
    assert check(fixture, exchange, {"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "x"}})
    assert check(fixture, exchange, {"jsonrpc": "2.0", "id": 1, "result": "0x1"})


def test_speconly_checks_the_result_schema():
    fixture = _fixture({"jsonrpc": "2.0", "id": 1, "result": "0x1"}, speconly=True)
    exchange = fixture.exchanges[0]
    assert check(fixture, exchange, {"jsonrpc": "2.0", "id": 1, "result": "0xabc"}) is None
    assert "schema" in check(fixture, exchange, {"jsonrpc": "2.0", "id": 1, "result": 12})


def test_recorded_speconly_answers_fit_their_schemas():
    """go-ethereum's own recorded answers must pass our schema check (the check is not too strict)."""
    for fixture in load_fixtures():
        if not fixture.speconly:
            continue
        for exchange in fixture.exchanges:
            if "result" in exchange.expected:
                method = json.loads(exchange.request)["method"]
                assert schema_errors(method, exchange.expected["result"]) is None, fixture.id
