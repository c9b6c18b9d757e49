/**
 * Expiry sweeper: removes account JWTs whose `exp` has passed, using an expiry-ordered index kept
 * current from the registry's change feed, so a sweep looks only at what is due.
 */
import type { AccountChange, AccountRegistry } from "./accounts.js";
import { errorText } from "./errors.js";
import type { Logger } from "./log.js";
import { type AccountEntry, sameEntry } from "./store/index.js";

/** Sweep period when `store.cleanupinterval` is 0 (the legacy default). */
export const DEFAULT_CLEANUP_INTERVAL_MS = 60_000;

export interface ExpirySweeperOptions {
  readonly registry: AccountRegistry;
  readonly log: Logger;
  /** ms between sweeps; 0 means DEFAULT_CLEANUP_INTERVAL_MS. */
  readonly intervalMs: number;
  /** Wall clock in milliseconds (tests pass a fake one). */
  readonly now?: () => number;
}

interface Due {
  /** Expiry instant in ms. */
  readonly at: number;
  readonly key: string;
  /** The stored entry this expiry belongs to; a later change makes the item stale. */
  readonly entry: AccountEntry;
}

/** Binary min-heap on `at`. */
class DueHeap {
  private items: Due[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): Due | undefined {
    return this.items[0];
  }

  push(d: Due): void {
    const a = this.items;
    a.push(d);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.at <= a[i]!.at) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }

  pop(): Due | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]!.at < a[m]!.at) m = l;
        if (r < a.length && a[r]!.at < a[m]!.at) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }

  /** Keep only the items `keep` accepts (drops stale ones in bulk). */
  filter(keep: (d: Due) => boolean): void {
    const kept = this.items.filter(keep);
    this.items = [];
    for (const d of kept) this.push(d);
  }
}

export class ExpirySweeper {
  readonly intervalMs: number;
  private readonly registry: AccountRegistry;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly heap = new DueHeap();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private stopped = false;
  private subscribed = false;

  constructor(opts: ExpirySweeperOptions) {
    this.registry = opts.registry;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    this.intervalMs = opts.intervalMs > 0 ? opts.intervalMs : DEFAULT_CLEANUP_INTERVAL_MS;
  }

  /** Index what the store holds now, follow every later change, and sweep once per interval. */
  start(): void {
    if (!this.subscribed) {
      this.subscribed = true;
      const loading = this.registry.store.loading;
      if (loading) {
        // A large store still loading in the background: index it once loaded, in time slices so
        // requests keep flowing, then sweep (changes meanwhile come through onChange).
        void loading
          .then(() => this.trackInSlices())
          .then(() => (this.stopped ? 0 : this.sweep()))
          .catch((err: unknown) => this.log.error(`expiry indexing failed: ${errorText(err)}`));
      } else {
        for (const e of this.registry.store.entries()) this.track(e);
      }
      this.registry.onChange((c) => this.onChange(c));
    }
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => void this.sweep(), this.intervalMs);
    this.timer.unref();
  }

  private async trackInSlices(): Promise<void> {
    const it = this.registry.store.entries();
    for (;;) {
      const until = performance.now() + 4;
      for (let r = it.next(); ; r = it.next()) {
        if (r.done) return;
        this.track(r.value);
        if (performance.now() >= until) break;
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.stopped) return;
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Earliest tracked expiry in ms (possibly of a stale item), for health and tests. */
  get nextExpiry(): number | undefined {
    return this.heap.peek()?.at;
  }

  /** Number of tracked expiries (stale items included until they are dropped). */
  get tracked(): number {
    return this.heap.size;
  }

  private onChange(c: AccountChange): void {
    // Removals leave a stale item behind; it is dropped when it reaches the top or on compaction.
    if (c.entry) this.track(c.entry);
    if (this.heap.size > 2 * this.registry.store.size + 64) {
      this.heap.filter((d) => sameEntry(this.registry.store.get(d.key), d.entry));
    }
  }

  private track(entry: AccountEntry): void {
    if (entry.iat === undefined) {
      this.log.warn(`JWT for account - ${entry.key.slice(0, 12)} - does not decode, its expiry cannot be tracked`);
      return;
    }
    if (entry.exp > 0) this.heap.push({ at: entry.exp * 1000, key: entry.key, entry });
  }

  /**
   * Remove every JWT whose expiry has passed. A JWT that cannot be removed is logged, skipped and
   * retried on the next sweep; it never holds up the ones behind it. Resolves with the count removed.
   */
  sweep(): Promise<number> {
    if (this.running) return this.running;
    this.running = this.sweepOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async sweepOnce(): Promise<number> {
    const now = this.now();
    const retry: Due[] = [];
    let removed = 0;
    for (let top = this.heap.peek(); top && top.at <= now && !this.stopped; top = this.heap.peek()) {
      this.heap.pop();
      if (!sameEntry(this.registry.store.get(top.key), top.entry)) continue;
      const key = top.key.slice(0, 12);
      try {
        // Not announced: nats-servers expire accounts on their own timer.
        if (await this.registry.remove(top.key, "expiry", top.entry)) {
          removed++;
          this.log.info(`JWT for account - ${key} - expired at ${new Date(top.at).toISOString()}, removed`, { account: key, source: "expiry" });
        }
      } catch (err) {
        this.log.error(`could not remove expired JWT for account - ${key} - ${errorText(err)}; will retry`);
        retry.push(top);
      }
    }
    for (const d of retry) this.heap.push(d);
    return removed;
  }
}
