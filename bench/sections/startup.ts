/**
 * Startup with large sharded directory stores (generated once, bench/lib/store-cache.ts): time
 * until the CLI serves the most recently written account, until its index is complete, its RSS
 * then and after one cold GET of every account, and the rate of those GETs. The reference is a
 * bare `node -e` node:http process started the same way.
 */
import { join } from "node:path";
import { runLoad, type LoadResult } from "../lib/load.js";
import { Child } from "../lib/procs.js";
import { fmt, ms, table, type Cell } from "../lib/report.js";
import { dumpedStoreCache, startOurs, storeCacheArgs, type BenchEnv, type StoreCacheSupport } from "../lib/servers.js";
import { cachedStore, cacheRoot, tidyStore } from "../lib/store-cache.js";

export interface StartupOptions {
  readonly sizes: readonly number[];
  /** Response-cache size handed to the server (`--store-cache`); undefined: the server's default. */
  readonly storeCache: string | undefined;
  readonly cacheSupport: StoreCacheSupport;
  /** Connections of the GET of every account. */
  readonly connections: number;
}

export interface StartupRow {
  readonly accounts: number;
  readonly bytes: number;
  /** The store cache the run used, as far as the server tells. */
  readonly cache: string;
  readonly runningMs: number;
  readonly firstGetMs: number;
  readonly indexedMs: number;
  readonly rssReady: number;
  readonly rssIndexed: number;
  readonly rssAfterAll: number;
  readonly getAll: LoadResult;
  /** Server CPU µs per GET of the GET-all run. */
  readonly getAllCpuUs: number;
  readonly generatedSec: number;
  readonly reused: boolean;
}

export interface StartupFigures {
  readonly rows: StartupRow[];
  readonly ceilingStartMs: number;
  readonly ceilingRss: number;
  readonly markdown: string;
}

/** Poll GET of `key` until it answers 200; returns the time it did. */
async function firstOk(base: string, key: string, deadlineMs: number): Promise<number> {
  const end = performance.now() + deadlineMs;
  for (;;) {
    try {
      const r = await fetch(`${base}/jwt/v1/accounts/${key}`);
      await r.arrayBuffer();
      if (r.status === 200) return performance.now();
    } catch {
      /* not listening yet */
    }
    if (performance.now() > end) throw new Error(`no 200 for a stored account within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** What the run's store cache was: what we passed, what the server's -dump says, or that it has none. */
function cacheLabel(o: StartupOptions, log: string): string {
  const dumped = dumpedStoreCache(log);
  if (!o.cacheSupport.flag && !o.cacheSupport.config) return "none (no store.cache setting)";
  if (o.storeCache !== undefined) return dumped ? `${o.storeCache} (${dumped})` : o.storeCache;
  return dumped ? `default (${dumped})` : "default";
}

export async function startupSection(env: BenchEnv, o: StartupOptions, say: (s: string) => void): Promise<StartupFigures> {
  const lr = { root: env.root, work: env.work, cpu: env.loadCpu };
  const rows: StartupRow[] = [];
  let probeJwtFile = "";
  const cache = o.storeCache !== undefined ? storeCacheArgs(o.cacheSupport, o.storeCache) : { cliArgs: [], storeConf: "" };
  if (o.storeCache !== undefined && !o.cacheSupport.flag && !o.cacheSupport.config) {
    say(`  the server has no store cache setting (not in its --help): --store-cache=${o.storeCache} is not applied`);
  }
  for (const n of o.sizes) {
    const store = await cachedStore(env.root, n, say);
    probeJwtFile = join(store.dir, store.probeKey.slice(-2), `${store.probeKey}.jwt`);
    say(`  starting the CLI on ${n} accounts`);
    // Its own files (history, outbox, …) go to this run's temp dir: every run starts from the same store.
    const storeConf = [`  statedir: "${join(env.work, `startup-state-${n}`)}"`, cache.storeConf].join("\n");
    const ours = await startOurs(env, { op: store.op, storeDir: store.dir, storeConf, cliArgs: [...cache.cliArgs, "-dump"], noWait: true });
    try {
      const runningAt = await ours.proc.waitFor(/nats-account-server is running/, 300_000, 1);
      const firstGetAt = await firstOk(ours.base, store.probeKey, 300_000);
      const rssReady = ours.proc.rssMb();
      // A store that indexes in the background says so; an eager one is complete when running.
      let indexedAt = runningAt;
      if (/index(ing)? .*in the background/i.test(ours.proc.output())) {
        indexedAt = await ours.proc.waitFor(/index(ed)? complete/i, 1_800_000, 2);
      }
      const rssIndexed = ours.proc.rssMb();
      say(`  GET of each of the ${n} accounts, ${o.connections} connections`);
      const before = ours.proc.cpuMs();
      const getAll = await runLoad(lr, { url: ours.base, itemsFile: store.pathsFile, connections: o.connections, amount: n });
      const getAllCpuUs = ((ours.proc.cpuMs() - before) * 1000) / getAll.requests;
      const rssAfterAll = ours.proc.rssMb();
      rows.push({
        accounts: n,
        bytes: store.bytes,
        cache: cacheLabel(o, ours.proc.output()),
        runningMs: runningAt - ours.proc.startedAt,
        firstGetMs: firstGetAt - ours.proc.startedAt,
        indexedMs: indexedAt - ours.proc.startedAt,
        rssReady,
        rssIndexed,
        rssAfterAll,
        getAll,
        getAllCpuUs,
        generatedSec: store.generatedSec,
        reused: store.reused,
      });
    } finally {
      await ours.proc.stop();
      tidyStore(store.dir);
    }
  }
  // Reference: a bare node process that reads one JWT and serves it with node:http.
  const bare =
    `const b=require("fs").readFileSync(${JSON.stringify(probeJwtFile)});` +
    `require("http").createServer((q,s)=>s.end(b)).listen(0,"127.0.0.1",()=>console.error("listening"))`;
  const ref = new Child(process.execPath, ["-e", bare], { cpu: env.serverCpu, logFile: join(env.work, "bare.log") });
  const ceilingStartMs = (await ref.waitFor(/listening/, 30_000, 1)) - ref.startedAt;
  const ceilingRss = ref.rssMb();
  await ref.stop();

  const statuses = (r: LoadResult): string =>
    Object.entries(r.statuses).map(([s, c]) => `${s}:${c}`).join(",") + (r.errors ? ` err:${r.errors}` : "");
  const cells: Cell[][] = rows.map((r) => [
    fmt(r.accounts),
    `${(r.bytes / 2 ** 20).toFixed(0)} MB`,
    r.cache,
    ms(r.runningMs),
    ms(r.firstGetMs),
    ms(r.indexedMs),
    r.rssReady.toFixed(0),
    r.rssIndexed.toFixed(0),
    r.rssAfterAll.toFixed(0),
    `${Math.round(r.getAll.rps)} (${statuses(r.getAll)})`,
    r.getAllCpuUs.toFixed(0),
  ]);
  const generated = rows
    .map((r) => `${fmt(r.accounts)}: ${r.generatedSec.toFixed(0)} s${r.reused ? " (earlier run)" : " (this run)"}`)
    .join(", ");
  const markdown =
    table(
      [
        "accounts", "JWT bytes", "store cache", "running ms", "first GET 200 ms", "index complete ms", "RSS ready MB",
        "RSS indexed MB", "RSS after GET all MB", "cold GET all req/s (statuses)", "CPU µs/GET",
      ],
      cells,
    ) +
    `\n\nThe stores are generated once and kept in ${cacheRoot()} (generation: ${generated}); each run starts ` +
    "from the same files with an empty state directory. Reference: a bare `node -e` process serving one JWT " +
    `with node:http is listening ${ms(ceilingStartMs)} ms after spawn with an RSS of ${ceilingRss.toFixed(0)} MB ` +
    "(our CLI runs from the compiled dist/).";
  return { rows, ceilingStartMs, ceilingRss, markdown };
}
