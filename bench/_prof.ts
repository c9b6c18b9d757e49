import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
import { join } from "node:path";
import { makeOperator, accountJwt, randomAccountKey } from "./lib/identity.js";
import { tempDir, cleanupAll } from "./lib/procs.js";
import { startOurs, startRef } from "./lib/servers.js";
import { runLoad } from "./lib/load.js";
const root = "/work/main";
const work = tempDir("prof-");
const env = { root, work, serverCpu: 0, loadCpu: 1, op: makeOperator() };
const key = randomAccountKey();
const jwt = accountJwt(key, env.op.signer);
const mode = process.argv[2] ?? "hit";
const nodeArgs = process.argv[3] === "prof" ? ["--cpu-prof", "--cpu-prof-dir=/tmp/prof"] : [];
const extra = process.argv.slice(4);
if (mode === "post" || mode === "ref") {
  const lines: string[] = [];
  for (let i = 0; i < 4000; i++) { const k = randomAccountKey(); lines.push(`/jwt/v1/accounts/${k}\t${accountJwt(k, env.op.signer)}`); }
  const itemsFile = join(work, "items.txt"); writeFileSync(itemsFile, lines.join("\n") + "\n");
  const srv = mode === "post" ? await startOurs(env, { nodeArgs, shard: !extra.includes("flat"), env: { UV_THREADPOOL_SIZE: process.env.TP ?? "4" } }) : await startRef(env, "durable-ref", join(work, "ref"));
  const c0 = srv.proc.cpuMs();
  const st = () => { const t = require("node:fs").readFileSync(`/proc/${srv.proc.pid}/stat`, "utf8"); const f = t.slice(t.lastIndexOf(")") + 2).split(" "); return [Number(f[11]), Number(f[12])]; };
  const s0 = st();
  const r = await runLoad({ root, work, cpu: 1 }, { url: srv.base, method: "POST", itemsFile, connections: 50, amount: 3000, warmupAmount: 500 });
  console.log(mode, Math.round(r.rps), r.p50.toFixed(2), r.p99.toFixed(2), JSON.stringify(r.statuses), "cpu µs/req", ((srv.proc.cpuMs() - c0) * 1000 / 3500).toFixed(0));
  const s1 = st(); console.log("utime ticks", s1[0]! - s0[0]!, "stime ticks", s1[1]! - s0[1]!);
  await srv.proc.stop();
} else {
  const ours = await startOurs(env, { nodeArgs });
  await fetch(`${ours.base}/jwt/v1/accounts/${key}`, { method: "POST", body: jwt });
  const path = mode === "hit" ? `/jwt/v1/accounts/${key}` : mode === "404" ? `/jwt/v1/accounts/${randomAccountKey()}` : "/jwt/v1/accounts/";
  const r = await runLoad({ root, work, cpu: 1 }, { url: ours.base, path, connections: 50, durationSec: 5, warmupSec: 1 });
  console.log(mode, Math.round(r.rps), r.p50.toFixed(2), r.p99.toFixed(2), JSON.stringify(r.statuses));
  await ours.proc.stop();
}
cleanupAll();
