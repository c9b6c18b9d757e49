/**
 * Periodic pack sync with full nats-servers and other account servers: ask `$SYS.REQ.CLAIMS.PACK`
 * with our store hash, merge the answer through the registry, and back off while peers diverge.
 */
import { createInbox, type Msg, type Subscription } from "@nats-io/transport-node";
import type { AccountRegistry } from "../accounts.js";
import { errorText, isAccountServerError } from "../errors.js";
import { contentId, sha256 } from "../store/index.js";
import { isPublicKey } from "../jwt/index.js";
import type { Logger } from "../log.js";
import type { NatsLink } from "./connection.js";
import type { Notifier } from "./notifier.js";
import { PACK_SUBJECT } from "./responder.js";

/** Timer functions, injectable so tests can drive the schedule. */
export interface SyncTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const REAL_TIMERS: SyncTimers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface PackSyncOptions {
  readonly registry: AccountRegistry;
  readonly link: NatsLink;
  readonly notifier: Notifier;
  readonly log: Logger;
  /** ms between pulls while nothing is wrong (jittered by ±10 %). */
  readonly intervalMs: number;
  /** ms to wait for the first and for each further message of an answer. */
  readonly answerTimeoutMs?: number;
  /** Largest multiple of `intervalMs` the back-off reaches. */
  readonly maxBackoff?: number;
  /** Wall clock in milliseconds. */
  readonly now?: () => number;
  /** [0, 1) source for the jitter. */
  readonly random?: () => number;
  readonly timers?: SyncTimers;
}

/** What one pull found. */
export type SyncResult =
  | { readonly outcome: "skipped"; readonly reason: string }
  | { readonly outcome: "no-answer"; readonly reason: string }
  | { readonly outcome: "in-sync" }
  | {
      readonly outcome: "merged";
      /** Entries received. */
      readonly received: number;
      /** Entries that changed our store. */
      readonly changed: number;
      /** Refused entries: key → error code. */
      readonly refused: ReadonlyMap<string, string>;
      /** Our servable keys the answer did not contain. */
      readonly missing: readonly string[];
      /** Nothing changed although the hashes differ, and this difference was seen before. */
      readonly persistent: boolean;
    };

/** Codes counted in the divergence log line, in words. */
const CODE_WORDS: Readonly<Record<string, string>> = {
  OLDER_JWT: "older",
  UNTRUSTED_ISSUER: "untrusted",
  ACCOUNT_DELETED: "deleted here",
  VALIDATION_FAILED: "invalid or expired",
  BAD_JWT: "undecodable",
  KEY_MISMATCH: "filed under another key",
};

/** How many distinct divergences are remembered between real changes. */
const SEEN_MAX = 64;

export class PackSync {
  private readonly registry: AccountRegistry;
  private readonly link: NatsLink;
  private readonly notifier: Notifier;
  private readonly log: Logger;
  readonly intervalMs: number;
  private readonly answerTimeoutMs: number;
  private readonly maxBackoff: number;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly timers: SyncTimers;

  /** Current multiple of `intervalMs` (1 unless a divergence persists). */
  private factor = 1;
  /** Divergences seen since the last real change; seeing one again means repairs did not help. */
  private readonly seen = new Set<string>();
  /** Divergences already logged as warnings (until the stores agree again). */
  private readonly logged = new Set<string>();
  private timer: unknown;
  private dueAt = 0;
  private running: Promise<SyncResult> | undefined;
  private readonly listeners: Array<(r: SyncResult) => void> = [];
  private stopped = false;
  private started = false;

  constructor(o: PackSyncOptions) {
    this.registry = o.registry;
    this.link = o.link;
    this.notifier = o.notifier;
    this.log = o.log;
    this.intervalMs = o.intervalMs;
    this.answerTimeoutMs = o.answerTimeoutMs ?? 2000;
    this.maxBackoff = o.maxBackoff ?? 16;
    this.now = o.now ?? Date.now;
    this.random = o.random ?? Math.random;
    this.timers = o.timers ?? REAL_TIMERS;
    o.link.onConnected(() => {
      // A fresh connection may follow an outage during which peers changed: pull right away.
      if (this.started) this.schedule(0);
    });
  }

  /** The delay until the next pull without jitter (for health and tests). */
  get currentIntervalMs(): number {
    return this.intervalMs * this.factor;
  }

  /** Pull now if connected, then every interval. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.schedule(this.link.connection ? 0 : this.jittered(this.currentIntervalMs));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => {});
  }

  private jittered(ms: number): number {
    return Math.max(0, Math.round(ms * (0.9 + 0.2 * this.random())));
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.dueAt = this.now() + delay;
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      void this.syncOnce().finally(() => {
        if (this.timer === undefined) this.schedule(this.jittered(this.currentIntervalMs));
      });
    }, delay);
  }

  /** Something really changed: peers may now agree, so stop backing off. */
  accountChanged(): void {
    this.seen.clear();
    if (this.factor === 1) return;
    this.factor = 1;
    if (this.timer !== undefined && this.dueAt > this.now() + this.intervalMs) {
      this.schedule(this.jittered(this.intervalMs));
    }
  }

  /** Hear the outcome of every pull (scheduled or asked for). */
  onResult(listener: (r: SyncResult) => void): void {
    this.listeners.push(listener);
  }

  /** One pull (a pull already running is shared). */
  syncOnce(): Promise<SyncResult> {
    if (!this.running) {
      this.running = this.pull().then(
        (r) => {
          this.running = undefined;
          for (const l of this.listeners) l(r);
          return r;
        },
        (err: unknown) => {
          this.running = undefined;
          this.log.error(`pack sync failed: ${errorText(err)}`);
          return { outcome: "skipped", reason: errorText(err) } as const;
        },
      );
    }
    return this.running;
  }

  private async pull(): Promise<SyncResult> {
    const nc = this.link.connection;
    if (!nc) return { outcome: "skipped", reason: "NATS is not connected" };
    if (!this.registry.store.writable) return { outcome: "skipped", reason: "the store is read-only" };
    if (this.registry.store.ready === false) return { outcome: "skipped", reason: "the store is not ready" };
    // Hashing needs every file; let a large store finish its background load at its own pace.
    await this.registry.store.loading;
    const inbox = createInbox();
    const sub = nc.subscribe(inbox);
    const received = new Set<string>();
    const refused = new Map<string, string>();
    /** Signature parts of the refused entries: key, code and what the peer holds. */
    const parts: string[] = [];
    let changed = 0;
    let messages = 0;
    try {
      // Our hash as the store keeps it: a responder with the same hash answers one empty message.
      nc.publish(PACK_SUBJECT, this.registry.store.hash(), { reply: inbox });
      const next = this.reader(sub);
      for (;;) {
        const m = await next();
        if (m === undefined) {
          if (messages === 0) return this.noAnswer("nobody answered");
          this.log.warn(`pack sync: the answer stopped after ${messages} message(s) without its end marker`);
          break;
        }
        if (m.data.length === 0) {
          if (m.headers?.code === 503) return this.noAnswer("no responders");
          if (messages === 0) return this.inSync();
          break;
        }
        messages++;
        for (const line of m.string().split("\n")) {
          if (line === "") continue;
          const bar = line.indexOf("|");
          const key = bar < 0 ? "" : line.slice(0, bar);
          const jwt = bar < 0 ? "" : line.slice(bar + 1);
          if (!isPublicKey(key, "account") || jwt.includes("|")) {
            this.log.warn(`pack sync: ignoring a malformed entry ${JSON.stringify(line.slice(0, 70))}`);
            parts.push(`malformed:${line.slice(0, 70)}`);
            continue;
          }
          received.add(key);
          try {
            if ((await this.registry.accept(jwt, { source: "sync", key })).changed) changed++;
          } catch (err) {
            const code = isAccountServerError(err) ? err.code : "ERROR";
            refused.set(key, code);
            parts.push(`${key}:${code}:${contentId(sha256(jwt))}`);
            this.log.debug(`pack sync: not taking ${key.slice(0, 12)}: ${errorText(err)}`);
          }
        }
      }
    } finally {
      sub.unsubscribe();
    }
    const missing: string[] = [];
    const nowMs = this.now();
    for (const e of this.registry.store.entries()) {
      if (!received.has(e.key) && this.registry.servable(e, nowMs)) missing.push(e.key);
    }
    return this.merged(received.size, changed, refused, missing, parts);
  }

  /** Resolves with the next message, or undefined after `answerTimeoutMs` of silence. */
  private reader(sub: Subscription): () => Promise<Msg | undefined> {
    const it = sub[Symbol.asyncIterator]();
    return () =>
      new Promise<Msg | undefined>((resolve) => {
        const t = setTimeout(() => resolve(undefined), this.answerTimeoutMs);
        it.next().then(
          (r) => {
            clearTimeout(t);
            resolve(r.done ? undefined : r.value);
          },
          () => {
            clearTimeout(t);
            resolve(undefined);
          },
        );
      });
  }

  private noAnswer(reason: string): SyncResult {
    this.log.trace(`pack sync: ${reason}`);
    return { outcome: "no-answer", reason };
  }

  private inSync(): SyncResult {
    if (this.logged.size > 0) this.log.info("pack sync: our store and the peers' agree again");
    this.logged.clear();
    this.seen.clear();
    this.factor = 1;
    this.log.trace("pack sync: in sync");
    return { outcome: "in-sync" };
  }

  private merged(
    received: number,
    changed: number,
    refused: Map<string, string>,
    missing: string[],
    parts: string[],
  ): SyncResult {
    if (changed > 0) {
      this.log.debug(`pack sync: merged ${changed} of ${received} JWT(s)`);
      this.seen.clear();
      this.factor = 1;
      return { outcome: "merged", received, changed, refused, missing, persistent: false };
    }
    const signature = [...parts, ...missing.map((k) => `${k}:missing`)].sort().join(",");
    const persistent = this.seen.has(signature);
    if (!persistent) {
      if (this.seen.size >= SEEN_MAX) this.seen.clear();
      this.seen.add(signature);
      // First sight: announce what we hold where the peer holds something else or nothing, so
      // nats-servers take our version (they apply updates unconditionally).
      const repair = [...missing];
      for (const [key, code] of refused) {
        const e = this.registry.get(key);
        if (code !== "ACCOUNT_DELETED" && e !== undefined && this.registry.servable(e, this.now())) repair.push(key);
      }
      for (const key of repair) this.notifier.notify(key);
      this.log.debug(
        `pack sync: stores differ (${this.describe(refused, missing)}); announced ${repair.length} of our JWT(s)`,
      );
    } else {
      this.factor = Math.min(this.factor * 2, this.maxBackoff);
      if (!this.logged.has(signature)) {
        this.logged.add(signature);
        this.log.warn(
          `pack sync: a peer's store keeps differing from ours (${this.describe(refused, missing)}); ` +
            `backing off (now every ${this.currentIntervalMs / 1000}s, up to ${this.maxBackoff}x the interval) until something changes`,
        );
      }
    }
    return { outcome: "merged", received, changed, refused, missing, persistent };
  }

  private describe(refused: Map<string, string>, missing: string[]): string {
    const counts = new Map<string, number>();
    for (const code of refused.values()) {
      const w = CODE_WORDS[code] ?? code.toLowerCase();
      counts.set(w, (counts.get(w) ?? 0) + 1);
    }
    const bits = counts.size > 0 ? [`refused ${[...counts].map(([w, n]) => `${n} ${w}`).join(", ")}`] : [];
    if (missing.length > 0) bits.push(`${missing.length} of ours missing there`);
    return bits.length > 0 ? bits.join("; ") : "same entries, different files";
  }
}
