/**
 * Large sharded directory stores for the startup section, generated once (by parallel worker
 * processes) and kept under $BENCH_CACHE, else ~/.cache/nas-bench, for the runs that follow.
 */
import { spawn } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { cpus, homedir } from "node:os";
import { join } from "node:path";
import type { GenSpec } from "../gen-worker.js";
import { accountJwt, makeOperator, operatorFromJson, operatorToJson, randomAccountKey, rawSeedHex, type OperatorSet } from "./identity.js";
import { track } from "./procs.js";

/** Bumped whenever the generated content changes: older stores are then left alone and regenerated. */
const GENERATION = 1;
const MARKER = "complete.json";

export interface CachedStore {
  /** The store directory (`<last 2>/<KEY>.jwt` files only). */
  readonly dir: string;
  /** Operator, signing key and system account that signed the store. */
  readonly op: OperatorSet;
  /** `/jwt/v1/accounts/<KEY>` per account, in the order written. */
  readonly pathsFile: string;
  /** The account written last. */
  readonly probeKey: string;
  readonly accounts: number;
  readonly bytes: number;
  /** Seconds the generation took (when this run generated the store; else the first run's figure). */
  readonly generatedSec: number;
  readonly reused: boolean;
}

interface Marker {
  readonly generation: number;
  readonly accounts: number;
  readonly bytes: number;
  readonly probeKey: string;
  readonly generatedSec: number;
  readonly createdAt: string;
}

export function cacheRoot(): string {
  return process.env["BENCH_CACHE"] || join(homedir(), ".cache", "nas-bench");
}

function runGenWorker(root: string, specFile: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(root, "bench/gen-worker.ts"), specFile], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    track(child);
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("exit", (code) => {
      if (code !== 0) reject(new Error(`store generator failed (exit ${code}):\n${err}${out}`));
      else resolve((JSON.parse(out.trim()) as { bytes: number }).bytes);
    });
  });
}

/** Remove what a server left at the top of a generated store (journal files): only shard directories stay. */
export function tidyStore(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!(e.isDirectory() && e.name.length === 2)) rmSync(join(dir, e.name), { recursive: true, force: true });
  }
}

/**
 * The cached store of `n` accounts, generated now if missing or half-written (no marker). The
 * server may leave files at the top of the store (its journal): they are removed before a run so
 * that every run starts from the same files.
 */
export async function cachedStore(root: string, n: number, say: (s: string) => void): Promise<CachedStore> {
  const base = join(cacheRoot(), `${n}-g${GENERATION}`);
  const dir = join(base, "store");
  const pathsFile = join(base, "paths.txt");
  const markerFile = join(base, MARKER);
  if (existsSync(markerFile)) {
    const m = JSON.parse(readFileSync(markerFile, "utf8")) as Marker;
    if (m.generation === GENERATION && m.accounts === n && existsSync(join(dir, m.probeKey.slice(-2), `${m.probeKey}.jwt`))) {
      tidyStore(dir);
      say(`  reusing the store of ${n} accounts in ${dir} (generated ${m.createdAt} in ${m.generatedSec.toFixed(0)} s)`);
      return { dir, op: operatorFromJson(readFileSync(join(base, "operator.json"), "utf8")), pathsFile, probeKey: m.probeKey, accounts: n, bytes: m.bytes, generatedSec: m.generatedSec, reused: true };
    }
  }
  if (existsSync(base)) {
    say(`  removing the incomplete store in ${base}`);
    rmSync(base, { recursive: true, force: true });
  }
  const t0 = performance.now();
  mkdirSync(dir, { recursive: true });
  const op = makeOperator();
  writeFileSync(join(base, "operator.json"), operatorToJson(op), { mode: 0o600 });
  const workers = Math.max(1, Math.min(4, cpus().length, Math.ceil((n - 1) / 5000)));
  say(`  generating a store of ${n} accounts in ${dir} (${workers} worker process(es); done once, reused later)`);
  const shares = Array.from({ length: workers }, (_v, i) => Math.floor((n - 1) / workers) + (i < (n - 1) % workers ? 1 : 0));
  const parts = shares.map((count, i) => {
    const spec: GenSpec = { signerSeed: rawSeedHex(op.signer), dir, count, pathsFile: join(base, `paths-${i}.txt`) };
    const specFile = join(base, `gen-${i}.json`);
    writeFileSync(specFile, JSON.stringify(spec));
    return { spec, specFile };
  });
  let bytes = 0;
  for (const b of await Promise.all(parts.map((p) => runGenWorker(root, p.specFile)))) bytes += b;
  // The probe account is written after every other one: the most recently written file.
  const probeKey = randomAccountKey();
  const probeJwt = accountJwt(probeKey, op.signer);
  mkdirSync(join(dir, probeKey.slice(-2)), { recursive: true });
  writeFileSync(join(dir, probeKey.slice(-2), `${probeKey}.jwt`), probeJwt);
  bytes += probeJwt.length;
  writeFileSync(pathsFile, "");
  for (const p of parts) {
    appendFileSync(pathsFile, readFileSync(p.spec.pathsFile));
    unlinkSync(p.spec.pathsFile);
    unlinkSync(p.specFile);
  }
  appendFileSync(pathsFile, `/jwt/v1/accounts/${probeKey}\n`);
  const generatedSec = (performance.now() - t0) / 1000;
  const marker: Marker = { generation: GENERATION, accounts: n, bytes, probeKey, generatedSec, createdAt: new Date().toISOString() };
  writeFileSync(markerFile, JSON.stringify(marker, null, 2) + "\n");
  say(`  generated ${n} accounts (${(bytes / 2 ** 20).toFixed(0)} MB of JWTs) in ${generatedSec.toFixed(0)} s`);
  return { dir, op, pathsFile, probeKey, accounts: n, bytes, generatedSec, reused: false };
}
