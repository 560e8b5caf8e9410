// The wallet: any EIP-1193 provider the browser injects (window.ethereum). The node never signs:
// every transaction is built here, checked against the chain (balance, eth_estimateGas with the
// module's revert reason, the wallet's network) and only then handed to the wallet to sign and send.
import { encodeFunctionData, formatEther, numberToHex } from "viem";
import { ABI, RPC, chain } from "./chain.js";
import { open } from "./html.js";

/** A refusal to show the user as it is (plain words; nothing was sent). */
export class UserError extends Error {}

export const wallet = { account: null, chainId: null, listeners: [] };

const provider = () => window.ethereum;
const changed = () => wallet.listeners.forEach((f) => f());

export function watchWallet() {
  const eth = provider();
  if (!eth || !eth.on) return;
  eth.on("accountsChanged", (accounts) => { wallet.account = accounts[0] || null; changed(); });
  eth.on("chainChanged", (id) => { wallet.chainId = Number(id); changed(); });
  eth.request({ method: "eth_accounts" }).then(async (accounts) => {
    wallet.account = accounts[0] || null;
    wallet.chainId = Number(await eth.request({ method: "eth_chainId" }));
    changed();
  }).catch(() => {});
}

function walletWords(e) {
  if (e instanceof UserError) return e;
  if (e && e.code === 4001) return new UserError("You declined the request in your wallet. Nothing was sent.");
  return new UserError(`The wallet refused: ${e && e.message ? e.message : e}. Nothing was sent.`);
}

export async function connectWallet() {
  const eth = provider();
  if (!eth) throw new UserError("No wallet found in this browser: install MetaMask or another wallet to sign. Everything else works without one.");
  try {
    const accounts = await eth.request({ method: "eth_requestAccounts" });
    wallet.account = accounts[0];
    wallet.chainId = Number(await eth.request({ method: "eth_chainId" }));
  } catch (e) { throw walletWords(e); }
  changed();
  return wallet.account;
}

/** Bring the wallet to this node's chain: switch, or add it first (EIP-3085/3326). */
export async function ensureChain() {
  const eth = provider();
  wallet.chainId = Number(await eth.request({ method: "eth_chainId" }));
  if (wallet.chainId === chain.id) return;
  const was = wallet.chainId;
  const hex = numberToHex(chain.id);
  try {
    try {
      await eth.request({ method: "wallet_switchEthereumChain", params: [{ chainId: hex }] });
    } catch (e) {
      if (e.code !== 4902) throw e;
      await eth.request({ method: "wallet_addEthereumChain", params: [{
        chainId: hex, chainName: chain.viemChain.name, rpcUrls: [RPC],
        nativeCurrency: { name: "OPEN", symbol: "OPEN", decimals: 18 } }] });
      // MetaMask switches as it adds; EIP-3085 does not promise it
      if (Number(await eth.request({ method: "eth_chainId" })) !== chain.id) {
        await eth.request({ method: "wallet_switchEthereumChain", params: [{ chainId: hex }] });
      }
    }
    wallet.chainId = Number(await eth.request({ method: "eth_chainId" }));
  } catch (e) {
    changed();
    throw new UserError(`Wrong network: your wallet is on chain ${was}, this node is chain ${chain.id} `
      + `(${chain.viemChain.name}), and the wallet did not switch (${e.code === 4001 ? "declined" : e.message}). Nothing was sent.`);
  }
  changed();
  if (wallet.chainId !== chain.id) {
    throw new UserError(`Wrong network: your wallet is on chain ${wallet.chainId}, this node is chain ${chain.id}. Nothing was sent.`);
  }
}

/** The reason the node gave for refusing a call, without the JSON-RPC wrapping. */
export function reason(e) {
  const text = (e && (e.details || e.shortMessage || e.message)) || String(e);
  return text.replace(/^execution reverted:?\s*/i, "");
}

/**
 * Check, sign (in the wallet) and send `module.fn(args)` with `value`; `prepare` runs after the
 * checks pass and before the wallet is asked (it stores blobs the transaction names).
 * Returns the receipt; throws UserError with plain words when anything refuses.
 */
export async function send({ module, fn, args = [], value = 0n, prepare, status = () => {} }) {
  const from = await connectWallet();
  await ensureChain();
  const to = chain.addresses[module];
  const data = encodeFunctionData({ abi: ABI[module], functionName: fn, args });
  const balance = await chain.client.getBalance({ address: from });
  if (balance < value) {
    throw new UserError(`This needs ${open(value)} (plus gas), and ${from} holds ${open(balance)}. Nothing was sent.`);
  }
  let gas;
  try {
    gas = BigInt(await chain.client.request({ method: "eth_estimateGas",
      params: [{ from, to, data, value: numberToHex(value) }] }));
  } catch (e) {
    throw new UserError(`The chain would refuse this: ${reason(e)}. Nothing was sent.`);
  }
  const block = await chain.client.getBlock();
  const tip = BigInt(await chain.client.request({ method: "eth_maxPriorityFeePerGas" }));
  const maxFee = 2n * block.baseFeePerGas + tip;
  const gasCost = (gas * 6n / 5n) * maxFee;
  if (balance < value + gasCost) {
    throw new UserError(`This needs ${open(value)} plus up to ${formatEther(gasCost)} OPEN of gas, and ${from} holds `
      + `${open(balance)}. Nothing was sent.`);
  }
  if (prepare) await prepare();
  status("Waiting for your wallet to sign…");
  let txHash;
  try {
    txHash = await provider().request({ method: "eth_sendTransaction", params: [{
      from, to, data, value: numberToHex(value), gas: numberToHex(gas * 6n / 5n) }] });
  } catch (e) { throw walletWords(e); }
  status(`Sent ${txHash}; waiting for a block…`);
  const receipt = await chain.client.waitForTransactionReceipt({ hash: txHash, pollingInterval: 250 });
  if (receipt.status !== "success") {
    let why = "";
    try {
      await chain.client.call({ account: from, to, data, value, blockNumber: receipt.blockNumber - 1n });
    } catch (e) { why = `: ${reason(e)}`; }
    throw new UserError(`Transaction ${txHash} was mined but reverted${why}.`);
  }
  return receipt;
}
