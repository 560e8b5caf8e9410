"""RPC server settings, with go-ethereum's flag meanings (`--http.addr`, `--http.api`, ...)."""
from __future__ import annotations

from dataclasses import dataclass

from node.rpc.namespaces import check_apis

DEFAULT_APIS = ("eth", "net", "web3")


@dataclass(frozen=True)
class RpcConfig:
    """Where and what the JSON-RPC server serves; limits that keep hostile clients harmless."""

    host: str = "127.0.0.1"  # --http.addr: loopback unless the operator opens it
    port: int = 8545  # --http.port; 0 picks a free port (tests)
    ws: bool = True  # WebSocket upgrades accepted on the HTTP port (as anvil does)
    ws_port: int | None = None  # --ws.port: an extra listener, also HTTP + WS
    apis: tuple[str, ...] = DEFAULT_APIS  # --http.api
    cors_origins: tuple[str, ...] = ()  # --http.corsdomain: origins browsers may call from (geth: none)
    vhosts: tuple[str, ...] = ("localhost",)  # --http.vhosts: Host names served (IPs always; geth's default)
    ws_origins: tuple[str, ...] = ()  # --ws.origins: none given = http://localhost and this host (geth)
    max_body: int = 5 * 1024 * 1024
    max_batch: int = 1000  # geth's BatchRequestLimit
    max_response_bytes: int = 25 * 1024 * 1024  # geth's BatchResponseMaxSize
    logs_block_range: int = 10_000  # eth_getLogs range cap (0 = none)
    call_gas_cap: int = 50_000_000  # geth's --rpc.gascap
    evm_timeout: float = 5.0  # geth's --rpc.evmtimeout: eth_call/estimateGas answer within it
    heavy_calls: int = 4  # concurrent eth_call/estimateGas threads
    idle_timeout: float = 120.0  # geth's HTTP IdleTimeout: a keep-alive connection with no request
    filter_timeout: float = 300.0  # geth drops filters not polled for 5 minutes
    max_filters: int = 10_000
    max_subscriptions_per_connection: int = 1_000
    blob_store_bytes: int = 16 * 1024**3  # --blobs.maxsize: all ol_putBlob blobs together
    studio: bool = False  # --ui: serve OpenLedger Studio (studio/dist) at /studio

    def __post_init__(self) -> None:
        if not 0 <= self.port < 65536:
            raise ValueError(f"invalid --http.port {self.port}: want 0..65535")
        if self.ws_port is not None and not 0 <= self.ws_port < 65536:
            raise ValueError(f"invalid --ws.port {self.ws_port}: want 0..65535")
        for name in ("max_body", "max_batch", "heavy_calls", "blob_store_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"invalid {name} {getattr(self, name)}: must be positive")
        check_apis(tuple(self.apis))
