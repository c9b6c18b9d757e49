/**
 * Durable uploads: POST of new, valid, never-seen account JWTs at high concurrency, next to a
 * node:http server doing the naive durable write per request with no validation at all.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { accountJwt, randomAccountKey } from "../lib/identity.js";
import { runLoad, type LoadResult } from "../lib/load.js";
import { ms, ratio, table } from "../lib/report.js";
import { startOurs, startRef, type BenchEnv } from "../lib/servers.js";

export interface PostOptions {
  readonly uploads: number;
  readonly connections: number;
}

export interface PostFigures {
  readonly ours: LoadResult;
  readonly reference: LoadResult;
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

  say(`  ours: ${o.uploads} uploads, ${o.connections} connections`);
  const ours = await startOurs(env);
  let oursR: LoadResult;
  let oursCpu: number;
  try {
    const before = ours.proc.cpuMs();
    oursR = await runLoad(lr, { ...spec, url: ours.base });
    oursCpu = ((ours.proc.cpuMs() - before) * 1000) / (oursR.requests + oursR.warmupRequests);
  } finally {
    await ours.proc.stop();
  }
  say("  reference: naive durable write per request");
  const ref = await startRef(env, "durable-ref", join(env.work, "ref-store"));
  let refR: LoadResult;
  let refCpu: number;
  try {
    const before = ref.proc.cpuMs();
    refR = await runLoad(lr, { ...spec, url: ref.base });
    refCpu = ((ref.proc.cpuMs() - before) * 1000) / (refR.requests + refR.warmupRequests);
  } finally {
    await ref.proc.stop();
  }
  const ok = (r: LoadResult): number => r.statuses["200"] ?? 0;
  const refused = (r: LoadResult): number => r.requests - ok(r) + r.errors;
  const markdown = table(
    ["server", "uploads", "conns", "accepted/s", "p50 ms", "p99 ms", "not accepted", "vs reference", "CPU µs/upload"],
    [
      ["ours (validate + durable store + history)", oursR.requests, o.connections, Math.round(ok(oursR) / oursR.durationSec), ms(oursR.p50), ms(oursR.p99), refused(oursR), ratio(ok(oursR) / oursR.durationSec, ok(refR) / refR.durationSec), Math.round(oursCpu)],
      ["reference: naive write+fsync+rename+dir fsync", refR.requests, o.connections, Math.round(ok(refR) / refR.durationSec), ms(refR.p50), ms(refR.p99), refused(refR), "1.00", Math.round(refCpu)],
    ],
  );
  return { ours: oursR, reference: refR, markdown };
}
