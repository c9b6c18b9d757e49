/**
 * The single write path for account JWTs: every change (HTTP, NATS, file watch, sync) is
 * validated once, ordered by `iat`, stored once and announced once on the change feed.
 */
import { KeyedQueue } from "./keyed-queue.js";
import { DEFAULT_CACHE_BYTES, DEFAULT_MAX_CLOCK_SKEW_MS } from "./config/types.js";
import { AccountServerError, errorText } from "./errors.js";
import {
  type AccountClaims,
  type CheckedJwt,
  CheckPool,
  checkAddressing,
  decodeAccountJwt,
  type DecodedJwt,
  decodeJwt,
  isPublicKey,
  peekClaims,
  type Trust,
} from "./jwt/index.js";
import type { Logger } from "./log.js";
import {
  type AccountChange,
  type AccountEntry,
  accountEntry,
  type ChangeSource,
  contentEtag,
  digestOf,
  type ExternalChange,
  type HistorySource,
  type JwtStore,
  sameEntry,
  StoreConflictError,
  StoreOutcomeUnknownError,
  StoreUnavailableError,
  ViewCache,
} from "./store/index.js";

/**
 * Sources that copy JWTs from peers rather than from someone deliberately pushing them: they never
 * bring back a deleted account.
 */
const SYNC_SOURCES: ReadonlySet<ChangeSource> = new Set(["sync", "primary", "lookup"]);

export type { AccountChange, ChangeSource };

export interface DeleteResult {
  /** Issuer (operator key) of the request. */
  readonly by: string;
  readonly accounts: readonly string[];
}

export interface AcceptResult {
  /** False when the very same bytes were already stored. */
  readonly changed: boolean;
  readonly entry: AccountEntry;
}

/** What a GET needs, derived once per stored entry and kept in the bounded cache. */
export interface AccountView {
  readonly entry: AccountEntry;
  /** The stored JWT. */
  readonly jwt: string;
  /** `"<content id>"` (see contentEtag), or undefined when the stored JWT does not decode. */
  readonly etag: string | undefined;
  /** Expiry in unix seconds, 0 = never. */
  readonly exp: number;
  /** False when the stored JWT fails decoding or is not signed by a trusted key. */
  readonly valid: boolean;
}

/** Told about every account write before it happens (awaited) and after it ends: the NATS outbox. */
export interface WriteJournal {
  /** Resolves once the intent to change `key` is durable; a rejection refuses the write. */
  begin(key: string): Promise<void>;
  /**
   * The write of `key` ended: stored and announced on the change feed, or failed. `stored` is
   * false only when the write certainly stored nothing.
   */
  end(key: string, stored: boolean): void;
}

export interface AccountRegistryOptions {
  readonly store: JwtStore;
  readonly trust: Trust;
  readonly log: Logger;
  /** Wall clock in milliseconds. */
  readonly now?: () => number;
  /** Served when the store has no JWT for the system account. */
  readonly systemAccountJwt?: string;
  /** Honour operator-signed delete requests. */
  readonly allowDelete?: boolean;
  /** How far a JWT's `iat` may be ahead of our clock, milliseconds (default 5 minutes). */
  readonly maxClockSkewMs?: number;
  /** Where large JWTs are checked (default: a pool of its own, one worker per core). */
  readonly checks?: CheckPool;
  /** Bytes of ready-to-serve views kept (`store.cache`, default DEFAULT_CACHE_BYTES). */
  readonly cacheBytes?: number;
}

/** Reads of a changing file retried before a GET answers 500 (each waits for the key's write). */
const READ_ATTEMPTS = 3;

type Listener = (change: AccountChange) => void;

export class AccountRegistry {
  readonly store: JwtStore;
  private trust: Trust;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly listeners: Listener[] = [];
  private readonly journals: WriteJournal[] = [];
  private readonly queue = new KeyedQueue();
  /** Ready-to-serve views of recently used accounts; every change drops or replaces its key's. */
  readonly cache: ViewCache<AccountView>;
  /** Cold reads under way, so concurrent GETs of one key read it once. */
  private readonly loading = new Map<string, Promise<AccountView | undefined>>();
  /** The configured system account, served when the store has none. */
  private systemAccount: AccountView | undefined;
  private history: HistorySource | undefined;
  private readonly allowDelete: boolean;
  private readonly maxClockSkewMs: number;
  private readonly checks: CheckPool;

  constructor(opts: AccountRegistryOptions) {
    this.allowDelete = opts.allowDelete ?? true;
    this.maxClockSkewMs = opts.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
    this.checks = opts.checks ?? new CheckPool();
    this.store = opts.store;
    this.trust = opts.trust;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    this.cache = new ViewCache(opts.cacheBytes ?? DEFAULT_CACHE_BYTES);
    this.setSystemAccountJwt(opts.systemAccountJwt);
  }

  /** Swap the trust list (operator reload). */
  setTrust(trust: Trust): void {
    this.trust = trust;
    this.cache.clear();
  }

  /** True when `key` is the operator or one of its signing keys (current trust list). */
  isTrustedIssuer(key: string): boolean {
    return this.trust.isTrusted(key);
  }

  setSystemAccountJwt(jwt: string | undefined): void {
    if (jwt === undefined) {
      this.systemAccount = undefined;
      return;
    }
    const sub = peekClaims(jwt)?.sub ?? "";
    const entry = accountEntry(sub, jwt);
    this.systemAccount = { entry, jwt, etag: contentEtag(entry), exp: entry.exp, valid: true };
  }

  /**
   * Where past versions are kept. Copies from peers consult it: a version with the stored `iat`
   * that was already replaced here is stale (see storeOnce).
   */
  setHistory(history: HistorySource): void {
    this.history = history;
  }

  /** Add a journal that hears of each write before the store does (see WriteJournal). */
  addJournal(journal: WriteJournal): void {
    this.journals.push(journal);
  }

  /** Subscribe to the change feed; listeners run synchronously after the store is durable. */
  onChange(listener: Listener): void {
    this.listeners.push(listener);
  }

  // What the HTTP layer asks of the store, so that it never reaches through the registry.

  /** False while the store cannot answer (a JetStream bucket still loading or unreachable). */
  get ready(): boolean {
    return this.store.ready !== false;
  }

  /** Why uploads are refused, or undefined when the store takes them. */
  get readOnlyCode(): "READ_ONLY" | "READ_ONLY_NSC" | undefined {
    if (this.store.writable) return undefined;
    return this.store.kind === "nsc" ? "READ_ONLY_NSC" : "READ_ONLY";
  }

  isDeleted(key: string): boolean {
    return this.store.isDeleted(key);
  }

  /** Every stored entry (the pack, replicas); bodies through body(). */
  entries(): Iterable<AccountEntry> {
    return this.store.entries();
  }

  /** The index entry served for `key`: the store's, else the configured system account's. */
  get(key: string): AccountEntry | undefined {
    const e = this.store.get(key);
    if (e) return e;
    return this.systemAccount?.entry.key === key ? this.systemAccount.entry : undefined;
  }

  /**
   * GET view of `key` when it is ready to serve (cached, or the configured system account);
   * undefined when the account is unknown or must be read first (load).
   */
  view(key: string): AccountView | undefined {
    const v = this.cache.get(key);
    const e = this.store.get(key);
    if (v !== undefined && sameEntry(v.entry, e)) return v;
    return e === undefined && this.systemAccount?.entry.key === key ? this.systemAccount : undefined;
  }

  /** GET view of `key`, read from the store once when it is not cached; undefined: no such account. */
  load(key: string): Promise<AccountView | undefined> {
    const v = this.view(key);
    if (v !== undefined || this.store.get(key) === undefined) return Promise.resolve(v);
    let p = this.loading.get(key);
    if (p === undefined) {
      p = this.readView(key).finally(() => this.loading.delete(key));
      this.loading.set(key, p);
    }
    return p;
  }

  /**
   * The JWT of `entry` without caching it (walks over the whole store: pack, migrate, console);
   * undefined when `entry` is no longer what is stored.
   */
  async body(entry: AccountEntry): Promise<string | undefined> {
    if (entry === this.systemAccount?.entry) return this.systemAccount.jwt;
    const v = this.cache.peek(entry.key);
    if (v !== undefined && sameEntry(v.entry, entry)) return v.jwt;
    return this.store.read(entry);
  }

  /**
   * Whether `entry` is one to serve, from the index alone: it decodes, no check found its
   * signature bad, a trusted key issued it, and it has not expired.
   */
  servable(entry: AccountEntry, nowMs: number): boolean {
    if (entry.iat === undefined || entry.signature === "bad") return false;
    if (entry !== this.systemAccount?.entry && !this.trust.isTrusted(entry.iss)) return false;
    return !(entry.exp > 0 && entry.exp * 1000 <= nowMs);
  }

  private async readView(key: string): Promise<AccountView | undefined> {
    for (let attempt = 1; ; attempt++) {
      const entry = this.store.get(key);
      if (entry === undefined) return undefined;
      let jwt: string | undefined;
      try {
        jwt = await this.store.read(entry);
      } catch (err) {
        throw new AccountServerError("LOAD_FAILED", { reason: errorText(err), cause: err });
      }
      if (!sameEntry(this.store.get(key), entry)) {
        // Replaced while it was read: read the new one (a key rewritten without pause gives up).
        if (attempt >= 4 * READ_ATTEMPTS) throw new AccountServerError("LOAD_FAILED", { reason: `${key} kept changing while it was read` });
        continue;
      }
      if (jwt !== undefined) {
        const v = this.viewOf(entry, jwt);
        this.cache.set(key, v, entry.size);
        return v;
      }
      // The bytes there are not the entry's: a write of the key is under way; read after it.
      if (attempt >= READ_ATTEMPTS) {
        throw new AccountServerError("LOAD_FAILED", { reason: `the stored JWT of ${key} changed while it was read` });
      }
      await this.queue.run(key, async () => {});
    }
  }

  /** The view of a JWT read from the store; its signature is checked the first time only. */
  private viewOf(entry: AccountEntry, jwt: string): AccountView {
    const key = entry.key.slice(0, 12);
    if (entry.signature === "unchecked") {
      try {
        decodeAccountJwt(jwt);
        this.store.checked(entry, "good");
      } catch (err) {
        this.store.checked(entry, "bad");
        this.log.error(`stored JWT for ${key} does not decode: ${errorText(err)}`);
      }
    }
    if (entry.signature === "bad") return { entry, jwt, etag: undefined, exp: 0, valid: false };
    // Files placed in the directory by others are only served when a trusted key signed them.
    const trusted = this.trust.isTrusted(entry.iss);
    if (!trusted) this.log.error(`stored JWT for ${key} is signed by untrusted issuer ${entry.iss}`);
    return { entry, jwt, etag: contentEtag(entry), exp: entry.exp, valid: trusted };
  }

  /**
   * Validate and store an account JWT. `key` is the key the caller addressed (URL path, subject
   * token); it must equal the claim subject. Throws AccountServerError for every refusal.
   */
  async accept(
    jwt: string,
    opts: { source: ChangeSource; key?: string; broadcast?: boolean },
  ): Promise<AcceptResult> {
    if (!this.store.writable && opts.source !== "file") throw new AccountServerError("READ_ONLY");
    // Small JWTs are checked synchronously: a write queued on the key right after this call
    // (a removal, the next upload) is still ordered after this one.
    const c = this.check(jwt, opts.key);
    const checked = c instanceof Promise ? await c : c;
    return this.queue.run(checked.sub, () => this.store_(checked, opts.source, undefined, opts.broadcast === true));
  }

  /**
   * Every check of a POST, in the legacy order, up to (not including) ordering (src/jwt/check.ts);
   * large JWTs are checked on a worker thread so that no other request waits for them.
   */
  check(jwt: string, key?: string): CheckedJwt | Promise<CheckedJwt> {
    return this.checks.check({
      jwt,
      key,
      trusted: this.trust.keys,
      nowMs: this.now(),
      maxClockSkewMs: this.maxClockSkewMs,
    });
  }

  /**
   * The checks of a POST before any trust decision (legacy rows 1–5): decodes, the addressed key
   * is the subject, issuer and subject are keys of the right kinds. The signing branch starts here.
   */
  checkAddressing(jwt: string, key?: string): DecodedJwt<AccountClaims> {
    return checkAddressing(jwt, key);
  }

  /** How many times a lost compare-and-set (shared store) is decided again before giving up. */
  private static readonly CONFLICT_RETRIES = 5;

  private async store_(
    d: CheckedJwt,
    source: ChangeSource,
    external: ExternalChange | undefined,
    broadcast = false,
  ): Promise<AcceptResult> {
    const digest = digestOf(d.token);
    for (let attempt = 1; ; attempt++) {
      const before = this.store.get(d.sub);
      try {
        return await this.storeOnce(d, digest, source, external, broadcast);
      } catch (err) {
        if (!(err instanceof StoreConflictError)) throw err;
        // The store re-read the key: what another instance wrote is served from now on.
        await this.emitRefreshed(d.sub, before, err.change?.jwt);
        if (attempt >= AccountRegistry.CONFLICT_RETRIES) throw err;
      }
    }
  }

  /** Announce on the change feed what a lost compare-and-set brought in (made elsewhere). */
  private async emitRefreshed(key: string, previous: AccountEntry | undefined, known: string | undefined): Promise<void> {
    const entry = this.store.get(key);
    if (sameEntry(entry, previous)) return;
    if (!entry) {
      this.emit({ key, entry, jwt: undefined, previous, source: "cluster", jti: "", deleted: this.store.isDeleted(key) });
      return;
    }
    const jwt = known !== undefined && digestOf(known) === entry.digest ? known : await this.store.read(entry).catch(() => undefined);
    // Read again if the key moved on meanwhile: the next refresh announces that one.
    if (jwt === undefined || !sameEntry(this.store.get(key), entry)) return;
    this.emit({ key, entry, jwt, previous, source: "cluster", jti: peekClaims(jwt)?.jti ?? "" });
  }

  private async storeOnce(
    d: CheckedJwt,
    digest: string,
    source: ChangeSource,
    external: ExternalChange | undefined,
    broadcast: boolean,
  ): Promise<AcceptResult> {
    if (SYNC_SOURCES.has(source) && this.store.isDeleted(d.sub)) {
      throw new AccountServerError("ACCOUNT_DELETED", { reason: d.sub });
    }
    const previous = this.store.get(d.sub);
    if (previous) {
      // Identity is the bytes. Not the `jti`: Go's jwt library (nsc) hashes only the standard
      // claims into it, so two edits issued in one second share `iat` and `jti`, and the later
      // one must replace. An undecodable stored file is replaced too. When another instance
      // wrote what we serve already, only its revision is new.
      if (previous.digest === digest) {
        return { changed: false, entry: (external && this.store.adopt?.(external)) || previous };
      }
      const old = previous.iat;
      if (old !== undefined) {
        if (old > d.iat) {
          throw new AccountServerError("OLDER_JWT", {
            reason: `stored iat ${old} > uploaded iat ${d.iat}`,
          });
        }
        // A peer copy with the same `iat` may be the very edit ours replaced (a full nats-server
        // that was away while the later one was announced). Taking it back would undo the later
        // edit, so a version this server has already replaced is refused.
        if (old === d.iat && SYNC_SOURCES.has(source) && (await this.wasReplaced(d.sub, d.token))) {
          throw new AccountServerError("OLDER_JWT", {
            reason: `iat ${d.iat} equals the stored one, and this version was already replaced here`,
          });
        }
      }
    }
    // Journals (the NATS outbox) record the change before the store has it, so a crash between
    // the two can only cause an extra announcement, never a missing one.
    const journals = external !== undefined || broadcast ? [] : this.journals;
    let begun = 0;
    /** False while certainly nothing was stored; a store error of unknown outcome counts as stored. */
    let stored = false;
    /** Set when the store learns later whether a write that failed had landed after all. */
    let landed: Promise<boolean> | undefined;
    try {
      for (const j of journals) {
        await j.begin(d.sub);
        begun++;
      }
      let entry: AccountEntry;
      const facts = { iat: d.iat, exp: d.exp, iss: d.iss, digest, signed: true };
      try {
        entry =
          external && this.store.adopt
            ? this.store.adopt(external, facts)!
            : await this.store.put(d.sub, d.token, facts);
        stored = true;
      } catch (err) {
        if (err instanceof StoreConflictError) throw err;
        if (err instanceof StoreOutcomeUnknownError) landed = err.landed;
        const unavailable = err instanceof StoreUnavailableError;
        stored = !unavailable;
        throw new AccountServerError(unavailable ? "STORE_UNAVAILABLE" : "SAVE_FAILED", {
          reason: errorText(err),
          cause: err,
        });
      }
      // Checked just now (signature and trust): the view is ready before anyone asks for it.
      this.cache.set(d.sub, { entry, jwt: d.token, etag: contentEtag(entry), exp: d.exp, valid: true }, entry.size);
      this.emit({ key: d.sub, entry, jwt: d.token, previous, source, jti: d.jti, ...(broadcast ? { broadcast } : {}) });
      return { changed: true, entry };
    } catch (err) {
      if (err instanceof AccountServerError || err instanceof StoreConflictError) throw err;
      throw new AccountServerError("SAVE_FAILED", { reason: `journal: ${errorText(err)}`, cause: err });
    } finally {
      for (const j of journals.slice(0, begun)) {
        if (landed) void landed.then((l) => j.end(d.sub, l));
        else j.end(d.sub, stored);
      }
    }
  }

  private async wasReplaced(key: string, jwt: string): Promise<boolean> {
    if (!this.history) return false;
    try {
      return (await this.history.history(key)).some((v) => v.jwt === jwt);
    } catch (err) {
      this.log.warn(`reading the history of ${key.slice(0, 12)} failed: ${errorText(err)}`);
      return false;
    }
  }

  /** The system account key, if one is known (never deletable). */
  private systemAccountKey(): string | undefined {
    return this.trust.systemAccount ?? this.systemAccount?.entry.key;
  }

  /**
   * Delete accounts on an operator-signed request (nsc's DELETE claim: `sub` = `iss` = an operator
   * key, `nats.accounts` = keys). Checks and reasons follow nats-server (protocol §3.6). Each
   * account is tombstoned and announced once on the change feed.
   */
  async deleteAccounts(claimJwt: string, source: ChangeSource): Promise<DeleteResult> {
    if (!this.allowDelete) throw new AccountServerError("DELETE_DISABLED");
    if (!this.store.writable) throw new AccountServerError("READ_ONLY");
    const d = decodeJwt(claimJwt.trim());
    if (d.sub !== d.iss) throw new AccountServerError("DELETE_NOT_SELF_SIGNED", { reason: d.iss });
    if (!isPublicKey(d.iss, "operator") || !this.trust.isTrusted(d.iss)) {
      throw new AccountServerError("DELETE_UNTRUSTED", { reason: d.iss });
    }
    const now = Math.floor(this.now() / 1000);
    if ((d.exp > 0 && d.exp < now) || (d.nbf > 0 && d.nbf > now)) {
      throw new AccountServerError("DELETE_MALFORMED", { reason: "claim is expired or not yet valid" });
    }
    const list = (d.claims["nats"] as { accounts?: unknown } | undefined)?.accounts;
    if (!Array.isArray(list) || !list.every((k) => typeof k === "string" && isPublicKey(k, "account"))) {
      throw new AccountServerError("DELETE_MALFORMED", { reason: "accounts must be a list of account keys" });
    }
    const accounts = [...new Set(list as string[])];
    const sys = this.systemAccountKey();
    if (sys !== undefined && accounts.includes(sys)) throw new AccountServerError("DELETE_SYSTEM_ACCOUNT");
    for (const key of accounts) {
      await this.queue.run(key, async () => {
        if (this.store.isDeleted(key) && !this.store.get(key)) return;
        const previous = this.store.get(key);
        try {
          await this.store.tombstone(key);
        } catch (err) {
          throw new AccountServerError("SAVE_FAILED", { reason: errorText(err), cause: err });
        }
        this.emit({ key, entry: undefined, jwt: undefined, previous, source, jti: "", deleted: true, deleteClaim: d.token });
      });
    }
    return { by: d.iss, accounts };
  }

  /**
   * Take a change the store saw from outside (file edited in a read-only directory, another
   * instance writing the shared bucket): same checks and ordering as an upload, never written back.
   */
  async applyExternal(change: ExternalChange, source: ChangeSource): Promise<void> {
    const { key, jwt } = change;
    if (jwt === undefined) {
      if (!this.store.adopt) {
        await this.remove(key, source);
        return;
      }
      await this.queue.run(key, async () => {
        if (this.store.isOutdated?.(change)) return;
        const previous = this.store.get(key);
        this.store.adopt!(change);
        if (!previous && !change.deleted) return;
        this.emit({ key, entry: undefined, jwt: undefined, previous, source, jti: "", ...(change.deleted ? { deleted: true } : {}) });
      });
      return;
    }
    const c = this.check(jwt, key);
    const checked = c instanceof Promise ? await c : c;
    await this.queue.run(key, async () => {
      if (!this.store.isOutdated?.(change)) await this.store_(checked, source, change);
    });
  }

  /**
   * Forget `key` (file removed from a read-only directory, expiry). `expected`: remove only if
   * that exact entry is still stored (the expiry sweeper must not remove a newer JWT that arrived
   * meanwhile). Resolves with whether something was removed.
   */
  async remove(key: string, source: ChangeSource, expected?: AccountEntry): Promise<boolean> {
    return this.queue.run(key, async () => {
      const previous = this.store.get(key);
      if (!previous || (expected !== undefined && !sameEntry(previous, expected))) return false;
      await this.store.remove(key);
      this.emit({ key, entry: undefined, jwt: undefined, previous, source, jti: "" });
      return true;
    });
  }

  private emit(change: AccountChange): void {
    // Exactly the changed key leaves the cache, unless what it holds is the new version already.
    if (change.entry === undefined || !sameEntry(this.cache.peek(change.key)?.entry, change.entry)) this.cache.delete(change.key);
    for (const l of this.listeners) {
      try {
        l(change);
      } catch (err) {
        this.log.error(`change listener failed: ${errorText(err)}`);
      }
    }
  }

}
