/**
 * GET throughput and latency: a stored account (hit), an unknown account (404) and the resolver
 * probe against our CLI, each next to the node:http ceiling at the same connection count.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { accountJwt, randomAccountKey } from "../lib/identity.js";
import { runLoad, type LoadResult, type LoadSpec } from "../lib/load.js";
import type { Child } from "../lib/procs.js";
import { ms, ratio, table, type Cell } from "../lib/report.js";
import { startOurs, startRef, type BenchEnv } from "../lib/servers.js";

export interface HttpOptions {
  readonly durationSec: number;
  readonly warmupSec: number;
  readonly connections: readonly number[];
  readonly rounds: number;
}

export interface HttpFigures {
  readonly rows: Array<{
    scenario: string;
    connections: number;
    ours: LoadResult;
    ceiling: LoadResult;
    /** Server CPU time per request in µs (least of the rounds): immune to other load on the machine. */
    oursCpuUs: number;
    ceilingCpuUs: number;
  }>;
  readonly markdown: string;
}

export const HIT = "GET stored account (hit)";
export const MISS = "GET unknown account (404)";

export async function httpSection(env: BenchEnv, o: HttpOptions, say: (s: string) => void): Promise<HttpFigures> {
  const key = randomAccountKey();
  const jwt = accountJwt(key, env.op.signer, { name: "HIT" });
  const jwtFile = join(env.work, "hit.jwt");
  writeFileSync(jwtFile, jwt);

  const ours = await startOurs(env);
  const post = await fetch(`${ours.base}/jwt/v1/accounts/${key}`, { method: "POST", body: jwt });
  if (post.status !== 200) throw new Error(`seeding the hit account failed: ${post.status} ${await post.text()}`);
  const ceiling = await startRef(env, "ceiling", jwtFile);

  const lr = { root: env.root, work: env.work, cpu: env.loadCpu };
  const scenarios: Array<[string, string]> = [
    [HIT, `/jwt/v1/accounts/${key}`],
    [MISS, `/jwt/v1/accounts/${randomAccountKey()}`],
    ["GET resolver probe", "/jwt/v1/accounts/"],
  ];
  // Other work on the machine comes and goes: the ceiling and our scenarios are interleaved
  // per connection count and repeated, and each figure is the best of its rounds.
  const best = new Map<string, LoadResult>();
  const cpu = new Map<string, number>();
  const measure = async (id: string, server: Child, spec: LoadSpec): Promise<void> => {
    const before = server.cpuMs();
    const r = await runLoad(lr, spec);
    const perReq = ((server.cpuMs() - before) * 1000) / (r.requests + r.warmupRequests);
    const b = best.get(id);
    if (!b || r.rps > b.rps) best.set(id, r);
    cpu.set(id, Math.min(cpu.get(id) ?? Infinity, perReq));
  };
  try {
    for (let round = 1; round <= o.rounds; round++) {
      for (const c of o.connections) {
        say(`  round ${round}/${o.rounds}: ${c} connection(s): ceiling, hit, 404, probe`);
        const spec = { connections: c, durationSec: o.durationSec, warmupSec: o.warmupSec };
        await measure(`ceiling/${c}`, ceiling.proc, { ...spec, url: ceiling.base, path: `/jwt/v1/accounts/${key}` });
        for (const [name, path] of scenarios) await measure(`${name}/${c}`, ours.proc, { ...spec, url: ours.base, path });
      }
    }
  } finally {
    await ours.proc.stop();
    await ceiling.proc.stop();
  }
  const rows: HttpFigures["rows"] = [];
  for (const [name] of scenarios) {
    for (const c of o.connections) {
      rows.push({
        scenario: name,
        connections: c,
        ours: best.get(`${name}/${c}`)!,
        ceiling: best.get(`ceiling/${c}`)!,
        oursCpuUs: cpu.get(`${name}/${c}`)!,
        ceilingCpuUs: cpu.get(`ceiling/${c}`)!,
      });
    }
  }
  const status = (r: LoadResult): string =>
    Object.entries(r.statuses)
      .map(([s, n]) => (n === r.requests ? s : `${s}:${n}`))
      .join(",") + (r.errors ? ` err:${r.errors}` : "");
  const cells: Cell[][] = rows.map((r) => [
    r.scenario,
    r.connections,
    Math.round(r.ours.rps),
    ms(r.ours.p50),
    ms(r.ours.p99),
    status(r.ours),
    Math.round(r.ceiling.rps),
    ms(r.ceiling.p50),
    ms(r.ceiling.p99),
    ratio(r.ours.rps, r.ceiling.rps),
    r.oursCpuUs.toFixed(0),
    r.ceilingCpuUs.toFixed(0),
    ratio(r.ceilingCpuUs, r.oursCpuUs),
  ]);
  const markdown = table(
    [
      "scenario", "conns", "ours req/s", "p50 ms", "p99 ms", "status", "ceiling req/s", "p50 ms", "p99 ms", "ours/ceiling",
      "ours CPU µs/req", "ceiling CPU µs/req", "ceiling/ours CPU",
    ],
    cells,
  );
  // A miss is a request too: the 404 rate and CPU next to the hit's at each connection count.
  const missCells: Cell[][] = o.connections.map((c) => {
    const hit = rows.find((r) => r.scenario === HIT && r.connections === c)!;
    const miss = rows.find((r) => r.scenario === MISS && r.connections === c)!;
    return [
      c,
      Math.round(hit.ours.rps),
      Math.round(miss.ours.rps),
      ratio(miss.ours.rps, hit.ours.rps),
      hit.oursCpuUs.toFixed(0),
      miss.oursCpuUs.toFixed(0),
      ratio(miss.oursCpuUs, hit.oursCpuUs),
    ];
  });
  const missTable = table(
    ["conns", "hit req/s", "404 req/s", "404 / hit rate", "CPU µs/hit", "CPU µs/404", "404 / hit CPU"],
    missCells,
  );
  return { rows, markdown: `${markdown}\n\nUnknown account (404) next to the stored one (hit), ours:\n\n${missTable}` };
}
