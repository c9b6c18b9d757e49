/**
 * Durable uploads: POST of new, valid, never-seen account JWTs at high concurrency, next to the
 * legacy-equivalent reference (the Go server's work per upload, no fsync) and a naive durable write.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { accountJwt, randomAccountKey } from "../lib/identity.js";
import { runLoad, type LoadResult } from "../lib/load.js";
import type { Child } from "../lib/procs.js";
import { ms, ratio, table, type Cell } from "../lib/report.js";
import { startOurs, startRef, trustFiles, type BenchEnv } from "../lib/servers.js";

export interface PostOptions {
  readonly uploads: number;
  readonly connections: number;
}

export interface Measured {
  readonly result: LoadResult;
  /** Server CPU µs per upload (warm-up included). */
  readonly cpuUs: number;
  readonly acceptedPerSec: number;
}

export interface PostFigures {
  readonly ours: Measured;
  /** bench/ref/legacy-ref.ts: what the Go server does per upload, without fsync. */
  readonly legacy: Measured;
  /** bench/ref/durable-ref.ts: the naive durable write, no validation. */
  readonly durable: Measured;
  readonly markdown: string;
}

export async function postSection(env: BenchEnv, o: PostOptions, say: (s: string) => void): Promise<PostFigures> {
  const warmup = Math.min(1000, Math.floor(o.uploads / 10));
  // Every client builds one request ahead when it connects, so leave a margin of unused JWTs.
  const total = o.uploads + warmup + 2 * o.connections + 100;
  say(`  signing ${total} account JWTs`);
  const lines: string[] = [];
  for (let i = 0; i < total; i++) {
    const key = randomAccountKey();
    lines.push(`/jwt/v1/accounts/${key}\t${accountJwt(key, env.op.signer)}`);
  }
  const itemsFile = join(env.work, "uploads.txt");
  writeFileSync(itemsFile, lines.join("\n") + "\n");
  const lr = { root: env.root, work: env.work, cpu: env.loadCpu };
  const spec = {
    method: "POST" as const,
    itemsFile,
    connections: o.connections,
    amount: o.uploads,
    warmupAmount: warmup,
    headers: { "Content-Type": "application/jwt" },
  };

  const run = async (label: string, start: () => Promise<{ proc: Child; base: string }>): Promise<Measured> => {
    say(`  ${label}: ${o.uploads} uploads, ${o.connections} connections`);
    const server = await start();
    try {
      const before = server.proc.cpuMs();
      const r = await runLoad(lr, { ...spec, url: server.base });
      const cpuUs = ((server.proc.cpuMs() - before) * 1000) / (r.requests + r.warmupRequests);
      return { result: r, cpuUs, acceptedPerSec: (r.statuses["200"] ?? 0) / r.durationSec };
    } finally {
      await server.proc.stop();
    }
  };
  const { opFile } = trustFiles(env);
  const ours = await run("ours", () => startOurs(env));
  const legacy = await run("legacy-equivalent reference", () => startRef(env, "legacy-ref", join(env.work, "legacy-ref-store"), opFile));
  const durable = await run("durable reference", () => startRef(env, "durable-ref", join(env.work, "ref-store")));
  const refused = (r: LoadResult): number => r.requests - (r.statuses["200"] ?? 0) + r.errors;
  const row = (name: string, m: Measured): Cell[] => [
    name,
    m.result.requests,
    o.connections,
    Math.round(m.acceptedPerSec),
    ms(m.result.p50),
    ms(m.result.p99),
    refused(m.result),
    ratio(m.acceptedPerSec, legacy.acceptedPerSec),
    ratio(m.acceptedPerSec, durable.acceptedPerSec),
    Math.round(m.cpuUs),
  ];
  const markdown = table(
    ["server", "uploads", "conns", "accepted/s", "p50 ms", "p99 ms", "not accepted", "/ legacy-equivalent", "/ durable ref", "CPU µs/upload"],
    [
      row("ours (validate + durable store + history)", ours),
      row("legacy-equivalent: decode + verify + write, no fsync", legacy),
      row("durable ref: write+fsync+rename+dir fsync, no checks", durable),
    ],
  );
  return { ours, legacy, durable, markdown };
}
