/**
 * Tools for the reliability tests: a seeded PRNG, raw HTTP on loopback, a TCP gate, polling
 * with a deadline, and readers for the store and state directories.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { request as httpRequest, type Agent } from "node:http";
import { connect as netConnect, createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { join } from "node:path";
import type { Proc } from "./processes.js";

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

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );
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

/** Keys of the complete records in the write-ahead journal of a directory store (`<json> <crc>` lines). */
export function journalKeys(storeDir: string): string[] {
  const keys = new Set<string>();
  for (const name of existsSync(storeDir) ? readdirSync(storeDir) : []) {
    if (!/^\.journal\.\d+$/.test(name)) continue;
    for (const line of readFileSync(join(storeDir, name), "utf8").split("\n").slice(0, -1)) {
      keys.add((JSON.parse(line.slice(0, line.lastIndexOf(" "))) as { key: string }).key);
    }
  }
  return [...keys];
}

/**
 * Accounts whose announcement a crash now could not lose: in the outbox file, or changed in the
 * store's journal (which the restarted server replays and then announces).
 */
export function durablyPending(storeDir: string, stateDir = `${storeDir}.state`): Set<string> {
  return new Set([...outboxKeys(stateDir), ...journalKeys(storeDir)]);
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

export interface RawAnswer {
  /** From the first response line; 0 when nothing came back. */
  readonly status: number;
  readonly text: string;
  readonly closedAfterMs: number;
  /** False when the connection was still open at the timeout. */
  readonly closed: boolean;
}

export interface RawConnection {
  write(data: string | Buffer): void;
  /** Everything received, once the server closes the connection (or at the timeout). */
  readonly answer: Promise<RawAnswer>;
}

/** A plain TCP connection to write a request in pieces; resolves once connected. */
export function rawConnection(port: number, timeoutMs = 10_000): Promise<RawConnection> {
  return new Promise((resolveConn, rejectConn) => {
    const t0 = Date.now();
    const s = netConnect(port, "127.0.0.1");
    let text = "";
    let settle: (a: RawAnswer) => void = () => {};
    const answer = new Promise<RawAnswer>((r) => (settle = r));
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      settle({ status: m ? Number(m[1]) : 0, text, closedAfterMs: Date.now() - t0, closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    s.on("data", (d: Buffer) => (text += d.toString("latin1")));
    s.on("close", () => finish(true));
    s.on("error", (err) => {
      if (!done && Date.now() - t0 < 5 && text === "") rejectConn(err);
    });
    s.on("connect", () =>
      resolveConn({
        write: (data) => {
          if (!s.destroyed) s.write(data);
        },
        answer,
      }),
    );
  });
}

/**
 * Send raw bytes (with `gapMs` between chunks) and collect whatever comes back until the server
 * closes the connection or `timeoutMs` passes.
 */
export async function rawExchange(
  port: number,
  chunks: ReadonlyArray<string | Buffer>,
  o: { gapMs?: number; timeoutMs?: number } = {},
): Promise<RawAnswer> {
  const c = await rawConnection(port, o.timeoutMs ?? 10_000);
  let finished = false;
  void c.answer.then(() => (finished = true));
  for (const chunk of chunks) {
    if (finished) break;
    c.write(chunk);
    if (o.gapMs) await new Promise((r) => setTimeout(r, o.gapMs));
  }
  return c.answer;
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
