/**
 * One autocannon load run in its own process (so it can be pinned to its own CPU). Reads a
 * LoadSpec JSON file named on the command line, prints one LoadResult JSON line.
 */
import { readFileSync } from "node:fs";
import autocannon from "autocannon";
import type { LoadResult, LoadSpec } from "./lib/load.js";

interface Item {
  readonly path: string;
  readonly body: string | undefined;
}

function readItems(file: string): Item[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => {
      const tab = l.indexOf("\t");
      return tab < 0 ? { path: l, body: undefined } : { path: l.slice(0, tab), body: l.slice(tab + 1) };
    });
}

async function once(spec: LoadSpec, items: Item[] | undefined, cursor: { i: number }, seconds: number, amount?: number): Promise<LoadResult> {
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const method = spec.method ?? "GET";
  const request: autocannon.Request = items
    ? {
        method,
        setupRequest: (req) => {
          const it = items[cursor.i++ % items.length]!;
          return { ...req, method, path: it.path, ...(it.body !== undefined ? { body: it.body } : {}) };
        },
      }
    : { method, path: spec.path ?? "/" };
  const opts: autocannon.Options = {
    url: spec.url,
    connections: spec.connections,
    timeout: spec.timeoutSec ?? 10,
    requests: [request],
    ...(amount !== undefined ? { amount } : { duration: seconds }),
    ...(spec.headers ? { headers: spec.headers } : {}),
  };
  const t0 = performance.now();
  let last = t0;
  // Without a callback autocannon returns its tracker: an EventEmitter that is also thenable.
  const instance = autocannon(opts) as unknown as autocannon.Instance & Promise<autocannon.Result>;
  instance.on("response", (_client: unknown, status: number, _bytes: number, ms: number) => {
    latencies.push(ms);
    statuses[status] = (statuses[status] ?? 0) + 1;
    last = performance.now();
  });
  const r = await instance;
  // With `amount`, autocannon notices the end on its one-second tick: time to the last response
  // instead, or every rate would be rounded down to "amount / whole seconds".
  const durationSec = ((amount !== undefined ? last : performance.now()) - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number): number =>
    latencies.length === 0 ? NaN : latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!;
  return {
    requests: latencies.length,
    warmupRequests: 0,
    durationSec,
    rps: latencies.length / durationSec,
    p50: pct(50),
    p99: pct(99),
    max: latencies.length ? latencies[latencies.length - 1]! : NaN,
    statuses,
    errors: r.errors,
    timeouts: r.timeouts,
  };
}

async function main(): Promise<void> {
  const spec = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as LoadSpec;
  const items = spec.itemsFile ? readItems(spec.itemsFile) : undefined;
  const cursor = { i: 0 };
  // Warm both sides' JIT and the connections' code paths; results are dropped.
  let warmupRequests = 0;
  if ((spec.warmupSec ?? 0) > 0 || (spec.warmupAmount ?? 0) > 0) {
    warmupRequests = (await once(spec, items, cursor, spec.warmupSec ?? 1, spec.warmupAmount)).requests;
  }
  const result = await once(spec, items, cursor, spec.durationSec ?? 5, spec.amount);
  process.stdout.write(JSON.stringify({ ...result, warmupRequests }) + "\n");
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
