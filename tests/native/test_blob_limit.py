"""The blob store's cap on all blobs together (`--blobs.maxsize`): a full store refuses new
blobs with an error that names the limit, keeps serving what it holds, and counts the blobs
already on disk after a restart."""
import threading

from eth_utils import keccak

from node.blobstore import BlobError, BlobStore
from tests.rpc.nodes import call, devnet_process


def test_a_full_store_refuses_new_blobs_and_keeps_the_old(tmp_path):
    store = BlobStore(tmp_path, max_total_bytes=100)
    first = store.put(b"a" * 60)
    try:
        store.put(b"b" * 60)
    except BlobError as exc:
        assert "blob store is full: 60 of 100 bytes used" in str(exc)
    else:
        raise AssertionError("a blob past the cap was stored")
    assert store.put(b"a" * 60) == first  # already held: no growth
    assert store.put(b"c" * 40) == keccak(b"c" * 40) and store.used_bytes() == 100
    assert BlobStore(tmp_path, max_total_bytes=100).used_bytes() == 100  # counted from the files
    assert store.get(first) == b"a" * 60


def test_concurrent_writers_never_pass_the_cap(tmp_path):
    store = BlobStore(tmp_path, max_total_bytes=1000)
    stored = []

    def write(i: int) -> None:
        try:
            store.put(bytes([i]) * 100)
            stored.append(i)
        except BlobError:
            pass

    threads = [threading.Thread(target=write, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stored) == 10 and store.used_bytes() == 1000
    assert BlobStore(tmp_path).used_bytes() == 1000


def test_ol_put_blob_over_the_cap_is_an_invalid_params_error(tmp_path):
    datadir = tmp_path / "data"
    node = devnet_process(datadir, "--http.api", "eth,net,web3,ol", "--blobs.maxsize", "100").wait_ready()
    try:
        ok = call(node.url, "ol_putBlob", "0x" + (b"x" * 80).hex())
        assert ok["result"]["hash"] == "0x" + keccak(b"x" * 80).hex()
        full = call(node.url, "ol_putBlob", "0x" + (b"y" * 30).hex())
        assert full["error"]["code"] == -32602 and "blob store is full" in full["error"]["message"]
        assert "--blobs.maxsize" in full["error"]["message"]
        assert call(node.url, "ol_putBlob", "0x" + (b"x" * 80).hex())["result"] == ok["result"]
    finally:
        node.stop()
    node = devnet_process(datadir, "--http.api", "eth,net,web3,ol", "--blobs.maxsize", "100").wait_ready()
    try:  # after a restart the blobs on disk still count
        assert "blob store is full" in call(node.url, "ol_putBlob", "0x" + (b"y" * 30).hex())["error"]["message"]
    finally:
        node.stop()
