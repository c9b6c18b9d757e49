/**
 * Replica mode (`primary`): import the primary's pack at start, re-sync it periodically, and
 * forward uploads to the primary, relaying its answer. Survives the primary being down.
 */
import type { AccountRegistry } from "./accounts.js";
import { AccountServerError, isAccountServerError } from "./errors.js";
import { isPublicKey } from "./jwt/index.js";
import type { Logger } from "./log.js";
import { digestOf } from "./store/index.js";

export interface ReplicaOptions {
  /** Base URL of the primary, e.g. `http://primary:9090` (a trailing `/` is ignored). */
  readonly primary: string;
  readonly registry: AccountRegistry;
  readonly log: Logger;
  /** ms allowed for one request to the primary. */
  readonly timeoutMs: number;
  /** `max` of the pack request; 0 disables pack imports (start and re-sync). */
  readonly maxPack: number;
  /** ms between re-syncs (each wait is jittered down by up to 20%); 0 = only at start. */
  readonly intervalMs: number;
  /** Source of jitter, injectable for tests. */
  readonly random?: () => number;
}

/** The primary's answer to a forwarded upload, relayed as is. */
export interface ForwardedAnswer {
  readonly status: number;
  readonly contentType: string | undefined;
  readonly body: string;
}

export interface SyncResult {
  /** Lines in the primary's pack. */
  readonly received: number;
  /** JWTs stored here because they were new or newer. */
  readonly updated: number;
  /** Lines refused (bad line, failed checks); older ones than ours are not counted. */
  readonly refused: number;
}

/** The primary's base URL with one trailing `/` removed; throws on anything but http(s). */
export function normalizePrimaryUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`primary: "${url}" is not a URL (expected http(s)://host:port)`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new Error(`primary: "${url}" must be an http:// or https:// URL`);
  }
  return url.endsWith("/") ? url.slice(0, -1) : url;
}

/** A request to the primary that failed before (`connect`) or while (`read`) it answered. */
class PrimaryError extends Error {
  readonly stage: "connect" | "read";
  constructor(stage: "connect" | "read", cause: unknown) {
    super(describe(cause), { cause });
    this.stage = stage;
  }
}


function describe(err: unknown): string {
  if (err instanceof PrimaryError) return err.message;
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === "TimeoutError" || e.name === "AbortError") return "timed out";
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

export class Replica {
  readonly primary: string;
  private readonly registry: AccountRegistry;
  private readonly log: Logger;
  private readonly opts: ReplicaOptions;
  private readonly random: () => number;
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<AbortController>();
  private syncing: Promise<SyncResult | undefined> | undefined;
  private stopped = false;
  /** undefined until the first contact; drives "unreachable"/"reachable again" log lines. */
  private reachable: boolean | undefined;
  private lastSyncMs: number | undefined;
  private readonly warned = new Set<string>();

  constructor(opts: ReplicaOptions) {
    this.opts = opts;
    this.primary = normalizePrimaryUrl(opts.primary);
    this.registry = opts.registry;
    this.log = opts.log;
    this.random = opts.random ?? Math.random;
  }

  /** For /healthz. */
  status(): Record<string, unknown> {
    return {
      url: this.primary,
      reachable: this.reachable ?? null,
      last_sync: this.lastSyncMs === undefined ? null : new Date(this.lastSyncMs).toISOString(),
    };
  }

  /** The startup import; never fails: without the primary the replica serves what it stored. */
  async importAtStart(): Promise<void> {
    if (this.opts.maxPack === 0) {
      this.log.info("maxreplicationpack is 0, not importing JWTs from the primary");
      return;
    }
    this.log.info(`importing account JWTs from primary ${this.primary}`);
    const r = await this.sync();
    if (r) {
      this.log.info(
        `imported ${r.updated} new or updated account JWT(s) from the primary (${r.received} in its pack` +
          `${r.refused > 0 ? `, ${r.refused} refused` : ""})`,
      );
    } else {
      this.log.warn("will use what is on disk");
    }
  }

  /** Keep following the primary with periodic re-syncs. */
  start(): void {
    if (this.opts.intervalMs > 0 && this.opts.maxPack !== 0) this.scheduleNext();
  }

  private scheduleNext(): void {
    if (this.stopped) return;
    // Jitter spreads many replicas' requests, and only shortens the wait, so an update reaches a
    // replica within one interval.
    const delay = Math.max(1, Math.round(this.opts.intervalMs * (1 - 0.2 * this.random())));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.sync().then((r) => {
        if (r && (r.updated > 0 || r.refused > 0)) {
          this.log.info(`re-sync with the primary: ${r.updated} account JWT(s) updated, ${r.refused} refused`);
        }
        this.scheduleNext();
      });
    }, delay);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const c of this.inFlight) c.abort();
    await this.syncing;
  }

  /** Fetch the primary's pack and store every JWT that is new or newer; undefined if unreachable. */
  sync(): Promise<SyncResult | undefined> {
    if (!this.syncing) {
      this.syncing = this.syncOnce().finally(() => {
        this.syncing = undefined;
      });
    }
    return this.syncing;
  }

  private async syncOnce(): Promise<SyncResult | undefined> {
    const base = `${this.primary}/jwt/v1/pack`;
    let url = `${base}?max=${this.opts.maxPack}`;
    let text: string;
    try {
      let res = await this.request(url, { method: "GET" });
      // A primary with a lower maxreplicationpack refuses our max: take as many as it allows.
      if (res.status === 400 && res.body.includes("bad max parameter")) {
        this.warnOnce("max", `the primary refuses max=${this.opts.maxPack} (${res.body.trim()}); using its own limit`);
        url = base;
        res = await this.request(url, { method: "GET" });
      }
      text = res.body;
      if (res.status !== 200) {
        throw new Error(`status ${res.status}${text ? `: ${text.trim().slice(0, 200)}` : ""}`);
      }
    } catch (err) {
      if (!this.stopped) this.markUnreachable(`fetching ${url} failed: ${describe(err)}`);
      return undefined;
    }
    this.markReachable();
    this.lastSyncMs = Date.now();
    let received = 0;
    let updated = 0;
    let refused = 0;
    for (const line of text.split("\n")) {
      if (this.stopped) break;
      if (line.trim() === "") continue;
      received++;
      const outcome = await this.merge(line);
      if (outcome === "updated") updated++;
      else if (outcome === "refused") refused++;
    }
    if (received >= this.opts.maxPack) {
      this.warnOnce(
        "cut",
        `the primary's pack was cut at ${received} JWTs (maxreplicationpack); accounts beyond it are not replicated`,
      );
    }
    return { received, updated, refused };
  }

  private warnOnce(what: string, msg: string): void {
    if (this.warned.has(what)) return;
    this.warned.add(what);
    this.log.warn(msg);
  }

  /** One `<key>|<jwt>` line, through the full write path. A bad line is logged and skipped. */
  private async merge(line: string): Promise<"updated" | "same" | "refused"> {
    const bar = line.indexOf("|");
    const key = bar < 0 ? "" : line.slice(0, bar).trim();
    const jwt = bar < 0 ? "" : line.slice(bar + 1).trim();
    if (!isPublicKey(key, "account") || jwt === "" || jwt.includes("|")) {
      this.log.warn(`ignoring a malformed line in the primary's pack: ${line.slice(0, 80)}`);
      return "refused";
    }
    // Re-syncs mostly see JWTs we already hold: skip them before any signature check.
    if (this.registry.store.get(key)?.digest === digestOf(jwt)) return "same";
    try {
      const r = await this.registry.accept(jwt, { source: "primary", key });
      return r.changed ? "updated" : "same";
    } catch (err) {
      if (isAccountServerError(err) && (err.code === "OLDER_JWT" || err.code === "ACCOUNT_DELETED")) {
        this.log.debug(`keeping our JWT for account - ${key.slice(0, 12)} - ${err.phrase}`);
        return "same";
      }
      const why = isAccountServerError(err) ? `${err.phrase}${err.reason ? ` - ${err.reason}` : ""}` : String(err);
      this.log.warn(`ignoring JWT for account - ${key.slice(0, 12)} - from the primary: ${why}`, {
        account: key,
        source: "primary",
        code: isAccountServerError(err) ? err.code : "INTERNAL",
      });
      return "refused";
    }
  }

  /**
   * Send a write (upload or deletion) to the primary (same path, query, body and content type)
   * and relay its answer; when the primary took it, `applyLocally` makes this replica serve the
   * result at once. Throws PRIMARY_UNAVAILABLE (503) when the primary cannot be reached.
   */
  async forward(
    method: "POST" | "DELETE",
    pathAndQuery: string,
    body: string,
    contentType: string | undefined,
    applyLocally: () => Promise<unknown>,
  ): Promise<ForwardedAnswer> {
    const url = this.primary + pathAndQuery;
    let res: ForwardedAnswer;
    try {
      res = await this.request(url, {
        method,
        body,
        headers: contentType ? { "Content-Type": contentType } : {},
      });
    } catch (err) {
      const why = describe(err);
      if (err instanceof PrimaryError && err.stage === "read") {
        throw new AccountServerError("PRIMARY_BAD_RESPONSE", { reason: `${this.primary}: ${why}`, cause: err });
      }
      this.markUnreachable(`forwarding an upload to ${url} failed: ${why}`);
      throw new AccountServerError("PRIMARY_UNAVAILABLE", { reason: `${this.primary}: ${why}`, cause: err });
    }
    this.markReachable();
    if (res.status === 200) {
      // The primary took a deliberate write: apply it here like one (an upload also lifts a deletion).
      await applyLocally().catch((err: unknown) => {
        const why = isAccountServerError(err) ? err.phrase : String(err);
        this.log.warn(`the primary accepted ${method} ${pathAndQuery} but this replica did not apply it: ${why}`);
      });
    }
    return res;
  }

  /** One request under the timeout, body included. */
  private async request(url: string, init: RequestInit): Promise<ForwardedAnswer> {
    const ctl = new AbortController();
    this.inFlight.add(ctl);
    const timer = setTimeout(() => ctl.abort(new DOMException("timed out", "TimeoutError")), this.opts.timeoutMs);
    try {
      let res: Response;
      try {
        res = await fetch(url, { ...init, signal: ctl.signal });
      } catch (err) {
        throw new PrimaryError("connect", err);
      }
      try {
        const text = await res.text();
        return { status: res.status, contentType: res.headers.get("content-type") ?? undefined, body: text };
      } catch (err) {
        throw new PrimaryError("read", err);
      }
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(ctl);
    }
  }

  private markUnreachable(why: string): void {
    if (this.reachable === false) {
      this.log.debug(why);
      return;
    }
    this.reachable = false;
    this.log.warn(`primary ${this.primary} is unreachable (${why}); serving the JWTs stored here`);
  }

  private markReachable(): void {
    if (this.reachable === false) this.log.info(`primary ${this.primary} is reachable again`);
    this.reachable = true;
  }
}
