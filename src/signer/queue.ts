/**
 * The signer's durable state: requests waiting for approval, their outcome, and the accounts it
 * has signed. One small file each, written atomically, so the running signer and the `approve`
 * command (another process) can share the directory without locks.
 */
import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { writeFileDurable } from "../durable.js";
import { base32Encode } from "../jwt/index.js";

export interface PendingRequest {
  readonly id: string;
  readonly account: string;
  readonly name: string;
  /** ms since the epoch. */
  readonly received: number;
  /** The self-signed JWT as it arrived. */
  readonly request: string;
}

export interface Outcome extends PendingRequest {
  readonly decision: "approved" | "rejected";
  readonly decided: number;
  /** Rejection reason. */
  readonly reason?: string;
  /** The JWT that was signed on approval. */
  readonly jwt?: string;
}

const DIRS = ["pending", "approved", "rejected", "accounts"] as const;
type Dir = (typeof DIRS)[number];

/** Request ids are derived from the request's bytes: a repeated request is the same request. */
export function requestId(jwt: string): string {
  return base32Encode(createHash("sha256").update(jwt).digest()).slice(0, 12);
}

const ID = /^[A-Z2-7]{12}$/;
const KEY = /^A[A-Z2-7]{55}$/;

export class SignerState {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    for (const d of DIRS) mkdirSync(join(dir, d), { recursive: true, mode: 0o700 });
  }

  private path(d: Dir, name: string): string {
    if (!(d === "accounts" ? KEY : ID).test(name)) throw new Error(`not a ${d === "accounts" ? "account key" : "request id"}: ${JSON.stringify(name)}`);
    return join(this.dir, d, `${name}.json`);
  }

  /** Crash-safe replace; readable by the signer's user only. */
  private async write(d: Dir, name: string, value: unknown): Promise<void> {
    await writeFileDurable(this.path(d, name), JSON.stringify(value, null, 2) + "\n", 0o600);
  }


  private async read<T>(d: Dir, name: string): Promise<T | undefined> {
    try {
      return JSON.parse(await readFile(this.path(d, name), "utf8")) as T;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  pending(id: string): Promise<PendingRequest | undefined> {
    return this.read<PendingRequest>("pending", id);
  }

  outcome(id: string): Promise<Outcome | undefined> {
    return this.read<Outcome>("approved", id).then((o) => o ?? this.read<Outcome>("rejected", id));
  }

  /** True once the signer has signed (or an operator approved) this account. */
  async known(account: string): Promise<boolean> {
    return (await this.read("accounts", account)) !== undefined;
  }

  async markKnown(account: string, how: string, now: number): Promise<void> {
    if (!(await this.known(account))) await this.write("accounts", account, { account, since: new Date(now).toISOString(), how });
  }

  async enqueue(p: PendingRequest): Promise<void> {
    await this.write("pending", p.id, p);
  }

  async countPending(): Promise<number> {
    return (await readdir(join(this.dir, "pending"))).filter((f) => f.endsWith(".json")).length;
  }

  async listPending(): Promise<PendingRequest[]> {
    const out: PendingRequest[] = [];
    for (const f of await readdir(join(this.dir, "pending"))) {
      const id = f.replace(/\.json$/, "");
      if (!ID.test(id) || !f.endsWith(".json")) continue;
      const p = await this.pending(id);
      // An entry left by a crash after its outcome was written is decided already.
      if (p && !(await this.outcome(id))) out.push(p);
    }
    return out.sort((a, b) => a.received - b.received);
  }

  /** Record the outcome, then drop the pending entry (a crash in between leaves both: outcome wins). */
  async decide(o: Outcome): Promise<void> {
    await this.write(o.decision, o.id, o);
    await rm(this.path("pending", o.id), { force: true });
  }
}
