/**
 * Our own `$SYS.REQ.ACCOUNT.<key>.CLAIMS.LOOKUP` on a GET miss, asked only where someone can
 * answer: account servers sharing our store never count, and a deployment nobody answers is not waited for.
 */
import { createInbox, headers, type Msg, type NatsConnection } from "@nats-io/transport-node";
import type { AccountRegistry } from "../accounts.js";
import { errorText, isAccountServerError } from "../errors.js";
import { isPublicKey } from "../jwt/index.js";
import type { Logger } from "../log.js";
import type { NatsLink } from "./connection.js";

/**
 * Header on our lookup requests, and on the replies one account server sends another of the same
 * group (nats-servers never see those: they go to our inboxes). Its value is the group.
 */
export const GROUP_HEADER = "Nas-Group";

function lookupSubject(key: string): string {
  return `$SYS.REQ.ACCOUNT.${key}.CLAIMS.LOOKUP`;
}

/** How far lookups on GET misses may go (`nats.maxlookups`, `nats.lookupmissttl`, `nats.lookupmisskeys`). */
export interface LookupLimits {
  /**
   * Most lookups open at once: those GETs wait for and those still listening for a late JWT after
   * the GET was answered. A miss over it answers 404 without asking; 0 never asks.
   */
  readonly maxOpen: number;
  /** How long, in ms, a key nobody had is answered 404 without asking (any change of the key ends it); 0: not at all. */
  readonly missTtlMs: number;
  /** Most keys remembered so; the oldest is forgotten first. */
  readonly missKeys: number;
}

export interface LookupOptions {
  readonly registry: AccountRegistry;
  readonly link: NatsLink;
  readonly log: Logger;
  /** Longest wait for an answer (the legacy `signrequesttimeout`). */
  readonly timeoutMs: number;
  /** Account servers sharing one store (the bucket) form a group; a member cannot tell us anything. */
  readonly group: string;
  readonly limits: LookupLimits;
  /** Clock in milliseconds (the negative cache's). */
  readonly now?: () => number;
}

/** Counters for /healthz and the benchmark. */
export interface LookupStats {
  asked: number;
  found: number;
  /** Lookups that waited the whole timeout without any reply. */
  waitedOut: number;
  /** Misses answered without asking: negative cache, open-lookup bound, nobody to ask. */
  skipped: number;
}

/** What one reply tells us. */
type Reply = "jwt" | "absent" | "no-responders";

/** One request on NATS, from publish until its reply, its timeout or being cut short. */
interface OpenLookup {
  /** Resolves when the GET may answer: true when the JWT is now held. */
  readonly waited: Promise<boolean>;
  /** The GET was answered; the request only listens on for a late JWT. */
  released: boolean;
  /** The key changed meanwhile: a miss must not be remembered. */
  changed: boolean;
  /** End the request now (it no longer listens). */
  stop(): void;
}

export class Lookups {
  readonly stats: LookupStats = { asked: 0, found: 0, waitedOut: 0, skipped: 0 };
  private readonly registry: AccountRegistry;
  private readonly link: NatsLink;
  private readonly log: Logger;
  private readonly timeoutMs: number;
  readonly group: string;
  private readonly limits: LookupLimits;
  private readonly now: () => number;
  /** Open lookups GETs still wait for. */
  private waiting = 0;
  /** One lookup open per key (concurrent misses share it), oldest first. */
  private readonly open = new Map<string, OpenLookup>();
  /** Key → until when a miss answers at once (insertion order = expiry order). */
  private readonly negative = new Map<string, number>();
  /** Someone outside the group answered a lookup with a JWT, or a pack sync brought us JWTs. */
  private answerers = false;
  /** A lookup waited out its timeout without any reply (listeners that never answer, e.g. cache resolvers). */
  private silence = false;

  constructor(o: LookupOptions) {
    this.registry = o.registry;
    this.link = o.link;
    this.log = o.log;
    this.timeoutMs = o.timeoutMs;
    this.group = o.group;
    this.limits = o.limits;
    this.now = o.now ?? (() => performance.now());
  }

  /** A change on the registry's feed: a cached "nobody holds it" for that key is stale. */
  accountChanged(key: string): void {
    this.negative.delete(key);
    const o = this.open.get(key);
    if (o) o.changed = true;
  }

  /** Lookups open now, and keys remembered as missing (for /healthz). */
  get counts(): { open: number; remembered: number } {
    return { open: this.open.size, remembered: this.negative.size };
  }

  /**
   * How long misses wait: "answerers" (someone outside the group has answered) up to the
   * timeout; "first" for the first reply; "none" (a lookup went unanswered) briefly.
   */
  get mode(): "answerers" | "first" | "none" {
    return this.answerers ? "answerers" : this.silence ? "none" : "first";
  }

  /** A peer outside the group gave us JWTs we lacked (pack sync): from now on misses wait for answers. */
  answered(): void {
    if (!this.answerers) this.log.info("account JWTs came from a peer over NATS: GET misses now wait for lookup answers");
    this.answerers = true;
  }

  /**
   * Ask for `key` (an HTTP GET missed). Whatever comes back goes through the registry like a
   * sync. Resolves true when the JWT is now held; undefined when not asked (answer 404 at once):
   * the key missed recently, `maxOpen` GETs already wait, or there is nobody to ask. Random keys
   * thus cost at most `maxOpen` requests at a time, never a queue.
   */
  lookup(key: string): Promise<boolean> | undefined {
    const shared = this.open.get(key);
    if (shared) return shared.waited;
    const nc = this.link.connection;
    const askable = nc && isPublicKey(key, "account") && this.registry.store.writable && !this.isNegative(key);
    if (!askable || this.waiting >= this.limits.maxOpen) {
      this.stats.skipped++;
      return undefined;
    }
    // Room for a GET that waits goes before listening on for late answers: end the oldest of those.
    if (this.open.size >= this.limits.maxOpen) {
      for (const [k, o] of this.open) {
        if (!o.released) continue;
        this.open.delete(k);
        o.stop();
        break;
      }
    }
    const o = this.ask(nc, key);
    this.open.set(key, o);
    return o.waited;
  }

  private isNegative(key: string): boolean {
    const until = this.negative.get(key);
    if (until === undefined) return false;
    const t = this.now();
    // Past its time, or a clock set back (an entry never outlives its TTL).
    if (t < until && until - t <= this.limits.missTtlMs) return true;
    this.negative.delete(key);
    return false;
  }

  private remember(key: string): void {
    if (this.limits.missTtlMs <= 0) return;
    this.negative.delete(key);
    if (this.negative.size >= this.limits.missKeys) {
      const oldest = this.negative.keys().next().value;
      if (oldest !== undefined) this.negative.delete(oldest);
    }
    this.negative.set(key, this.now() + this.limits.missTtlMs);
  }

  /** How long a miss waits for a first reply once lookups have gone unanswered. */
  static readonly PROBE_MS = 100;

  /**
   * One request. `waited` resolves when the GET may answer: on a JWT; on "no responders"; with
   * answerers known, otherwise after the timeout; before that, on any first reply (a member's
   * "absent") or after the timeout, and once a lookup went unanswered after PROBE_MS. The request
   * stays open until then or the timeout: a JWT arriving after `waited` is still stored.
   */
  private ask(nc: NatsConnection, key: string): OpenLookup {
    this.stats.asked++;
    const mode = this.mode;
    const inbox = createInbox();
    const sub = nc.subscribe(inbox);
    const h = headers();
    h.set(GROUP_HEADER, this.group);
    let resolveWaited: (found: boolean) => void = () => {};
    const o: OpenLookup = {
      waited: new Promise<boolean>((r) => (resolveWaited = r)),
      released: false,
      changed: false,
      stop: () => sub.unsubscribe(),
    };
    this.waiting++;
    const release = (found: boolean): void => {
      if (o.released) return;
      o.released = true;
      this.waiting--;
      resolveWaited(found);
    };
    const probe =
      mode === "none" ? setTimeout(() => setImmediate(() => release(false)), Math.min(this.timeoutMs, Lookups.PROBE_MS)) : undefined;
    void (async (): Promise<boolean> => {
      const timer = setTimeout(() => sub.unsubscribe(), this.timeoutMs);
      try {
        nc.publish(lookupSubject(key), "", { reply: inbox, headers: h });
        for await (const m of sub) {
          const r = await this.onReply(key, m);
          if (r === "jwt") return true;
          if (r === "no-responders") return false;
          if (mode !== "answerers") release(false);
        }
        if (!o.released) {
          this.stats.waitedOut++;
          if (mode === "first") {
            this.silence = true;
            this.log.info(`nobody answered an account lookup on NATS: GET misses wait at most ${Lookups.PROBE_MS} ms for one now`);
          }
          this.log.debug(`lookup of ${key.slice(0, 12)} on NATS: no answer within ${this.timeoutMs} ms`);
        }
        return false;
      } finally {
        clearTimeout(timer);
        clearTimeout(probe);
        sub.unsubscribe();
      }
    })()
      .then(
        (found) => {
          if (found) this.stats.found++;
          else if (!o.changed) this.remember(key);
          return found;
        },
        (err: unknown) => {
          this.log.debug(`lookup of ${key.slice(0, 12)} on NATS: ${errorText(err)}`);
          return false;
        },
      )
      .then((found) => {
        release(found);
        if (this.open.get(key) === o) this.open.delete(key);
      });
    return o;
  }

  private async onReply(key: string, m: Msg): Promise<Reply> {
    if (m.headers?.code === 503) return "no-responders";
    const member = m.headers?.get(GROUP_HEADER) === this.group;
    const jwt = m.string();
    // Newer servers answer an empty body for "not found"; a member says so with its header.
    if (jwt === "") return "absent";
    try {
      await this.registry.accept(jwt, { source: "lookup", key });
    } catch (err) {
      const why = isAccountServerError(err) ? err.phrase : errorText(err);
      this.log.warn(`lookup of ${key.slice(0, 12)} on NATS returned a JWT we refuse: ${why}`);
      return "absent";
    }
    if (!member && !this.answerers) {
      this.answerers = true;
      this.log.info("a peer answered an account lookup on NATS: GET misses now wait for lookup answers");
    }
    return "jwt";
  }
}
