/**
 * Announces every stored change to nats-servers exactly once, on the subject all resolver
 * types (URL, MEMORY, full, cache) apply. Changes made while NATS is away are sent on connect.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { AccountChange, AccountRegistry } from "../accounts.js";
import type { Logger } from "../log.js";
import type { NatsLink } from "./connection.js";

/** Where full and cache resolvers take operator-signed delete requests. */
export const DELETE_SUBJECT = "$SYS.REQ.CLAIMS.DELETE";

/** Legacy update subject: every nats-server resolver type and the Go account server listen here. */
export function updateSubject(key: string): string {
  return `$SYS.ACCOUNT.${key}.CLAIMS.UPDATE`;
}

export class Notifier {
  /** Keys changed while no connection was up; their current JWT is sent on connect. */
  private readonly pending = new Set<string>();

  private readonly registry: AccountRegistry;
  private readonly link: NatsLink | undefined;
  private readonly log: Logger;

  constructor(registry: AccountRegistry, link: NatsLink | undefined, log: Logger) {
    this.registry = registry;
    this.link = link;
    this.log = log;
    registry.onChange((c) => this.onChange(c));
    link?.onConnected((nc) => this.flush(nc));
  }

  /** Last delete request forwarded: one request deletes many accounts, it is forwarded once. */
  private lastDeleteClaim: string | undefined;

  private onChange(c: AccountChange): void {
    if (c.entry) {
      this.notify(c.key);
      return;
    }
    // A deletion received over NATS already reached the nats-servers; one made over HTTP is
    // forwarded so full/cache resolvers lock the account out too.
    if (c.deleted && c.deleteClaim && c.source === "http" && c.deleteClaim !== this.lastDeleteClaim) {
      this.lastDeleteClaim = c.deleteClaim;
      const nc = this.link?.connection;
      if (nc) nc.publish(DELETE_SUBJECT, c.deleteClaim);
      else if (this.link) this.log.warn("NATS not connected: the delete request was not forwarded to the nats-servers");
    }
  }

  /** Announce the current JWT of `key` (also used by `GET ?notify=true`). */
  notify(key: string): void {
    const nc = this.link?.connection;
    if (!this.link) {
      this.log.debug(`skipping notification for ${key.slice(0, 12)}, no NATS configured`);
      return;
    }
    if (!nc) {
      this.pending.add(key);
      this.log.debug(`NATS not connected, notification for ${key.slice(0, 12)} deferred`);
      return;
    }
    this.publish(nc, key);
  }

  /** Number of changes waiting for a connection. */
  get backlog(): number {
    return this.pending.size;
  }

  private publish(nc: NatsConnection, key: string): void {
    const entry = this.registry.get(key);
    if (!entry) return;
    try {
      nc.publish(updateSubject(key), entry.jwt);
      this.log.trace(`published update for ${key}`);
    } catch (err) {
      this.pending.add(key);
      this.log.error(`notification for ${key.slice(0, 12)} failed: ${(err as Error).message}`);
    }
  }

  private flush(nc: NatsConnection): void {
    if (this.pending.size === 0) return;
    const keys = [...this.pending];
    this.pending.clear();
    this.log.info(`sending ${keys.length} notification(s) deferred while NATS was unavailable`);
    for (const k of keys) this.publish(nc, k);
  }
}
