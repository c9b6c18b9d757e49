/**
 * Runs one autocannon measurement in a child process pinned to the load generator's CPU and
 * returns its figures (requests/s and exact p50/p99 from every response time).
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pinned, track } from "./procs.js";

export interface LoadSpec {
  readonly url: string;
  readonly connections: number;
  readonly method?: "GET" | "POST";
  /** Fixed path for every request. */
  readonly path?: string;
  /** File of `path` or `path<TAB>body` lines, each used once in turn (cycled when exhausted). */
  readonly itemsFile?: string;
  readonly headers?: Record<string, string>;
  readonly durationSec?: number;
  /** Stop after this many requests instead of after a duration. */
  readonly amount?: number;
  readonly warmupSec?: number;
  readonly warmupAmount?: number;
  readonly timeoutSec?: number;
}

export interface LoadResult {
  readonly requests: number;
  /** Requests of the warm-up run before the measured one. */
  readonly warmupRequests: number;
  readonly durationSec: number;
  readonly rps: number;
  /** Milliseconds. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly statuses: Record<string, number>;
  readonly errors: number;
  readonly timeouts: number;
}

export interface LoadRunner {
  readonly root: string;
  readonly work: string;
  readonly cpu: number | undefined;
}

let seq = 0;

/** Run the load worker; a hard deadline kills it if autocannon hangs. */
export function runLoad(r: LoadRunner, spec: LoadSpec): Promise<LoadResult> {
  const file = join(r.work, `load-${++seq}.json`);
  writeFileSync(file, JSON.stringify(spec));
  const [cmd, args] = pinned(r.cpu, process.execPath, ["--import", "tsx", join(r.root, "bench/load-worker.ts"), file]);
  // A fixed amount is allowed 3 ms per request on top: a million cold GETs take many minutes on
  // a machine shared with other work (the run's --budget still bounds everything).
  const budgetMs =
    ((spec.durationSec ?? 5) + (spec.warmupSec ?? 0)) * 1000 +
    (spec.amount !== undefined ? 120_000 + 3 * (spec.amount + (spec.warmupAmount ?? 0)) : 0) +
    60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: r.root, stdio: ["ignore", "pipe", "pipe"] });
    track(child);
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), budgetMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      const line = out.trim().split("\n").pop() ?? "";
      if (code !== 0 || line === "") {
        reject(new Error(`load worker failed (exit ${code}):\n${err}${out}`));
        return;
      }
      resolve(JSON.parse(line) as LoadResult);
    });
  });
}
