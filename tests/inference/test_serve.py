"""OpenAI-compatible /v1/completions over a real socket: plain, streamed (SSE) and hostile."""
import http.client
import json
import threading

import pytest

from inference import Engine, SamplingParams, Verifier, make_server


@pytest.fixture(scope="module")
def server(model, store, ids):
    engine = Engine(model, store, max_batch=8, max_seq_len=64).start()
    srv = make_server(engine, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.server_address[1], engine
    srv.shutdown()
    srv.server_close()
    engine.close()


def _post(port, body, raw=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    data = raw if raw is not None else json.dumps(body).encode()
    conn.request("POST", "/v1/completions", body=data, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    out = resp.status, resp.getheader("Content-Type"), resp.read()
    conn.close()
    return out


def test_completion_matches_engine_and_verifies(server, model, store, ids):
    port, _ = server
    status, ctype, body = _post(port, {"model": ids[1], "prompt": [1, 5, 9], "max_tokens": 20, "temperature": 0})
    assert status == 200 and ctype == "application/json"
    answer = json.loads(body)
    choice = answer["choices"][0]
    local = Engine(model, store, max_batch=1, max_seq_len=64).generate(ids[1], [1, 5, 9], SamplingParams(20))
    assert choice["tokens"] == list(local.tokens) and choice["finish_reason"] in ("length", "stop")
    assert answer["usage"]["completion_tokens"] == len(local.tokens)
    proof = bytes.fromhex(answer["openledger"]["proof"][2:])
    assert answer["openledger"]["commitment"] == "0x" + local.commitment.digest.hex()
    verdict = Verifier(model, store).verify(ids[1], [1, 5, 9], choice["tokens"], SamplingParams(20), proof)
    assert verdict.ok


def test_streaming_sends_each_token_then_done(server, ids):
    port, _ = server
    body = {"model": ids[2], "prompt": [1, 7], "max_tokens": 12, "temperature": 0.7, "seed": 3, "stream": True}
    status, ctype, raw = _post(port, body)
    assert status == 200 and ctype == "text/event-stream"
    events = [e[len("data: "):] for e in raw.decode().split("\n\n") if e]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    streamed = [c["choices"][0]["tokens"][0] for c in chunks[:-1]]
    assert chunks[-1]["choices"][0]["finish_reason"] in ("length", "stop") and "commitment" in chunks[-1]["openledger"]
    plain = json.loads(_post(port, {**body, "stream": False})[2])
    assert streamed == plain["choices"][0]["tokens"]  # same seed, same tokens


def test_models_lists_the_store(server, ids):
    port, _ = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/v1/models")
    listed = {m["id"] for m in json.loads(conn.getresponse().read())["data"]}
    conn.close()
    assert set(ids) <= listed and "base" in listed


@pytest.mark.parametrize("body, raw, status, match", [
    ({"model": "0x" + "aa" * 32, "prompt": [1, 2]}, None, 404, "not in the store"),
    ({"model": "nonsense", "prompt": [1, 2]}, None, 400, "32-byte hex"),
    ({"model": "base", "prompt": "text"}, None, 400, "no tokenizer"),
    ({"model": "base", "prompt": [1, 2], "max_tokens": -1}, None, 400, "max_new_tokens"),
    ({"model": "base", "prompt": [1, 2], "temperature": "hot"}, None, 400, "temperature"),
    ({"model": "base", "prompt": [1, 2], "top_p": 2}, None, 400, "top_p"),
    ({"model": "base", "prompt": [1, 2], "n": 3}, None, 400, "n=3"),
    ({"model": "base", "prompt": [1, 2], "logit_bias": {}}, None, 400, "logit_bias"),
    ({"model": "base", "prompt": list(range(3, 100))}, None, 400, "exceeds the context"),
    ({"model": "base", "prompt": [1, 99999]}, None, 400, "99999"),
    ({"prompt": [1, 2]}, None, 400, "model"),
    (None, b"{broken", 400, "not valid JSON"),
    (None, b"[1, 2]", 400, "JSON object"),
])
def test_hostile_requests_get_openai_style_errors(server, body, raw, status, match):
    port, engine = server
    got, _, answer = _post(port, body, raw)
    assert got == status
    assert match in json.loads(answer)["error"]["message"]


def test_oversized_body_and_unknown_route(server):
    port, _ = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("POST", "/v1/completions")
    conn.putheader("Content-Length", str(10 << 20))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413
    conn.close()
    assert _post(port, {}, None)[0] == 400
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/v1/chat/completions", body=b"{}")
    assert conn.getresponse().status == 404
    conn.close()
