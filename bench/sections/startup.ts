/**
 * Startup with large sharded directory stores: time until the CLI serves a stored account, until
 * its index is complete, and its RSS then and after one GET of every account. The reference is
 * a bare `node -e` node:http process started the same way, and the JWT bytes on disk.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { accountJwt, randomAccountKey } from "../lib/identity.js";
import { runLoad, type LoadResult } from "../lib/load.js";
import { Child, removeDir } from "../lib/procs.js";
import { fmt, ms, table, type Cell } from "../lib/report.js";
import { startOurs, writeShardedStore, type BenchEnv } from "../lib/servers.js";

export interface StartupOptions {
  readonly sizes: readonly number[];
}

interface StartupRow {
  readonly accounts: number;
  readonly bytes: number;
  readonly runningMs: number;
  readonly firstGetMs: number;
  readonly indexedMs: number;
  readonly rssReady: number;
  readonly rssIndexed: number;
  readonly rssAfterAll: number;
  readonly getAll: LoadResult;
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

export async function startupSection(env: BenchEnv, o: StartupOptions, say: (s: string) => void): Promise<StartupFigures> {
  const max = Math.max(...o.sizes);
  say(`  signing ${max} account JWTs`);
  const accounts: Array<[string, string]> = [];
  for (let i = 0; i < max; i++) {
    const key = randomAccountKey();
    accounts.push([key, accountJwt(key, env.op.signer)]);
  }
  const lr = { root: env.root, work: env.work, cpu: env.loadCpu };
  const rows: StartupRow[] = [];
  for (const n of o.sizes) {
    const dir = join(env.work, `startup-${n}`);
    mkdirSync(dir, { recursive: true });
    say(`  writing a sharded store of ${n} accounts`);
    const subset = accounts.slice(0, n);
    const bytes = writeShardedStore(dir, subset);
    // The last account written is probed: a lazy index must still answer it at once.
    const probeKey = subset[subset.length - 1]![0];
    say(`  starting the CLI on ${n} accounts`);
    const ours = await startOurs(env, { storeDir: dir, noWait: true });
    try {
      const runningAt = await ours.proc.waitFor(/nats-account-server is running/, 120_000, 1);
      const firstGetAt = await firstOk(ours.base, probeKey, 120_000);
      const rssReady = ours.proc.rssMb();
      // A store that indexes in the background says so; an eager one is complete when running.
      let indexedAt = runningAt;
      const out = ours.proc.output();
      if (/index(ing)? .*in the background/i.test(out)) {
        indexedAt = await ours.proc.waitFor(/index(ed)? complete/i, 120_000, 2);
      }
      const rssIndexed = ours.proc.rssMb();
      const itemsFile = join(env.work, `paths-${n}.txt`);
      writeFileSync(itemsFile, subset.map(([k]) => `/jwt/v1/accounts/${k}`).join("\n") + "\n");
      say(`  GET of each of the ${n} accounts`);
      const getAll = await runLoad(lr, { url: ours.base, itemsFile, connections: 50, amount: n });
      const rssAfterAll = ours.proc.rssMb();
      rows.push({
        accounts: n,
        bytes,
        runningMs: runningAt - ours.proc.startedAt,
        firstGetMs: firstGetAt - ours.proc.startedAt,
        indexedMs: indexedAt - ours.proc.startedAt,
        rssReady,
        rssIndexed,
        rssAfterAll,
        getAll,
      });
    } finally {
      await ours.proc.stop();
      removeDir(dir);
    }
  }
  // Reference: a bare node process that reads one JWT and serves it with node:http.
  const jwtFile = join(env.work, "startup-ceiling.jwt");
  writeFileSync(jwtFile, accounts[0]![1]);
  const bare =
    `const b=require("fs").readFileSync(${JSON.stringify(jwtFile)});` +
    `require("http").createServer((q,s)=>s.end(b)).listen(0,"127.0.0.1",()=>console.error("listening"))`;
  const ref = new Child(process.execPath, ["-e", bare], { cpu: env.serverCpu, logFile: join(env.work, "bare.log") });
  const ceilingStartMs = (await ref.waitFor(/listening/, 30_000, 1)) - ref.startedAt;
  const ceilingRss = ref.rssMb();
  await ref.stop();

  const cells: Cell[][] = rows.map((r) => [
    fmt(r.accounts),
    `${(r.bytes / 2 ** 20).toFixed(1)} MB`,
    ms(r.runningMs),
    ms(r.firstGetMs),
    ms(r.indexedMs),
    r.rssReady.toFixed(0),
    r.rssIndexed.toFixed(0),
    r.rssAfterAll.toFixed(0),
    `${Math.round(r.getAll.rps)} (${Object.entries(r.getAll.statuses).map(([s, c]) => `${s}:${c}`).join(",")})`,
  ]);
  const markdown =
    table(
      ["accounts", "JWT bytes", "running ms", "first GET 200 ms", "index complete ms", "RSS ready MB", "RSS indexed MB", "RSS after GET all MB", "GET all req/s (statuses)"],
      cells,
    ) +
    `\n\nReference: a bare \`node -e\` process serving one JWT with node:http is listening ` +
    `${ms(ceilingStartMs)} ms after spawn with an RSS of ${ceilingRss.toFixed(0)} MB ` +
    `(our CLI runs from the compiled dist/).`;
  return { rows, ceilingStartMs, ceilingRss, markdown };
}
