/**
 * JetStream key-value store backend: several stateless account servers share one replicated
 * bucket. Writes are compare-and-set on the key's revision; every instance watches the bucket.
 */
import { headers, type NatsConnection } from "@nats-io/transport-node";
import {
  jetstream,
  jetstreamManager,
  JetStreamApiCodes,
  JetStreamApiError,
  JetStreamError,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import type { NatsConfig } from "../config/types.js";
import { errorText } from "../errors.js";
import { isPublicKey } from "../jwt/index.js";
import { NatsLink } from "../nats/connection.js";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import { IndexedStore } from "./indexed.js";
import {
  StoreConflictError,
  StoreOutcomeUnknownError,
  StoreUnavailableError,
  type ExternalChange,
  type HistoryEntry,
  type JwtStore,
  type AccountEntry,
  digestOf,
  type EntryClaims,
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
  return e.code === JetStreamApiCodes.StreamWrongLastSequence || /wrong last sequence/.test(e.message ?? "");
}

/** A write sent to the bucket, settled by the watch: did it land at the sequence it asked for? */
interface InFlightWrite {
  readonly key: string;
  readonly jwt: string;
  landed?: boolean;
  /** It failed without an answer: told whether it landed once the watch knows. */
  lost?: (landed: boolean) => void;
  /** When it failed (performance.now()). */
  lostAt?: number;
}

/** A bucket entry as the change it records (a PUT, or a DEL/PURGE marker). */
function changeOf(e: KvEntry): ExternalChange {
  return changeAt(e.key, e.revision, e.operation, () => e.string());
}

function changeAt(key: string, revision: number, op: string | undefined, value: () => string): ExternalChange {
  return op === "DEL" || op === "PURGE"
    ? { key, jwt: undefined, deleted: op === "DEL", revision }
    : { key, jwt: value(), revision };
}

export class KvStore extends IndexedStore implements JwtStore {
  readonly kind = "kv";
  readonly writable = true;
  private readonly opts: KvStoreOptions;
  private readonly log: Logger;
  /**
   * Bucket revision of what is served per key (a JWT, or its absence after a DEL/PURGE), the
   * base of the next compare-and-set; always changed together with the served entry.
   */
  private readonly revisions = new Map<string, number>();
  private kv: KV | undefined;
  private js: JetStreamClient | undefined;
  private jsm: JetStreamManager | undefined;
  /**
   * Stream sequence up to which the watch has delivered every change (of every key): the base of
   * the stream-level compare-and-set, so a write only lands if nothing was stored since then.
   */
  private seen = 0;
  private seenWaiters: Array<() => void> = [];
  /**
   * Writes in flight by the stream sequence they get if they land (the expected last sequence
   * plus one). The watch settles each: an answer lost with a node still shows whether it landed.
   */
  private readonly inFlight = new Map<number, InFlightWrite[]>();
  /** Per key, the newest change the watch delivered that is not served yet (queued in the registry). */
  private readonly heard = new Map<string, ExternalChange>();
  private link: NatsLink | undefined;
  private attached: NatsConnection | undefined;
  private onExternal: ((c: ExternalChange) => void) | undefined;
  private isReady = false;
  private closed = false;
  private watcher: { stop(): void } | undefined;
  private checker: NodeJS.Timeout | undefined;
  /** When the watch last delivered anything, and whether the last check found it behind. */
  private delivered = 0;
  private behind = false;

  constructor(opts: KvStoreOptions) {
    super();
    this.opts = opts;
    this.log = opts.log ?? silentLogger;
  }

  get description(): string {
    return `JetStream bucket ${this.opts.bucket} (replicas ${this.opts.replicas}, history ${this.opts.history})`;
  }

  /** Account servers on one bucket form a group: they hold the same JWTs. */
  get group(): string {
    return `kv:${this.opts.bucket}`;
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
        this.log.error(`cannot open bucket ${this.opts.bucket}: ${errorText(err)}`);
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
        this.log.error(`cannot open bucket ${this.opts.bucket}: ${errorText(err)}`);
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
    this.js = jetstream(nc);
    this.jsm = await jetstreamManager(nc);
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
      })().catch((err: unknown) => this.log.error(`bucket watch ended: ${errorText(err)}`));
    });
    await done;
    // Everything up to the stream's last sequence at the start was delivered (or superseded).
    this.see(status.streamInfo.state.last_seq);
    if (!this.isReady) this.log.info(`store ready: ${this.size} account JWT(s) in bucket ${this.opts.bucket}`);
    this.isReady = true;
    this.checker ??= setInterval(() => void this.checkWatch().catch(() => {}), KvStore.WATCH_CHECK_MS).unref();
  }

  /** How often a quiet watch is compared with the stream's last sequence. */
  private static readonly WATCH_CHECK_MS = 1000;
  private static readonly WATCH_RESTART_GRACE_MS = 5000;
  /** How long a write whose answer was lost may still land before its caller stops waiting. */
  private static readonly GIVE_UP_MS = 10_000;

  /**
   * The watch's consumer notices a lost node only after two missed 30 s heartbeats: meanwhile this
   * instance would serve stale JWTs. A watch that stays behind the stream for two checks in a row
   * is started again after the last revision it delivered.
   */
  private async checkWatch(): Promise<void> {
    const kv = this.kv;
    const unsettled = [...this.inFlight].filter(([, ws]) => ws.some((w) => w.lostAt !== undefined));
    if (!kv || !this.isReady || this.closed || (performance.now() - this.delivered < KvStore.WATCH_CHECK_MS && unsettled.length === 0)) {
      this.behind = false;
      return;
    }
    const last = (await this.jsm!.streams.info(`KV_${this.opts.bucket}`)).state.last_seq;
    // A write whose answer was lost and which the stream still lacks long after: the caller stops
    // waiting (nothing to announce). Should it land after all, the watch still reports it as ours.
    for (const [seq, ws] of unsettled) {
      for (const w of ws) {
        if (w.lostAt === undefined || seq <= last || this.seen < last || performance.now() - w.lostAt < KvStore.GIVE_UP_MS) continue;
        w.lostAt = undefined;
        w.lost?.(false);
        w.lost = () => {};
      }
    }
    if (performance.now() - this.delivered < KvStore.WATCH_CHECK_MS) return;
    if (last <= this.seen || !this.behind) {
      this.behind = last > this.seen;
      return;
    }
    this.behind = false;
    this.log.warn(`bucket watch is ${last - this.seen} change(s) behind: following ${this.opts.bucket} again from revision ${this.seen + 1}`);
    // A consumer created while a node is away can take seconds to deliver: no new check before.
    this.delivered = performance.now() + KvStore.WATCH_RESTART_GRACE_MS;
    const iter = await kv.watch({ include: "", resumeFromRevision: this.seen + 1 });
    if (this.closed || this.kv !== kv) {
      iter.stop();
      return;
    }
    this.watcher?.stop();
    this.watcher = iter;
    void (async () => {
      for await (const e of iter) this.apply(e, false);
    })().catch((err: unknown) => this.log.error(`bucket watch ended: ${errorText(err)}`));
  }

  /**
   * A bucket entry from the watch. While loading it is served at once; afterwards it is reported
   * and served only when the registry applies it, in order with this instance's own writes, so
   * the served JWT and the revision it was read at always change together.
   */
  private apply(e: KvEntry, initial: boolean): void {
    this.delivered = performance.now();
    let own = false;
    for (const w of this.inFlight.get(e.revision) ?? []) {
      w.landed = w.key === e.key && e.operation === "PUT" && w.jwt === e.string();
      // A write of ours that failed with its answer lost: if it landed, ours to announce after all.
      if (w.lost) {
        this.settle(e.revision, w);
        w.lost(w.landed);
        own ||= w.landed;
      }
    }
    this.see(e.revision);
    const key = e.key;
    if (!isPublicKey(key, "account")) return;
    // Our own write coming back, or a replay after the watch's consumer was recreated.
    if (e.revision <= (this.revisions.get(key) ?? 0)) return;
    const change = own ? { ...changeOf(e), own } : changeOf(e);
    if (initial) {
      this.adopt(change);
    } else {
      this.heard.set(key, change);
      this.onExternal?.(change);
    }
  }

  private settle(seq: number, write: InFlightWrite): void {
    const rest = (this.inFlight.get(seq) ?? []).filter((w) => w !== write);
    if (rest.length > 0) this.inFlight.set(seq, rest);
    else this.inFlight.delete(seq);
  }

  private see(seq: number): void {
    if (seq <= this.seen) return;
    this.seen = seq;
    const waiters = this.seenWaiters;
    this.seenWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves once the watch delivered something after `seq`, or after `ms`. */
  private seenAfter(seq: number, ms: number): Promise<boolean> {
    if (this.seen > seq) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.seenWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  private bucket(): KV {
    if (!this.kv || !this.js || !this.jsm || !this.isReady || !this.link?.connection) {
      throw new StoreUnavailableError(`bucket ${this.opts.bucket} is not available`);
    }
    return this.kv;
  }

  /** How long a write that lost the stream-level compare-and-set waits for the watch first. */
  private static readonly CATCH_UP_MS = 300;

  /**
   * How long one write may take, waits for the watch included: well inside the HTTP read and
   * write timeouts, so a client hears the outcome instead of a closed connection.
   */
  private static readonly WRITE_MS = 4000;

  /**
   * Write `jwt` only if the key still holds what is served now, the entry the caller's `iat`
   * check read (the registry runs both in one per-key critical section). nats-server 2.9 checks
   * the per-subject expected sequence against stored messages only, so two racing writes with the
   * same base can both land (nats-server#4320); the stream-level expected last sequence counts
   * writes in flight, so each write also names the last stream sequence the watch delivered: it
   * lands only if nothing at all was stored since, and everything stored until then is known.
   * A write to another key in between only means waiting for the watch and trying again.
   */
  async put(key: string, jwt: string, claims?: EntryClaims): Promise<AccountEntry> {
    this.bucket();
    const deadline = performance.now() + KvStore.WRITE_MS;
    const left = (): number => Math.max(1, deadline - performance.now());
    /** A stream sequence read from the stream leader while the watch lags. */
    let snapshot: number | undefined;
    for (;;) {
      const heard = this.heard.get(key);
      if (heard && !this.isOutdated(heard)) {
        // Another instance changed the key since: serve that, and let the caller decide again.
        this.adopt(heard);
        throw new StoreConflictError(`${key} changed in bucket ${this.opts.bucket}`, heard);
      }
      const after = snapshot ?? this.seen;
      snapshot = undefined;
      const h = headers();
      h.set("Nats-Expected-Last-Sequence", String(after));
      h.set("Nats-Expected-Last-Subject-Sequence", String(this.revisions.get(key) ?? 0));
      // If it lands, it is stream message after+1: the watch shows it when the answer is lost.
      const write: InFlightWrite = { key, jwt };
      this.inFlight.set(after + 1, [...(this.inFlight.get(after + 1) ?? []), write]);
      let seq: number;
      try {
        seq = (await this.js!.publish(`$KV.${this.opts.bucket}.${key}`, jwt, { headers: h, timeout: left() })).seq;
      } catch (err) {
        if (isConflict(err)) {
          this.settle(after + 1, write);
          if (await this.seenAfter(Math.max(after, this.seen), Math.min(left(), KvStore.CATCH_UP_MS))) continue;
          if (performance.now() >= deadline) throw new StoreUnavailableError(`bucket ${this.opts.bucket}: no write slot in time`);
          // The watch lags (its consumer notices a lost node only after missed heartbeats): read
          // the stream's last sequence, then the key, from the stream leader.
          const snap = await this.leaderRead(key).catch((e: unknown) => {
            throw new StoreUnavailableError(`bucket ${this.opts.bucket}: ${errorText(e)}`);
          });
          if (snap.change && !this.isOutdated(snap.change)) {
            this.adopt(snap.change);
            throw new StoreConflictError(`${key} changed in bucket ${this.opts.bucket}`, snap.change);
          }
          snapshot = snap.last;
          continue;
        }
        // JetStream refused it or nobody took it: nothing was stored.
        if (err instanceof JetStreamApiError || err instanceof JetStreamError || (err as Error).name === "JetStreamNotEnabled") {
          this.settle(after + 1, write);
          throw new StoreUnavailableError(`bucket ${this.opts.bucket}: ${errorText(err)}`);
        }
        // A timeout or a lost connection: the write may have landed all the same.
        await this.seenAfter(after, left());
        if (write.landed === undefined) {
          // Still unknown: if it lands later, the watch reports it as our own change.
          write.lostAt = performance.now();
          const landed = new Promise<boolean>((resolve) => (write.lost = resolve));
          throw new StoreOutcomeUnknownError(`bucket ${this.opts.bucket}: ${errorText(err)}`, landed);
        }
        this.settle(after + 1, write);
        if (!write.landed) continue;
        seq = after + 1;
      }
      this.settle(after + 1, write);
      // Ours directly follows `after`: if the watch had nothing newer, it is complete up to ours.
      if (this.seen === after) this.see(seq);
      this.revisions.set(key, seq);
      return this.setEntry(key, jwt, claims);
    }
  }

  /**
   * The stream's last sequence, then the key's latest entry, as the stream leader has them: the
   * key cannot have changed between its entry and that sequence without the write failing.
   */
  private async leaderRead(key: string): Promise<{ last: number; change: ExternalChange | undefined }> {
    const stream = `KV_${this.opts.bucket}`;
    const last = (await this.jsm!.streams.info(stream)).state.last_seq;
    const m = await this.jsm!.streams.getMessage(stream, { last_by_subj: `$KV.${this.opts.bucket}.${key}` }).catch((err: unknown) => {
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.NoMessageFound) return null;
      throw err;
    });
    return { last, change: m ? changeAt(key, m.seq, m.header?.get("KV-Operation"), () => m.string()) : undefined };
  }

  isOutdated(change: ExternalChange): boolean {
    return change.revision !== undefined && change.revision <= (this.revisions.get(change.key) ?? 0);
  }

  adopt(change: ExternalChange, claims?: EntryClaims): AccountEntry | undefined {
    const { key, jwt } = change;
    // Never an older entry paired with a newer revision: that is how an older JWT got written.
    if (change.revision !== undefined && change.revision < (this.revisions.get(key) ?? 0)) return this.index.get(key);
    if (change.revision !== undefined) this.revisions.set(key, change.revision);
    const heard = this.heard.get(key);
    if (heard && this.isOutdated(heard)) this.heard.delete(key);
    if (jwt === undefined) {
      this.forget(key, change.deleted === true);
      return undefined;
    }
    const current = this.index.get(key);
    return current?.digest === digestOf(jwt) ? current : this.setEntry(key, jwt, claims);
  }

  /** The bucket's value at the revision served (another instance may have written since). */
  protected async readBody(entry: AccountEntry): Promise<string | undefined> {
    const revision = this.revisions.get(entry.key);
    const e = await this.bucket().get(entry.key, revision !== undefined ? { revision } : undefined);
    return e && e.operation === "PUT" ? e.string() : undefined;
  }

  /** Expired JWTs leave the served view; the bucket keeps them as history. */
  async remove(key: string): Promise<void> {
    this.forget(key, false);
  }

  /** A deletion is an operator's order: it is not compared with what is stored. */
  async tombstone(key: string): Promise<void> {
    this.bucket();
    const h = headers();
    h.set("KV-Operation", "DEL");
    const seq = (await this.js!.publish(`$KV.${this.opts.bucket}.${key}`, undefined, { headers: h })).seq;
    this.adopt({ key, jwt: undefined, deleted: true, revision: seq });
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
    clearInterval(this.checker);
    this.watcher?.stop();
    await this.link?.stop();
  }
}
