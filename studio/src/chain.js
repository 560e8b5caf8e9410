// Reads from the node that served this page (same origin, JSON-RPC at /): the ol_ namespace,
// eth_call of the module ABIs (vm/abi, bundled from the repository), and logs in ranges the node
// allows, cached so a live page asks only for new blocks.
import { createPublicClient, defineChain, http, decodeEventLog, encodeEventTopics, toHex } from "viem";
import Datanets from "../../vm/abi/Datanets.json";
import Models from "../../vm/abi/Models.json";
import InferenceJobs from "../../vm/abi/InferenceJobs.json";
import Attribution from "../../vm/abi/Attribution.json";
import Staking from "../../vm/abi/Staking.json";
import Economics from "../../vm/abi/Economics.json";

export const ABI = { Datanets, Models, InferenceJobs, Attribution, Staking, Economics };
export const RPC = new URL("/", location.href).href;
const DEVNET_CHAIN_ID = 7167; // genesis.devnet().chain_id
const LOG_RANGE = 10_000n; // the node's eth_getLogs range cap (--rpc logs_block_range)

export const chain = { id: 0, addresses: {}, client: null, viemChain: null };

export async function connect() {
  const bare = createPublicClient({ transport: http(RPC) });
  chain.id = await bare.getChainId();
  chain.viemChain = defineChain({
    id: chain.id,
    name: chain.id === DEVNET_CHAIN_ID ? "OpenLedger devnet" : `OpenLedger (chain ${chain.id})`,
    nativeCurrency: { name: "OPEN", symbol: "OPEN", decimals: 18 },
    rpcUrls: { default: { http: [RPC] } },
  });
  chain.client = createPublicClient({ chain: chain.viemChain, transport: http(RPC, { batch: { wait: 5 } }), pollingInterval: 1000 });
  try {
    chain.addresses = await ol("modules");
  } catch (e) {
    throw new Error(`this node does not serve the ol API (${e.shortMessage || e.message}); start it with --http.api eth,net,web3,ol`);
  }
}

/** An ol_ method's answer. */
export function ol(name, ...params) {
  return chain.client.request({ method: `ol_${name}`, params });
}

export function read(module, functionName, args = [], blockNumber) {
  return chain.client.readContract({ address: chain.addresses[module], abi: ABI[module], functionName, args, blockNumber });
}

export async function count(module, fn) { return Number(await read(module, fn)); }

const logCache = new Map();

/** Every log of `module`'s `event` matching indexed `args`, decoded, oldest first. */
export async function logs(module, eventName, args = {}) {
  const key = `${module}.${eventName}.${JSON.stringify(args, (_, v) => (typeof v === "bigint" ? v.toString() : v))}`;
  const head = await chain.client.getBlockNumber();
  const cached = logCache.get(key) || { next: 0n, logs: [] };
  const topics = encodeEventTopics({ abi: ABI[module], eventName, args });
  for (let from = cached.next; from <= head; from += LOG_RANGE) {
    const to = from + LOG_RANGE - 1n < head ? from + LOG_RANGE - 1n : head;
    const found = await chain.client.request({ method: "eth_getLogs", params: [{
      address: chain.addresses[module], topics, fromBlock: toHex(from), toBlock: toHex(to) }] });
    for (const log of found) {
      const decoded = decodeEventLog({ abi: ABI[module], data: log.data, topics: log.topics });
      cached.logs.push({ ...decoded.args, blockNumber: BigInt(log.blockNumber), tx: log.transactionHash,
                         time: Number(log.blockTimestamp || 0) });
    }
  }
  cached.next = head + 1n;
  logCache.set(key, cached);
  return cached.logs;
}

/** Up to `n` block numbers spread from 1 to the head (for pictures over time). */
export async function samples(n = 40) {
  const head = Number(await chain.client.getBlockNumber());
  const step = Math.max(1, Math.ceil(head / n));
  const out = [];
  for (let b = Math.min(step, head); b < head; b += step) out.push(b);
  out.push(head);
  return [...new Set(out)];
}
