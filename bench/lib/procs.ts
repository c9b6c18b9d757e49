/**
 * Child processes for the benchmark: optionally pinned to one CPU with taskset, output sent to a
 * log file (never a pipe the bench must drain), all killed and temp dirs removed on exit.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const children = new Set<ChildProcess>();
const dirs = new Set<string>();

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout?.trim()) || 100;

export const HAS_TASKSET = spawnSync("taskset", ["-c", "0", "true"]).status === 0;

/** Register a child spawned elsewhere so that it is killed with the rest. */
export function track(child: ChildProcess): void {
  children.add(child);
  child.on("exit", () => children.delete(child));
}

export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(d);
  return d;
}

/** BENCH_KEEP=1 keeps the temp dirs (server logs, stores) for a look afterwards. */
const KEEP = process.env["BENCH_KEEP"] === "1";

export function removeDir(d: string): void {
  if (!KEEP) rmSync(d, { recursive: true, force: true });
  dirs.delete(d);
}

/** Kill whatever is still running and remove temp dirs (also run on exit and on signals). */
export function cleanupAll(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  }
  children.clear();
  for (const d of dirs) {
    if (KEEP) process.stderr.write(`kept ${d}\n`);
    else rmSync(d, { recursive: true, force: true });
  }
  dirs.clear();
}

process.on("exit", cleanupAll);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(sig, () => {
    cleanupAll();
    process.exit(130);
  });
}

export { freePort } from "../../test/helpers/processes.js";

/** `cmd args` prefixed with `taskset -c <cpu>` when a CPU is given and taskset exists. */
export function pinned(cpu: number | undefined, cmd: string, args: readonly string[]): [string, string[]] {
  if (cpu === undefined || !HAS_TASKSET) return [cmd, [...args]];
  return ["taskset", ["-c", String(cpu), cmd, ...args]];
}

export interface StartOptions {
  readonly cpu?: number;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** File that receives stdout and stderr. */
  readonly logFile: string;
}

/** A child whose output goes to a file; lines are awaited by polling that file with a deadline. */
export class Child {
  readonly child: ChildProcess;
  readonly logFile: string;
  readonly startedAt: number;
  readonly exited: Promise<number | null>;

  constructor(cmd: string, args: readonly string[], o: StartOptions) {
    const fd = openSync(o.logFile, "a");
    const [c, a] = pinned(o.cpu, cmd, args);
    this.startedAt = performance.now();
    this.child = spawn(c, a, {
      cwd: o.cwd,
      env: { ...process.env, ...(o.env ?? {}) },
      stdio: ["ignore", fd, fd],
    });
    closeSync(fd);
    this.logFile = o.logFile;
    children.add(this.child);
    this.exited = new Promise((res) =>
      this.child.on("exit", (code) => {
        children.delete(this.child);
        res(code);
      }),
    );
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  output(): string {
    try {
      return readFileSync(this.logFile, "utf8");
    } catch {
      return "";
    }
  }

  /**
   * Resolve with the time (performance.now) at which a line matching `re` was first seen.
   * Polls only the new part of the file, every `everyMs`.
   */
  async waitFor(re: RegExp, timeoutMs = 30_000, everyMs = 5): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    let offset = 0;
    let carry = "";
    const buf = Buffer.alloc(1 << 16);
    for (;;) {
      let size = 0;
      try {
        size = statSync(this.logFile).size;
      } catch {
        /* not yet created */
      }
      if (size > offset) {
        const fd = openSync(this.logFile, "r");
        try {
          while (offset < size) {
            const n = readSync(fd, buf, 0, Math.min(buf.length, size - offset), offset);
            if (n <= 0) break;
            offset += n;
            carry += buf.toString("utf8", 0, n);
            const lines = carry.split("\n");
            carry = lines.pop() ?? "";
            if (lines.some((l) => re.test(l))) return performance.now();
          }
        } finally {
          closeSync(fd);
        }
      }
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`process exited while waiting for ${re}:\n${this.output().slice(-3000)}`);
      }
      if (performance.now() > deadline) {
        throw new Error(`timed out waiting for ${re}:\n${this.output().slice(-3000)}`);
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }

  /** CPU time (user + system) the process has used so far, in ms, from /proc (10 ms ticks). */
  cpuMs(): number {
    const stat = readFileSync(`/proc/${this.pid}/stat`, "utf8");
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  }

  /** Resident set size in MB from /proc (the pid of the real process, not the taskset wrapper: taskset execs). */
  rssMb(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, "utf8");
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) / 1024 : NaN;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGTERM");
    const t = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    await this.exited;
    clearTimeout(t);
  }
}

/** Run a command to completion (used for the build); throws with its output on failure. */
export function runSync(cmd: string, args: readonly string[], cwd: string): void {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed:\n${r.stdout}${r.stderr}`);
}
