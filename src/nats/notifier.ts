/**
 * Announces every stored change to nats-servers exactly once, on the subject all resolver
 * types (URL, MEMORY, full, cache) apply. Changes made while NATS is away are sent on connect.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { AccountChange, AccountRegistry } from "../accounts.js";
import type { Logger } from "../log.js";
import type { NatsLink } from "./connection.js";

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

  private onChange(c: AccountChange): void {
    if (!c.entry) return;
    this.notify(c.key);
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
