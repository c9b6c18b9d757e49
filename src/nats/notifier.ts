/**
 * Announces every stored change to nats-servers exactly once, on the subject all resolver
 * types (URL, MEMORY, full, cache) apply. Changes made while NATS is away are sent on connect.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { AccountChange, AccountRegistry, WriteJournal } from "../accounts.js";
import { errorText } from "../errors.js";
import type { Logger } from "../log.js";
import type { NatsLink } from "./connection.js";
import { Outbox } from "./outbox.js";
import { peekClaims } from "../jwt/index.js";

const jtiOf = (jwt: string): string => peekClaims(jwt)?.jti ?? "";

/** Where full and cache resolvers take operator-signed delete requests. */
export const DELETE_SUBJECT = "$SYS.REQ.CLAIMS.DELETE";

/** Legacy update subject: every nats-server resolver type and the Go account server listen here. */
export function updateSubject(key: string): string {
  return `$SYS.ACCOUNT.${key}.CLAIMS.UPDATE`;
}

/** Legacy activation subject: `<issuer>` signed the token, `<hash>` is its activation id. */
export function activationSubject(issuer: string, hash: string): string {
  return `$SYS.ACCOUNT.${issuer}.CLAIMS.ACTIVATE.${hash}`;
}

/** One published account update, for the console: when, which JWT, and whether a server confirmed it. */
export interface NotificationRecord {
  readonly key: string;
  readonly jti: string;
  readonly sentAt: Date;
  /** Set once a nats-server confirmed it (PING/PONG after the publish). */
  confirmedAt: Date | undefined;
}

/** How many recent notifications are remembered. */
const RECENT_MAX = 50;

export class Notifier implements WriteJournal {
  /**
   * Keys whose change no nats-server has confirmed yet (durable with a state file). Each is
   * published once when it changes, and again on every (re)connect until a flush confirms it.
   */
  private readonly outbox: Outbox;
  /** The connection while it is up; publishing on a reconnecting client would be discarded. */
  private nc: NatsConnection | undefined;
  /** Published on `nc` since the last flush, with the outbox generation that was sent. */
  private sent = new Map<string, number>();
  /** Generation last published per key not confirmed yet: sending it again may duplicate it. */
  private readonly published = new Map<string, number>();
  /**
   * Announcements published again because the connection dropped before a nats-server confirmed
   * them: the server may have passed them on before it went away, so subscribers may see them twice.
   */
  resent = 0;
  private confirmTimer: NodeJS.Immediate | undefined;
  private readonly confirming = new Set<Promise<void>>();
  /** Activation tokens stored while no connection was up, by hash (the latest one wins). */
  private readonly pendingActivations = new Map<string, { issuer: string; jwt: string }>();
  /** Account updates published, and those a nats-server confirmed, since start (metrics). */
  private sentCount = 0;
  private confirmedCount = 0;
  /** The last RECENT_MAX published updates, newest last; those of the batch awaiting its PONG. */
  private readonly recentLog: NotificationRecord[] = [];
  private sentRecords: NotificationRecord[] = [];

  private readonly registry: AccountRegistry;
  private readonly link: NatsLink | undefined;
  private readonly log: Logger;

  /** `outbox` must be opened already; without one, pending changes are kept in memory. */
  constructor(registry: AccountRegistry, link: NatsLink | undefined, log: Logger, outbox?: Outbox) {
    this.registry = registry;
    this.link = link;
    this.log = log;
    this.outbox = outbox ?? new Outbox({ log });
    if (link) registry.addJournal(this);
    link?.onConnected((nc) => {
      this.nc = nc;
      this.flush(nc);
    });
    link?.onDisconnected(() => {
      this.nc = undefined;
    });
  }

  /** WriteJournal: the change of `key` is recorded durably before the store writes it. */
  begin(key: string): Promise<void> {
    return this.outbox.begin(key);
  }

  end(key: string, stored: boolean): void {
    this.outbox.end(key, stored);
  }

  /** How long a shutdown waits for nats-servers to confirm the last notifications. */
  static readonly CLOSE_WAIT_MS = 2000;

  /** Wait for confirmations in flight and save the outbox (before the link closes). */
  async close(): Promise<void> {
    if (this.confirmTimer) {
      clearImmediate(this.confirmTimer);
      this.confirmTimer = undefined;
      if (this.nc) this.confirm(this.nc);
    }
    // A server that stopped answering PINGs must not hold up the shutdown; what is not confirmed
    // stays in the outbox and is announced again after the restart.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.confirming]),
      new Promise<void>((r) => (timer = setTimeout(r, Notifier.CLOSE_WAIT_MS))),
    ]);
    clearTimeout(timer);
    await this.outbox.save().catch((err: unknown) => {
      this.log.error(`saving the notification outbox failed: ${errorText(err)}`);
    });
  }

  /** Last delete request forwarded: one request deletes many accounts, it is forwarded once. */
  private lastDeleteClaim: string | undefined;

  /** A change on the registry's feed (subscribed by the composition root). */
  accountChanged(c: AccountChange): void {
    // The instance that wrote a shared store announces the change; the others stay quiet.
    if (c.source === "cluster") return;
    // A write of ours that landed after its answer was lost is announced only if it was one we
    // announce (its outbox entry waits for it), not a copy of someone else's broadcast.
    if (c.source === "own" && this.outbox.generation(c.key) === undefined) return;
    // Every nats-server already received a JWT that came in on a per-account update subject.
    if (c.broadcast) return;
    if (c.entry) {
      if (!this.link) return;
      // Writes through the registry were journalled already; anything else is queued here.
      if (this.outbox.generation(c.key) === undefined) this.outbox.mark(c.key);
      // The change brings the JWT and its jti: nothing to look up or parse again.
      if (this.nc && c.jwt !== undefined) this.send(this.nc, c.key, this.outbox.generation(c.key), c.jwt, c.jti);
      else if (this.nc) this.publish(this.nc, c.key);
      else this.log.debug(`NATS not connected, notification for ${c.key.slice(0, 12)} deferred`);
      return;
    }
    // A deletion received over NATS already reached the nats-servers; one made over HTTP is
    // forwarded so full/cache resolvers lock the account out too.
    if (c.deleted && c.deleteClaim && c.source === "http" && c.deleteClaim !== this.lastDeleteClaim) {
      this.lastDeleteClaim = c.deleteClaim;
      const nc = this.nc;
      if (nc) nc.publish(DELETE_SUBJECT, c.deleteClaim);
      else if (this.link) this.log.warn("NATS not connected: the delete request was not forwarded to the nats-servers");
    }
  }

  /** Announce the current JWT of `key` (also used by `GET ?notify=true`). */
  notify(key: string): void {
    const nc = this.nc;
    if (!this.link) {
      this.log.debug(`skipping notification for ${key.slice(0, 12)}, no NATS configured`);
      return;
    }
    this.outbox.mark(key);
    if (!nc) {
      this.log.debug(`NATS not connected, notification for ${key.slice(0, 12)} deferred`);
      return;
    }
    this.publish(nc, key);
  }

  /** Announce an activation token (stored, or asked for with `GET ?notify=true`). */
  notifyActivation(issuer: string, hash: string, jwt: string): void {
    if (!this.link) {
      this.log.debug(`skipping activation notification for ${hash.slice(0, 12)}, no NATS configured`);
      return;
    }
    const nc = this.nc;
    if (!nc) {
      this.pendingActivations.set(hash, { issuer, jwt });
      this.log.debug(`NATS not connected, activation notification for ${hash.slice(0, 12)} deferred`);
      return;
    }
    this.publishActivation(nc, issuer, hash, jwt);
  }

  /** Number of changes waiting for a connection. */
  get backlog(): number {
    return (this.nc ? 0 : this.outbox.size) + this.pendingActivations.size;
  }

  /** True while the connection is up (not while the client is reconnecting). */
  get connected(): boolean {
    return this.nc !== undefined;
  }

  get sentTotal(): number {
    return this.sentCount;
  }

  get confirmedTotal(): number {
    return this.confirmedCount;
  }

  /** The most recent published updates, newest first. */
  get recent(): readonly NotificationRecord[] {
    return [...this.recentLog].reverse();
  }

  /** Number of account changes not yet confirmed by a nats-server (sent or not). */
  get unconfirmed(): number {
    return this.outbox.size;
  }

  private publishActivation(nc: NatsConnection, issuer: string, hash: string, jwt: string): void {
    try {
      nc.publish(activationSubject(issuer, hash), jwt);
      this.log.trace(`published activation ${hash} of ${issuer}`);
    } catch (err) {
      this.pendingActivations.set(hash, { issuer, jwt });
      this.log.error(`activation notification for ${hash.slice(0, 12)} failed: ${errorText(err)}`);
    }
  }

  private publish(nc: NatsConnection, key: string): void {
    const gen = this.outbox.generation(key);
    const entry = this.registry.get(key);
    if (!entry) {
      if (gen !== undefined) this.outbox.confirm(key, gen);
      return;
    }
    // A change just made is cached; an older one (deferred while NATS was down) is read first.
    const cached = this.registry.view(key)?.jwt;
    if (cached !== undefined) {
      this.send(nc, key, gen, cached);
      return;
    }
    this.registry.body(entry).then(
      (jwt) => {
        if (this.nc !== nc) return; // disconnected meanwhile: the outbox keeps it for the next connect
        if (jwt === undefined) this.publish(nc, key); // replaced or removed meanwhile: announce what is there now
        else this.send(nc, key, gen, jwt);
      },
      (err: unknown) => this.log.error(`notification for ${key.slice(0, 12)} failed: ${errorText(err)}`),
    );
  }

  private send(nc: NatsConnection, key: string, gen: number | undefined, jwt: string, jti = jtiOf(jwt)): void {
    try {
      nc.publish(updateSubject(key), jwt);
      this.sentCount++;
      const record: NotificationRecord = { key, jti, sentAt: new Date(), confirmedAt: undefined };
      this.recentLog.push(record);
      if (this.recentLog.length > RECENT_MAX) this.recentLog.shift();
      this.sentRecords.push(record);
      this.log.trace(`published update for ${key}`);
    } catch (err) {
      // Stays in the outbox: sent again on the next connect.
      this.log.error(`notification for ${key.slice(0, 12)} failed: ${errorText(err)}`);
      return;
    }
    if (gen === undefined) return;
    this.sent.set(key, gen);
    this.published.set(key, gen);
    this.confirmTimer ??= setImmediate(() => {
      this.confirmTimer = undefined;
      this.confirm(nc);
    });
  }

  /**
   * One PING/PONG for everything published since the last one: the server has then read those
   * messages, so their keys leave the outbox. A disconnect rejects the flush and keeps them.
   */
  private confirm(nc: NatsConnection): void {
    const batch = this.sent;
    const records = this.sentRecords;
    this.sent = new Map();
    this.sentRecords = [];
    const p = nc.flush().then(
      () => {
        for (const [key, gen] of batch) {
          this.outbox.confirm(key, gen);
          if (this.published.get(key) === gen) this.published.delete(key);
        }
        this.confirmedCount += batch.size;
        const at = new Date();
        for (const r of records) r.confirmedAt = at;
      },
      (err: unknown) => {
        this.log.debug(`${batch.size} notification(s) unconfirmed, kept for the next connect: ${errorText(err)}`);
      },
    );
    this.confirming.add(p);
    void p.finally(() => this.confirming.delete(p));
  }

  private flush(nc: NatsConnection): void {
    if (this.pendingActivations.size > 0) {
      const acts = [...this.pendingActivations];
      this.pendingActivations.clear();
      for (const [hash, a] of acts) this.publishActivation(nc, a.issuer, hash, a.jwt);
    }
    if (this.outbox.size === 0) return;
    const keys = this.outbox.keys();
    // Never confirmed is not never delivered: prefer a duplicate to a lost announcement.
    const again = keys.filter((k) => this.published.get(k) === this.outbox.generation(k)).length;
    for (const k of this.published.keys()) if (this.outbox.generation(k) === undefined) this.published.delete(k);
    this.resent += again;
    this.log.info(`sending ${keys.length} notification(s) deferred while NATS was unavailable`);
    if (again > 0) {
      this.log.warn(`${again} of them were sent before the connection dropped and not confirmed: subscribers may see those twice`);
    }
    for (const k of keys) this.publish(nc, k);
  }
}
