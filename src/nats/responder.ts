/**
 * The server as a peer of nats-server's NATS-based resolvers on the system account: answers
 * LOOKUP, PACK, LIST, DELETE and the three UPDATE subjects, and asks LOOKUP itself on a miss.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { headers, type Msg, type NatsConnection } from "@nats-io/transport-node";
import type { AccountRegistry } from "../accounts.js";
import { AccountServerError, type ErrorCode, errorText, isAccountServerError } from "../errors.js";
import { encodePublicKey, peekClaims } from "../jwt/index.js";
import type { Logger } from "../log.js";
import { VERSION } from "../version.js";
import type { NatsLink } from "./connection.js";
import { GROUP_HEADER, Lookups, type LookupLimits } from "./lookup.js";
import { DELETE_SUBJECT, type Notifier } from "./notifier.js";

/** Asked by full and cache resolvers for an account they do not hold. */
export const LOOKUP_SUBJECTS = "$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP";
/** Legacy update subject (5 tokens): every resolver type and the Go account server listen. */
export const LEGACY_UPDATE_SUBJECTS = "$SYS.ACCOUNT.*.CLAIMS.UPDATE";
/** Per-account update request (6 tokens): every resolver type listens. */
export const ACCOUNT_UPDATE_SUBJECTS = "$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE";
/** Update request naming no account (what `nsc push -u nats://` sends): full and cache only. */
export const UPDATE_SUBJECT = "$SYS.REQ.CLAIMS.UPDATE";
export const LIST_SUBJECT = "$SYS.REQ.CLAIMS.LIST";
export const PACK_SUBJECT = "$SYS.REQ.CLAIMS.PACK";
/** Full resolvers answer PACK in this queue group, so each request gets exactly one stream. */
export const PACK_QUEUE = "responder";
/** JWTs of a PACK reply read from the store at once. */
const PACK_CHUNK = 256;
export { DELETE_SUBJECT };

/** The `server` object of every JSON reply; nsc refuses replies whose `name` is empty. */
export class ServerIdentity {
  readonly name: string;
  readonly host: string;
  /** A server nkey made up per process, as nats-server and the Go account server did. */
  readonly id: string;
  private seq = 0;
  private readonly now: () => number;

  constructor(o: { name?: string | undefined; now?: () => number } = {}) {
    this.name = o.name !== undefined && o.name !== "" ? o.name : "nats-account-server";
    this.host = hostname();
    this.id = encodePublicKey("server", randomBytes(32));
    this.now = o.now ?? Date.now;
  }

  /** The object for the next reply (`seq` increases per reply). */
  next(): Record<string, unknown> {
    return {
      name: this.name,
      host: this.host,
      id: this.id,
      ver: VERSION,
      seq: ++this.seq,
      jetstream: false,
      time: new Date(this.now()).toISOString(),
    };
  }
}

export interface ResponderOptions {
  readonly registry: AccountRegistry;
  readonly link: NatsLink;
  readonly notifier: Notifier;
  readonly log: Logger;
  /** ms to wait for an answer to our own LOOKUP (the legacy `signrequesttimeout`). */
  readonly lookupTimeoutMs: number;
  /** Bounds of our own lookups (open at once, remembered misses). */
  readonly lookupLimits: LookupLimits;
  /**
   * The account servers sharing our store (the bucket name of a KV store): they tell each other
   * apart from other peers. Default: this process alone.
   */
  readonly group?: string | undefined;
  /** `server.name` in replies. */
  readonly name?: string | undefined;
  /** `signrequestsubject` is set (HTTP uploads only; see README "Signing service"). */
  readonly signing?: boolean;
  /** Wall clock in milliseconds. */
  readonly now?: () => number;
  /** Told the code of every refused update (metrics). */
  readonly onRefused?: (code: ErrorCode) => void;
}

/** The `jti` of a refused JWT, for the log line's fields (nothing when it does not decode). */
function jtiOf(jwt: string): { jti?: string } {
  const jti = peekClaims(jwt)?.jti;
  return typeof jti === "string" && jti !== "" ? { jti } : {};
}

type UpdateKind = "legacy" | "account" | "any";

/** Why an update or delete was refused, in the words nats-server uses where it has some. */
function refusalText(err: unknown): string {
  if (!isAccountServerError(err)) return errorText(err) ?? String(err);
  switch (err.code) {
    case "KEY_MISMATCH":
      return "subject does not match jwt content";
    case "BAD_JWT":
      // The decoder's reason is Go's error text ("expected 3 chunks", ...).
      return err.reason ?? err.phrase;
    case "VALIDATION_FAILED":
      return err.details.length > 0 ? err.details.join("; ") : err.phrase;
    default:
      return err.phrase;
  }
}

export class Responder {
  readonly identity: ServerIdentity;
  private readonly registry: AccountRegistry;
  private readonly notifier: Notifier;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly signing: boolean;
  private readonly onRefused: ((code: ErrorCode) => void) | undefined;
  /** Our own lookups on GET misses. */
  readonly lookups: Lookups;
  /** Connection objects already subscribed (the client re-subscribes by itself on reconnect). */
  private readonly attached = new WeakSet<NatsConnection>();

  constructor(o: ResponderOptions) {
    this.registry = o.registry;
    this.notifier = o.notifier;
    this.log = o.log;
    this.now = o.now ?? Date.now;
    this.signing = o.signing === true;
    this.onRefused = o.onRefused;
    this.identity = new ServerIdentity({ name: o.name, now: this.now });
    this.lookups = new Lookups({
      registry: o.registry,
      link: o.link,
      log: o.log,
      timeoutMs: o.lookupTimeoutMs,
      group: o.group ?? this.identity.id,
      now: this.now,
      limits: o.lookupLimits,
    });
    o.link.onConnected((nc) => this.attach(nc));
  }

  private attach(nc: NatsConnection): void {
    if (this.attached.has(nc)) return;
    this.attached.add(nc);
    const on = (subject: string, handler: (m: Msg) => unknown, queue?: string): void => {
      nc.subscribe(subject, {
        ...(queue ? { queue } : {}),
        callback: (err, m) => {
          if (err) {
            this.log.error(`NATS subscription ${subject} failed: ${err.message}`);
            return;
          }
          try {
            const r = handler(m);
            if (r instanceof Promise) r.catch((e: unknown) => this.failed(subject, e));
          } catch (e) {
            this.failed(subject, e);
          }
        },
      });
    };
    on(LOOKUP_SUBJECTS, (m) => this.onLookup(nc, m));
    on(PACK_SUBJECT, (m) => this.onPack(nc, m), PACK_QUEUE);
    if (!this.registry.store.writable) {
      // Nothing pushed could be stored: stay silent like a URL resolver rather than fail every
      // `nsc push`. LIST goes with DELETE (nsc compares their reply counts).
      this.log.info("answering account lookups and pack requests on NATS (read-only store: no updates or deletions)");
      return;
    }
    on(LEGACY_UPDATE_SUBJECTS, (m) => this.onUpdate(nc, m, "legacy"));
    on(ACCOUNT_UPDATE_SUBJECTS, (m) => this.onUpdate(nc, m, "account"));
    on(UPDATE_SUBJECT, (m) => this.onUpdate(nc, m, "any"));
    on(LIST_SUBJECT, (m) => this.onList(nc, m));
    on(DELETE_SUBJECT, (m) => this.onDelete(nc, m));
    this.log.info("answering account lookups, updates, lists, deletions and pack requests on NATS");
  }

  private failed(subject: string, err: unknown): void {
    this.log.error(`handling a message on ${subject} failed: ${errorText(err) ?? String(err)}`);
  }

  private reply(nc: NatsConnection, m: Msg, body: Record<string, unknown>): void {
    if (!m.reply) return;
    // Without headers: full/cache resolvers of some versions parse a header block as payload.
    nc.publish(m.reply, JSON.stringify({ ...body, server: this.identity.next() }));
  }

  /** True when the index says `key` is one we would serve: decodes, trusted, not expired. */
  private servable(key: string): boolean {
    const e = this.registry.get(key);
    return e !== undefined && this.registry.servable(e, this.now());
  }

  /** The stored JWT for `key` if we would serve it (read once when not cached; its signature checked). */
  private async servableJwt(key: string): Promise<string | undefined> {
    if (!this.servable(key)) return undefined;
    const v = this.registry.view(key) ?? (await this.registry.load(key).catch(() => undefined));
    return v?.valid && !(v.exp > 0 && v.exp * 1000 <= this.now()) ? v.jwt : undefined;
  }

  private storeReady(): boolean {
    return this.registry.store.ready !== false;
  }

  // ---- LOOKUP ---------------------------------------------------------------------------

  /**
   * Reply only with a JWT we hold: 2.9.10 stores an empty reply as a 0-byte file. An account
   * server of our own group (its request carries our group) gets an answer at once either way,
   * marked as ours: it shares our store, so our silence would only make it wait.
   */
  private async onLookup(nc: NatsConnection, m: Msg): Promise<void> {
    if (!m.reply) return;
    const key = m.subject.split(".")[3] ?? "";
    const jwt = await this.servableJwt(key);
    if (m.headers?.get(GROUP_HEADER) === this.lookups.group) {
      if (!this.storeReady()) return;
      const h = headers();
      h.set(GROUP_HEADER, this.lookups.group);
      nc.publish(m.reply, jwt ?? "", { headers: h });
      return;
    }
    if (jwt === undefined) {
      this.log.trace(`lookup for ${key.slice(0, 12)}: not held, not answering`);
      return;
    }
    nc.publish(m.reply, jwt);
    this.log.debug(`answered lookup for ${key.slice(0, 12)}`);
  }

  /** Ask the system account for `key` (an HTTP GET missed); resolves true when it is now held. */
  lookup(key: string): Promise<boolean> | undefined {
    return this.lookups.lookup(key);
  }

  // ---- UPDATE ---------------------------------------------------------------------------

  private async onUpdate(nc: NatsConnection, m: Msg, kind: UpdateKind): Promise<void> {
    const tokens = m.subject.split(".");
    const subjectKey = kind === "legacy" ? tokens[2] : kind === "account" ? tokens[3] : undefined;
    const jwt = m.string();
    let account = subjectKey ?? "n/a";
    try {
      if (jwt === "") throw new Error("request body is empty");
      // Peers announce on the per-account subjects; only a deliberate push (nsc, on
      // `$SYS.REQ.CLAIMS.UPDATE`) brings a deleted account back.
      if (subjectKey !== undefined && this.registry.store.isDeleted(subjectKey) && !this.registry.store.get(subjectKey)) {
        throw new AccountServerError("ACCOUNT_DELETED", { reason: subjectKey });
      }
      const { entry } = await this.registry.accept(jwt, {
        source: "nats",
        ...(subjectKey !== undefined ? { key: subjectKey } : {}),
        // Per-account subjects reach every nats-server and account server already; a JWT taken
        // from `$SYS.REQ.CLAIMS.UPDATE` is announced (URL and MEMORY resolvers do not listen there).
        broadcast: kind !== "any",
      });
      this.reply(nc, m, { data: { account: entry.key, code: 200, message: "jwt updated" } });
    } catch (err) {
      // Parsed again only for a refusal without a key in the subject (the success path gets it checked).
      if (subjectKey === undefined && !(isAccountServerError(err) && err.code === "BAD_JWT")) {
        account = peekClaims(jwt)?.sub || "n/a";
      }
      const code = isAccountServerError(err) ? err.code : "INTERNAL";
      this.onRefused?.(code);
      const why =
        isAccountServerError(err) && err.code === "SIGNING_NOT_ENABLED" && this.signing
          ? "self-signed account JWTs go to the signing service only when uploaded over HTTP (POST /jwt/v1/accounts/<key>)"
          : refusalText(err);
      const message =
        isAccountServerError(err) && err.code === "VALIDATION_FAILED" ? "jwt validation failed" : "jwt update resulted in error";
      this.log.warn(`refused JWT update for ${account.slice(0, 12)} on ${m.subject}: ${why}`, {
        account,
        ...jtiOf(jwt),
        source: "nats",
        code,
      });
      // nats-servers apply whatever they receive, older or not: announce what we hold so the
      // older JWT does not stay with them.
      if (isAccountServerError(err) && err.code === "OLDER_JWT" && this.servable(account)) {
        this.notifier.notify(account);
      }
      this.reply(nc, m, { error: { account, code: 500, description: `${message} - ${why}` } });
    }
  }

  // ---- LIST, DELETE -----------------------------------------------------------------------

  private async onList(nc: NatsConnection, m: Msg): Promise<void> {
    if (!m.reply || !this.storeReady()) return;
    // A store still indexing in the background lists everything once it is done.
    await this.registry.store.loading;
    const keys: string[] = [];
    const nowMs = this.now();
    for (const e of this.registry.store.entries()) {
      if (this.registry.servable(e, nowMs)) keys.push(e.key);
    }
    this.reply(nc, m, { data: keys });
    this.log.debug(`list request answered with ${keys.length} account(s)`);
  }

  private async onDelete(nc: NatsConnection, m: Msg): Promise<void> {
    const claim = m.string();
    try {
      const r = await this.registry.deleteAccounts(claim, "nats");
      this.log.info(`deleted ${r.accounts.length} account(s) on request of ${r.by} over NATS`);
      this.reply(nc, m, { data: { code: 200, message: `deleted ${r.accounts.length} accounts` } });
    } catch (err) {
      const sub = peekClaims(claim)?.sub ?? "";
      const description = `delete accounts request by ${sub} failed - ${refusalText(err)}`;
      this.log.warn(description);
      this.reply(nc, m, { error: { code: 500, description } });
    }
  }

  // ---- PACK -----------------------------------------------------------------------------

  /**
   * One `key|jwt` per message and an empty terminator, or just the terminator when the requester
   * already has our hash (the store keeps it incrementally; nothing is hashed here).
   */
  private async onPack(nc: NatsConnection, m: Msg): Promise<void> {
    const reply = m.reply;
    if (!reply || !this.storeReady()) return;
    await this.registry.store.loading;
    const ours = this.registry.store.hash();
    if (m.data.length === ours.length && ours.equals(m.data)) {
      nc.publish(reply, "");
      this.log.trace("pack request matches our hash");
      return;
    }
    // The index holds no bodies: they are read a chunk at a time, so memory stays flat.
    const nowMs = this.now();
    const entries = [...this.registry.store.entries()].filter((e) => this.registry.servable(e, nowMs));
    let n = 0;
    for (let i = 0; i < entries.length; i += PACK_CHUNK) {
      const chunk = entries.slice(i, i + PACK_CHUNK);
      const bodies = await Promise.all(chunk.map((e) => this.registry.body(e).catch(() => undefined)));
      chunk.forEach((e, j) => {
        const jwt = bodies[j];
        // Replaced since: the change is announced on its own.
        if (jwt === undefined) return;
        nc.publish(reply, `${e.key}|${jwt}`);
        n++;
      });
    }
    nc.publish(reply, "");
    this.log.debug(`pack request answered with ${n} JWT(s)`);
  }
}
