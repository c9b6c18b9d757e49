/**
 * The console over 100,000 accounts: index build time and the longest event-loop stall while it
 * is built, the memory it takes, and the time to answer list, search, filter and account pages.
 *
 *   node --import tsx bench/console.ts [--accounts=100000]
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { AccountRegistry } from "../src/accounts.js";
import { defaultConfig } from "../src/config/types.js";
import { createApp } from "../src/http/app.js";
import { consoleRoutes } from "../src/http/console/pages.js";
import { decodeOperatorJwt, Trust } from "../src/jwt/index.js";
import { silentLogger } from "../src/log.js";
import { Notifier } from "../src/nats/notifier.js";
import { MemoryStore } from "../src/store/memory.js";
import { accountJwt, makeOperator, randomAccountKey } from "./lib/identity.js";

const arg = process.argv.find((a) => a.startsWith("--accounts="));
const N = arg ? Number(arg.slice(11)) : 100_000;

const op = makeOperator();
const store = new MemoryStore();
await store.open();
const keys: string[] = [];
for (let i = 0; i < N; i++) {
  const key = randomAccountKey();
  keys.push(key);
  await store.put(key, accountJwt(key, op.signer, { name: `account-${String(i).padStart(6, "0")}` }));
}
const registry = new AccountRegistry({ store, trust: new Trust(decodeOperatorJwt(op.operatorJwt)), log: silentLogger });
const notifier = new Notifier(registry, undefined, silentLogger);

global.gc?.();
const heap0 = process.memoryUsage().heapUsed;
const stall = monitorEventLoopDelay({ resolution: 1 });
stall.enable();
const t0 = performance.now();
const routes = consoleRoutes({
  registry,
  notifier,
  operatorJwt: () => op.operatorJwt,
  config: { ...defaultConfig().ui, enabled: true },
  connection: () => undefined,
  natsServers: [],
});
const app = createApp({
  registry,
  notifier,
  log: silentLogger,
  config: { ...defaultConfig().http, host: "127.0.0.1", port: 0 },
  operatorJwt: () => op.operatorJwt,
  health: () => ({}),
  extraRoutes: routes,
});
const server: Server = createServer(app);
await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
// The first list page waits for the index.
await (await fetch(`${base}/ui/`)).text();
const built = performance.now() - t0;
stall.disable();
global.gc?.();
const heap1 = process.memoryUsage().heapUsed;

async function timed(path: string, runs = 20): Promise<string> {
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    const r = await fetch(base + path);
    bytes = (await r.arrayBuffer()).byteLength;
    if (r.status !== 200) throw new Error(`${path}: ${r.status}`);
    times.push(performance.now() - s);
  }
  times.sort((a, b) => a - b);
  return `${times[runs >> 1]!.toFixed(1)} ms median, ${times[runs - 1]!.toFixed(1)} ms max, ${(bytes / 1024).toFixed(0)} KiB`;
}

console.log(`console over ${N} accounts`);
console.log(`  index built (first page answered) in ${built.toFixed(0)} ms; longest event-loop stall meanwhile ${(stall.max / 1e6).toFixed(1)} ms`);
console.log(`  index memory ≈ ${((heap1 - heap0) / N).toFixed(0)} bytes per account${global.gc ? "" : " (run with --expose-gc for a steadier figure)"}`);
console.log(`  list page 1                 ${await timed("/ui/")}`);
console.log(`  list page 1000              ${await timed("/ui/?page=1000")}`);
console.log(`  search, one match by name   ${await timed(`/ui/?q=account-${String(N - 7).padStart(6, "0")}`)}`);
console.log(`  search, no match (full scan) ${await timed("/ui/?q=nothing-like-this")}`);
console.log(`  filter expiring (full scan) ${await timed("/ui/?filter=expiring")}`);
console.log(`  account page                ${await timed(`/ui/accounts/${keys[N >> 1]}`)}`);
server.close();
process.exit(0);
