/**
 * Tools for the reliability tests: a seeded PRNG, the real CLI compiled once per test process
 * (fast restarts for kill loops), raw HTTP on loopback, and readers for the store and state dirs.
 */
import { spawn } from "node:child_process";
import { createPrivateKey, sign as edSign } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { request as httpRequest, type Agent } from "node:http";
import { connect as netConnect, createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { dirname, join, relative } from "node:path";
import { transform } from "esbuild";
import type { KeyPair } from "./fixtures.js";
import { Proc, ROOT, tempDir } from "./processes.js";

/** Deterministic PRNG (mulberry32): the same seed gives the same kill points and workloads. */
export function prng(seed: number): { next: () => number; int: (lo: number, hi: number) => number; pick: <T>(xs: readonly T[]) => T } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1));
  return { next, int, pick: (xs) => xs[Math.floor(next() * xs.length)]! };
}

const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function base32Decode(s: string): Buffer {
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const c of s) {
    value = (value << 5) | B32.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/**
 * The same key signing through node:crypto (about 100 times faster than the pure-JS nkeys), so
 * load generators are limited by the server, not by minting JWTs.
 */
export function fastSigner(kp: KeyPair): KeyPair {
  const raw = base32Decode(new TextDecoder().decode(kp.getSeed())).subarray(2, 34);
  const der = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), raw]);
  const key = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
  const fast = Object.create(kp) as KeyPair;
  // nkeys derives the public key from the seed on every call, which is as slow as a signature.
  const pub = kp.getPublicKey();
  fast.getPublicKey = (): string => pub;
  fast.sign = (data: Uint8Array): Uint8Array => new Uint8Array(edSign(null, data, key));
  return fast;
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );
}

let compiled: Promise<string> | undefined;

/**
 * The sources turned into JavaScript the way tsx does it (esbuild, file by file, same layout),
 * once per test process: a restart then costs a plain node start instead of a loader start,
 * which kill loops do dozens of times.
 */
function compileCli(): Promise<string> {
  compiled ??= (async () => {
    const out = tempDir("nas-cli-");
    for (const file of walk(join(ROOT, "src")).filter((f) => f.endsWith(".ts"))) {
      const { code } = await transform(readFileSync(file, "utf8"), {
        loader: "ts",
        format: "esm",
        target: "node20",
        sourcefile: file,
      });
      const dest = join(out, relative(ROOT, file)).replace(/\.ts$/, ".js");
      mkdirSync(dirname(dest), { recursive: true });
      writeFileSync(dest, code);
    }
    writeFileSync(join(out, "package.json"), readFileSync(join(ROOT, "package.json")));
    if (!existsSync(join(out, "node_modules"))) symlinkSync(join(ROOT, "node_modules"), join(out, "node_modules"));
    const entry = join(out, "run-cli.js");
    writeFileSync(entry, 'import { run } from "./src/cli.js";\nrun(process.argv.slice(2));\n');
    return entry;
  })();
  return compiled;
}

/** Start the real CLI (compiled from the current sources) with `args`. */
export async function spawnFastCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Proc> {
  const entry = await compileCli();
  const child = spawn(process.execPath, [entry, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Proc(child);
}

/** The HTTP port a CLI reports once it listens. */
export async function portOf(p: Proc, timeoutMs = 15_000, from = 0): Promise<number> {
  const line = await p.waitFor(/listening on port \d+/, timeoutMs, from);
  return Number(/port (\d+)/.exec(line)![1]);
}

/** Every file below `dir` (empty when it does not exist). */
export function filesBelow(dir: string): string[] {
  return existsSync(dir) ? walk(dir) : [];
}

/** The keys in the notification outbox of a state directory (empty when there is no file). */
export function outboxKeys(stateDir: string): string[] {
  const file = join(stateDir, "notify-outbox.json");
  if (!existsSync(file)) return [];
  return (JSON.parse(readFileSync(file, "utf8")) as { pending: string[] }).pending;
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One request with node:http (no redirects, no path normalisation); rejects on socket errors. */
export function httpCall(
  port: number,
  method: string,
  path: string,
  o: { body?: string | Buffer; headers?: Record<string, string>; agent?: Agent | false } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: "127.0.0.1", port, method, path, headers: o.headers ?? {}, agent: o.agent ?? false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(o.body);
  });
}

/**
 * Send raw bytes and collect whatever comes back until the server closes the connection (or
 * `timeoutMs` passes). `status` is parsed from the first response line, 0 when none came.
 */
export function rawExchange(
  port: number,
  chunks: ReadonlyArray<string | Buffer>,
  o: { gapMs?: number; timeoutMs?: number } = {},
): Promise<{ status: number; text: string; closedAfterMs: number; closed: boolean }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = netConnect(port, "127.0.0.1");
    let text = "";
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, text, closedAfterMs: Date.now() - t0, closed });
    };
    const timer = setTimeout(() => finish(false), o.timeoutMs ?? 10_000);
    s.on("data", (d: Buffer) => (text += d.toString("latin1")));
    s.on("close", () => finish(true));
    s.on("error", () => {});
    let i = 0;
    const writeNext = (): void => {
      if (done || s.destroyed || i >= chunks.length) return;
      s.write(chunks[i++]!);
      if (o.gapMs) setTimeout(writeNext, o.gapMs);
      else writeNext();
    };
    s.on("connect", writeNext);
  });
}

/** A TCP forwarder that can be opened and closed: makes NATS reachable when the test says so. */
export class Gate {
  readonly port: number;
  private readonly target: number;
  private server: NetServer | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(port: number, target: number) {
    this.port = port;
    this.target = target;
  }

  open(): Promise<void> {
    const server = createNetServer((c) => {
      const up = netConnect(this.target, "127.0.0.1");
      for (const s of [c, up]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => s.destroy());
      }
      c.on("close", () => up.destroy());
      up.on("close", () => c.destroy());
      c.pipe(up).pipe(c);
    });
    this.server = server;
    return new Promise((r) => server.listen(this.port, "127.0.0.1", () => r()));
  }

  /** Refuse new connections and cut the open ones. */
  close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => (server ? server.close(() => r()) : r()));
  }
}

/** Poll `check` until it returns a value other than undefined, or fail after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let wait = 10; ; wait = Math.min(wait * 2, 200)) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, wait));
  }
}
