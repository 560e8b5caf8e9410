// A test wallet: an EIP-1193 provider injected into the page before its scripts, as MetaMask's is.
// It signs with a dev key (viem's privateKeyToAccount), fills nonce and fees from the node, and
// records every request, so a test can assert that a refused form sent nothing.
// Settings (window.__walletSettings, set before this runs): key, chainId (the network the wallet is
// on), chains (networks it knows), canSwitch (false: the user declines switching).
import { privateKeyToAccount } from "viem/accounts";
import { numberToHex } from "viem";

const settings = window.__walletSettings;
let account = privateKeyToAccount(settings.key);
let chainId = settings.chainId;
const chains = new Set(settings.chains);
const listeners = { accountsChanged: [], chainChanged: [] };
const log = [];
const sent = [];

const fail = (code, message) => Object.assign(new Error(message), { code });
const emit = (event, value) => (listeners[event] || []).forEach((f) => f(value));

async function node(method, params) {
  const r = await fetch(new URL("/", location.href), { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  const body = await r.json();
  if (body.error) throw Object.assign(new Error(body.error.message), body.error);
  return body.result;
}

async function sendTransaction(tx) {
  const nodeChain = Number(await node("eth_chainId", []));
  if (nodeChain !== chainId) throw fail(-32000, `wallet is on chain ${chainId}, cannot send to chain ${nodeChain}`);
  if (tx.from.toLowerCase() !== account.address.toLowerCase()) throw fail(4100, `not this wallet's account: ${tx.from}`);
  const nonce = Number(await node("eth_getTransactionCount", [account.address, "pending"]));
  const tip = BigInt(await node("eth_maxPriorityFeePerGas", []));
  const base = BigInt((await node("eth_getBlockByNumber", ["latest", false])).baseFeePerGas);
  const gas = tx.gas ? BigInt(tx.gas) : BigInt(await node("eth_estimateGas", [tx]));
  const raw = await account.signTransaction({ type: "eip1559", chainId, nonce, to: tx.to, data: tx.data,
    value: BigInt(tx.value || 0), gas, maxFeePerGas: 2n * base + tip, maxPriorityFeePerGas: tip });
  const hash = await node("eth_sendRawTransaction", [raw]);
  sent.push(hash);
  return hash;
}

window.ethereum = {
  isTestWallet: true,
  async request({ method, params = [] }) {
    log.push({ method, params });
    switch (method) {
      case "eth_requestAccounts":
      case "eth_accounts":
        return [account.address];
      case "eth_chainId":
        return numberToHex(chainId);
      case "wallet_switchEthereumChain": {
        const wanted = Number(params[0].chainId);
        if (!settings.canSwitch) throw fail(4001, "User rejected the request.");
        if (!chains.has(wanted)) throw fail(4902, `Unrecognized chain ID ${params[0].chainId}`);
        chainId = wanted;
        emit("chainChanged", numberToHex(chainId));
        return null;
      }
      case "wallet_addEthereumChain":
        chains.add(Number(params[0].chainId));
        return null;
      case "eth_sendTransaction":
        return sendTransaction(params[0]);
      case "personal_sign":
        return account.signMessage({ message: { raw: params[0] } });
      default:
        return node(method, params);
    }
  },
  on(event, f) { (listeners[event] = listeners[event] || []).push(f); },
  removeListener(event, f) { listeners[event] = (listeners[event] || []).filter((g) => g !== f); },
};

window.__wallet = {
  log, sent,
  get address() { return account.address; },
  use(key) { account = privateKeyToAccount(key); emit("accountsChanged", [account.address]); },
};
