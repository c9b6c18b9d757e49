/**
 * Validation cost of the heaviest account JWTs that fit the body limit: in-process time per shape,
 * then over HTTP the upload's answer time and the latency of GETs sent to the same server meanwhile.
 *
 *   node --import tsx bench/validation.ts [--limit=BYTES] [--in-process-only] [--no-build] [--only=SUBSTRING]
 *     [--server-root=DIR]   (run the CLI of another checkout, e.g. an older commit, over HTTP)
 */
import { cpus } from "node:os";
import { Agent, request } from "node:http";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { decodeAccountJwt } from "../src/jwt/decode.js";
import { validateAccountClaims } from "../src/jwt/validate.js";
import { heavyShapes } from "../test/helpers/heavy-jwts.js";
import { makeOperator, newIdentity, newJti, nowSec, signJwt } from "./lib/identity.js";
import { cleanupAll, HAS_TASKSET, runSync, tempDir } from "./lib/procs.js";
import { fmt, machine, table } from "./lib/report.js";
import { startOurs, type BenchEnv } from "./lib/servers.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const UNLIMITED = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };

const arg = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const flag = (name: string): boolean => process.argv.includes(`--${name}`);

const limit = Number(arg("limit") ?? 1024 * 1024);
const only = arg("only");
const say = (s: string): void => void process.stderr.write(`${s}\n`);

interface Probe {
  count: number;
  max: number;
  errors: number;
}

/** GETs of one stored account back to back until `stop()`; each one's latency is recorded. */
function probeLoop(base: string, path: string): { stop: () => Promise<Probe> } {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const probe: Probe = { count: 0, max: 0, errors: 0 };
  let running = true;
  const one = (): Promise<void> =>
    new Promise((res) => {
      const t0 = performance.now();
      // A GET that fails (the server closed the connection meanwhile) counts with its duration too.
      const end = (failed: boolean): void => {
        if (failed) probe.errors++;
        else probe.count++;
        probe.max = Math.max(probe.max, performance.now() - t0);
        res();
      };
      request(`${base}${path}`, { agent }, (r) => {
        r.resume();
        r.on("end", () => end(false));
      })
        .on("error", () => end(true))
        .end();
    });
  const done = (async () => {
    while (running) await one();
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      agent.destroy();
      return probe;
    },
  };
}

function post(base: string, path: string, body: string): Promise<{ status: number; ms: number; text: string }> {
  return new Promise((res) => {
    const t0 = performance.now();
    const req = request(`${base}${path}`, { method: "POST", headers: { "Content-Type": "application/jwt" } }, (r) => {
      const chunks: Buffer[] = [];
      r.on("data", (c: Buffer) => chunks.push(c));
      r.on("end", () => res({ status: r.statusCode ?? 0, ms: performance.now() - t0, text: Buffer.concat(chunks).toString() }));
    });
    req.on("error", (err) => res({ status: 0, ms: performance.now() - t0, text: err.message }));
    req.end(body);
  });
}

async function main(): Promise<void> {
  const op = makeOperator();
  const iat = nowSec();
  const claimsFor = (sub: string) => (nats: Record<string, unknown>) => ({
    jti: newJti(),
    iat,
    iss: op.signer.pub,
    name: "HEAVY",
    sub,
    nats: { limits: UNLIMITED, default_permissions: { pub: {}, sub: {} }, ...nats, type: "account", version: 2 },
  });
  // One account per shape so that no upload is ordered against another.
  const shapes = heavyShapes(limit, claimsFor("A".repeat(56))).filter((s) => !only || s.name.includes(only));
  const jwts = shapes.map((s) => {
    const acct = newIdentity("account");
    return { shape: s, key: acct.pub, jwt: signJwt(claimsFor(acct.pub)(s.nats), op.signer) };
  });

  say(`in process: decode + validate, limit ${limit} bytes`);
  const rows: (string | number)[][] = [];
  for (const { shape, jwt } of jwts) {
    // One warm-up run, then up to 5 (3 s at most): wall time, and CPU time, which other load on
    // the machine disturbs far less.
    const wall: number[] = [];
    const cpu: number[] = [];
    let issues = 0;
    for (let r = 0; r < 6; r++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const d = decodeAccountJwt(jwt);
      issues = validateAccountClaims(d, nowSec()).filter((i) => i.blocking).length;
      const t = performance.now() - t0;
      const c = process.cpuUsage(c0);
      if (r > 0 || t > 3000) {
        wall.push(t);
        cpu.push((c.user + c.system) / 1000);
      }
      if (wall.reduce((a, b) => a + b, 0) > 3000) break;
    }
    const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? NaN;
    rows.push([shape.name, shape.count, jwt.length, fmt(median(wall), 1), fmt(median(cpu), 1), issues]);
    say(`  ${shape.name}: ${fmt(median(wall), 1)} ms`);
  }
  process.stdout.write(`\n${machine(ROOT)}\n\nIn-process decode + validate (median after a warm-up run):\n\n`);
  process.stdout.write(table(["shape", "entries", "JWT bytes", "wall ms", "CPU ms", "blocking issues"], rows) + "\n");
  if (flag("in-process-only")) return;

  if (!flag("no-build") && !arg("server-root")) runSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], ROOT);
  const work = tempDir("nas-bench-validation-");
  const twoCpus = HAS_TASKSET && cpus().length >= 2;
  const env: BenchEnv = { root: resolve(arg("server-root") ?? ROOT), work, serverCpu: twoCpus ? 0 : undefined, loadCpu: twoCpus ? 1 : undefined, op };
  const ours = await startOurs(env);
  const probePath = `/jwt/v1/accounts/${op.sys.pub}`;
  const httpRows: (string | number)[][] = [];
  try {
    // Idle figure first: what a probe costs when nothing else happens.
    const idle = probeLoop(ours.base, probePath);
    await new Promise((r) => setTimeout(r, 500));
    const idleP = await idle.stop();
    httpRows.push(["(no upload)", "", "", "", idleP.count, fmt(idleP.max, 1), idleP.errors]);
    for (const { shape, key, jwt } of jwts) {
      const probes = probeLoop(ours.base, probePath);
      await new Promise((r) => setTimeout(r, 50));
      const r = await post(ours.base, `/jwt/v1/accounts/${key}`, jwt);
      const p = await probes.stop();
      const verdict = r.status === 0 ? r.text : r.status === 200 || r.status === 201 ? "accepted" : `${r.status}`;
      httpRows.push([shape.name, jwt.length, verdict, fmt(r.ms, 1), p.count, fmt(p.max, 1), p.errors]);
      say(`  ${shape.name}: ${r.status} in ${fmt(r.ms, 1)} ms, probe max ${fmt(p.max, 1)} ms`);
      if ((r.status < 300) !== shape.accepted) say(`    unexpected verdict: ${r.text.slice(0, 300)}`);
    }
  } finally {
    await ours.proc.stop();
  }
  process.stdout.write(
    `\nOver HTTP (real CLI${twoCpus ? ", server on CPU 0, bench on CPU 1" : ""}): POST answer time, and GETs of the ` +
      "system account sent back to back on one keep-alive connection meanwhile (their worst latency is how long " +
      "the server's event loop was unavailable):\n\n",
  );
  process.stdout.write(table(["shape", "JWT bytes", "verdict", "POST ms", "GETs meanwhile", "worst GET ms", "failed GETs"], httpRows) + "\n");
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(cleanupAll);
