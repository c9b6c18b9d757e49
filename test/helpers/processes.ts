/**
 * Real processes for tests: a nats-server 2.9.10 on a free loopback port with its own config and
 * temp dir, and our CLI; both with line capture and event-based waiting, never fixed sleeps.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { after } from "node:test";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

export function tempDir(prefix = "nas-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

/** A child process whose output lines are collected and can be awaited. */
export class Proc {
  readonly lines: string[] = [];
  private waiters: Array<{ re: RegExp; from: number; resolve: (l: string) => void }> = [];
  readonly exited: Promise<number | null>;

  readonly child: ChildProcess;

  constructor(child: ChildProcess) {
    this.child = child;
    let buf = "";
    const onData = (d: Buffer): void => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        this.lines.push(line);
        this.waiters = this.waiters.filter((w) => {
          if (w.re.test(line)) {
            w.resolve(line);
            return false;
          }
          return true;
        });
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    // "close", not "exit": the exit can be seen before the last output is read from the pipes.
    this.exited = new Promise((res) => child.on("close", (code) => res(code)));
  }

  get output(): string {
    return this.lines.join("\n");
  }

  /** Resolve with the first line (already seen from index `from`, or later) matching `re`. */
  waitFor(re: RegExp, timeoutMs = 10_000, from = 0): Promise<string> {
    const seen = this.lines.slice(from).find((l) => re.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((res, rej) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        rej(new Error(`timed out waiting for ${re} in:\n${this.output}`));
      }, timeoutMs);
      const done = (l: string): void => {
        clearTimeout(t);
        res(l);
      };
      this.waiters.push({ re, from, resolve: done });
      void this.exited.then(() => {
        setTimeout(() => {
          if (this.waiters.some((w) => w.resolve === done)) {
            clearTimeout(t);
            rej(new Error(`process exited while waiting for ${re}:\n${this.output}`));
          }
        }, 50);
      });
    });
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const t = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }
}

export interface NatsServer {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  readonly proc: Proc;
  stop(): Promise<void>;
}

/**
 * Start nats-server with `conf` (the port line is added here). Resolves once it accepts clients.
 * `port` may be given to restart a server on the same port.
 */
export async function startNatsServer(conf: string, o: { port?: number; dir?: string } = {}): Promise<NatsServer> {
  const port = o.port ?? (await freePort());
  const dir = o.dir ?? tempDir("nats-server-");
  const confFile = join(dir, "server.conf");
  writeFileSync(confFile, `listen: 127.0.0.1:${port}\n${conf}\n`);
  const child = spawn("nats-server", ["-c", confFile], { stdio: ["ignore", "pipe", "pipe"] });
  const proc = new Proc(child);
  await proc.waitFor(/Server is ready/, 15_000);
  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    dir,
    proc,
    async stop() {
      await proc.stop("SIGTERM");
      if (!o.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

let built = false;
/**
 * The installed entry point (`bin/` → `dist/`), rebuilt when a source is newer than the build
 * (`npm test` builds first, so this only costs anything when one test file is run by hand).
 */
export function cliEntry(): string {
  const dist = join(ROOT, "dist/cli.js");
  if (!built) {
    if (!existsSync(dist) || statSync(dist).mtimeMs < newestMtime(join(ROOT, "src"))) {
      execFileSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(ROOT, "tsconfig.build.json")], {
        stdio: "inherit",
      });
    }
    built = true;
  }
  return join(ROOT, "bin/nats-account-server.js");
}

/** Spawn the real CLI (the package's `nats-account-server` bin) with the given flags. */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(process.execPath, [cliEntry(), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Proc(child);
}

/** A `spawnCli` whose processes are all killed when the test file ends. */
export function trackedCli(): (args: string[]) => Proc {
  const running: Proc[] = [];
  after(async () => {
    await Promise.all(running.map((p) => p.stop("SIGKILL")));
  });
  return (args) => {
    const p = spawnCli(args);
    running.push(p);
    return p;
  };
}

export function writeFile(dir: string, name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}
