/**
 * JetStream key-value store backend: several stateless account servers share one replicated
 * bucket. Writes are compare-and-set on the key's revision; every instance watches the bucket.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import type { NatsConfig } from "../config/types.js";
import { isPublicKey } from "../jwt/index.js";
import { NatsLink } from "../nats/connection.js";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import { IndexedStore } from "./indexed.js";
import {
  StoreConflictError,
  StoreUnavailableError,
  type ExternalChange,
  type HistoryEntry,
  type JwtStore,
  type StoredJwt,
} from "./types.js";

export interface KvStoreOptions {
  readonly bucket: string;
  /** Stream replicas (1, 3 or 5 on a JetStream cluster). */
  readonly replicas: number;
  /** Versions kept per key (JetStream allows 1..64). */
  readonly history: number;
  /** How to reach the account that holds the bucket (JetStream enabled; not the system account). */
  readonly nats: NatsConfig;
  readonly log?: Logger;
}

/** JetStream's "wrong last sequence": someone else wrote the key first. */
function isConflict(err: unknown): boolean {
  const e = err as { code?: number; message?: string };
  return e.code === 10071 || /wrong last sequence/.test(e.message ?? "");
}

export class KvStore extends IndexedStore implements JwtStore {
  readonly kind = "kv";
  readonly writable = true;
  private readonly opts: KvStoreOptions;
  private readonly log: Logger;
  /** Latest bucket revision seen per key (PUT or DEL), the base of the next compare-and-set. */
  private readonly revisions = new Map<string, number>();
  private kv: KV | undefined;
  private link: NatsLink | undefined;
  private attached: NatsConnection | undefined;
  private onExternal: ((c: ExternalChange) => void) | undefined;
  private isReady = false;
  private closed = false;
  private watcher: { stop(): void } | undefined;

  constructor(opts: KvStoreOptions) {
    super();
    this.opts = opts;
    this.log = opts.log ?? silentLogger;
  }

  get description(): string {
    return `JetStream bucket ${this.opts.bucket} (replicas ${this.opts.replicas}, history ${this.opts.history})`;
  }

  get ready(): boolean {
    return this.isReady;
  }

  /**
   * Connects and loads the bucket when NATS answers; otherwise keeps retrying in the background
   * while the server reports not-ready and serves nothing it has not loaded.
   */
  async open(): Promise<void> {
    const link = new NatsLink({ config: this.opts.nats, log: this.log, purpose: "the account store" });
    this.link = link;
    link.onConnected((nc) => {
      if (nc === this.attached) return; // a reconnect: the bucket watch resumes by itself
      this.attached = nc;
      this.attach(nc).catch((err: unknown) => {
        this.attached = undefined;
        this.log.error(`cannot open bucket ${this.opts.bucket}: ${(err as Error).message}`);
        this.retryAttach(nc);
      });
    });
    await link.start();
  }

  /** JetStream may still be electing leaders right after NATS comes up: try again shortly. */
  private retryAttach(nc: NatsConnection): void {
    setTimeout(() => {
      if (this.closed || this.attached || nc.isClosed()) return;
      this.attached = nc;
      this.attach(nc).catch((err: unknown) => {
        this.attached = undefined;
        this.log.error(`cannot open bucket ${this.opts.bucket}: ${(err as Error).message}`);
        this.retryAttach(nc);
      });
    }, this.opts.nats.reconnectWait).unref();
  }

  /** Bind (or create) the bucket on `nc` and load it. */
  private async attach(nc: NatsConnection): Promise<void> {
    if (this.closed) return;
    const kv = await new Kvm(nc).create(this.opts.bucket, {
      replicas: this.opts.replicas,
      history: this.opts.history,
    });
    this.watcher?.stop();
    this.kv = kv;
    await this.load(kv);
  }

  /** Follow the bucket from the start: initial values fill the index, later ones are changes. */
  private async load(kv: KV): Promise<void> {
    const status = await kv.status();
    const iter = await kv.watch({ include: "" });
    this.watcher = iter;
    let initial = status.streamInfo.state.messages > 0;
    const done = new Promise<void>((resolve) => {
      if (!initial) resolve();
      void (async () => {
        for await (const e of iter) {
          this.apply(e, initial);
          if (initial && e.delta === 0) {
            initial = false;
            resolve();
          }
        }
      })().catch((err: unknown) => this.log.error(`bucket watch ended: ${(err as Error).message}`));
    });
    await done;
    if (!this.isReady) this.log.info(`store ready: ${this.size} account JWT(s) in bucket ${this.opts.bucket}`);
    this.isReady = true;
  }

  private apply(e: KvEntry, initial: boolean): void {
    const key = e.key;
    if (!isPublicKey(key, "account")) return;
    const known = this.revisions.get(key) ?? 0;
    if (e.revision <= known) return; // our own write coming back, or a replay
    this.revisions.set(key, e.revision);
    if (e.operation === "PUT") {
      const jwt = e.string();
      if (initial) {
        this.setEntry(key, jwt);
      } else {
        this.onExternal?.({ key, jwt });
      }
    } else if (initial) {
      this.forget(key, e.operation === "DEL");
    } else {
      this.onExternal?.({ key, jwt: undefined, deleted: e.operation === "DEL" });
    }
  }

  private bucket(): KV {
    if (!this.kv || !this.isReady || !this.link?.connection) {
      throw new StoreUnavailableError(`bucket ${this.opts.bucket} is not available`);
    }
    return this.kv;
  }

  async put(key: string, jwt: string): Promise<StoredJwt> {
    const kv = this.bucket();
    const base = this.revisions.get(key) ?? 0;
    let rev: number;
    try {
      rev = base > 0 ? await kv.update(key, jwt, base) : await kv.create(key, jwt);
    } catch (err) {
      if (isConflict(err)) {
        await this.refresh(kv, key);
        throw new StoreConflictError(`${key} changed in bucket ${this.opts.bucket}`);
      }
      throw err;
    }
    this.revisions.set(key, Math.max(rev, this.revisions.get(key) ?? 0));
    return this.setEntry(key, jwt);
  }

  /** Re-read one key after a lost compare-and-set, so the caller can decide again. */
  private async refresh(kv: KV, key: string): Promise<void> {
    const e = await kv.get(key);
    if (!e) return;
    this.revisions.set(key, e.revision);
    if (e.operation === "PUT") this.setEntry(key, e.string());
    else this.forget(key, e.operation === "DEL");
  }

  adopt(key: string, jwt: string | undefined, deleted = false): StoredJwt | undefined {
    if (jwt !== undefined) return this.setEntry(key, jwt);
    this.forget(key, deleted);
    return undefined;
  }

  /** Expired JWTs leave the served view; the bucket keeps them as history. */
  async remove(key: string): Promise<void> {
    this.forget(key, false);
  }

  async tombstone(key: string): Promise<void> {
    const kv = this.bucket();
    await kv.delete(key);
    const e = await kv.get(key);
    if (e) this.revisions.set(key, Math.max(e.revision, this.revisions.get(key) ?? 0));
    this.forget(key, true);
  }

  async history(key: string): Promise<HistoryEntry[]> {
    const kv = this.bucket();
    const out: HistoryEntry[] = [];
    for await (const e of await kv.history({ key })) {
      out.push({
        revision: e.revision,
        stored: e.created,
        ...(e.operation === "PUT" ? { jwt: e.string() } : { deleted: true }),
      });
    }
    return out;
  }

  watch(onChange: (change: ExternalChange) => void): void {
    this.onExternal = onChange;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.isReady = false;
    this.watcher?.stop();
    await this.link?.stop();
  }
}
