/**
 * The one interface every account JWT store backend implements (memory, directory, nsc, KV): a
 * compact index read synchronously, bodies read on demand; writes resolve once durable.
 */
import * as crypto from "node:crypto";
import { createHash } from "node:crypto";
import { peekClaims } from "../jwt/index.js";

/** A stored token with its body (activation tokens, the configured system account). */
export interface StoredJwt {
  readonly key: string;
  /** The JWT exactly as received (nothing added or stripped). */
  readonly jwt: string;
  /** SHA-256 of the stored bytes (the pack-sync hash input). */
  readonly hash: Buffer;
}

/** A change the store noticed outside the server (file edited on disk, another instance). */
export interface ExternalChange {
  readonly key: string;
  /** The new content, or undefined when the JWT disappeared. */
  readonly jwt: string | undefined;
  /** The JWT disappeared because the account was deleted (a tombstone), not just removed. */
  readonly deleted?: boolean;
  /**
   * Where the change sits in the store's own order (the bucket revision): a store with revisions
   * serves a change together with its revision, the base of its next compare-and-set.
   */
  readonly revision?: number;
  /** A write of this instance whose outcome was unknown when it failed (its answer was lost). */
  readonly own?: boolean;
}

/** One stored version of an account JWT, oldest first in a history list. */
export interface HistoryEntry {
  /** Increasing per key (the bucket revision, or a per-key counter). */
  readonly revision: number;
  /** When this version was stored. */
  readonly stored: Date;
  /** The JWT of this version; absent for a deletion. */
  readonly jwt?: string;
  readonly deleted?: boolean;
}

/** Where past versions of account JWTs can be read. */
export interface HistorySource {
  history(key: string): Promise<HistoryEntry[]>;
}

/** A compare-and-set lost against a concurrent writer; the caller re-reads and decides again. */
export class StoreConflictError extends Error {
  override readonly name = "StoreConflictError";
  /** What the store found the key changed to (and serves now), when it knows. */
  readonly change: ExternalChange | undefined;
  constructor(message: string, change?: ExternalChange) {
    super(message);
    this.change = change;
  }
}

/**
 * A write whose answer was lost (a node went away): it may have been stored. `landed` settles
 * once the store knows; if it did land, the store reports it as an external change of our own.
 */
export class StoreOutcomeUnknownError extends Error {
  override readonly name = "StoreOutcomeUnknownError";
  readonly landed: Promise<boolean>;
  constructor(message: string, landed: Promise<boolean>) {
    super(message);
    this.landed = landed;
  }
}

/** The backend cannot be reached (e.g. the JetStream bucket while NATS is down). */
export class StoreUnavailableError extends Error {
  override readonly name = "StoreUnavailableError";
}

/**
 * What the index keeps of one stored account JWT: what routing, ordering, expiry and pack sync
 * need, never the body (JwtStore.read). The index hands out a new object on each look-up: two
 * are the same version when sameEntry() says so (their stamps match), never by `===`.
 */
export class AccountEntry {
  /**
   * Whether the body's signature was checked (the write path checks it before storing; a file
   * found on disk is checked when first read). A cache bit: the bytes behind it never change.
   */
  signature: "unchecked" | "good" | "bad" = "unchecked";
  /** Set by the index when it stores the entry: every stored version has its own (0 = never stored). */
  stamp = 0;
  readonly key: string;
  /** SHA-256 of the stored bytes, one character per byte (a Buffer each costs ~150 bytes more). */
  readonly digest: string;
  /** Length of the stored bytes. */
  readonly size: number;
  /** `iat` of the JWT; undefined when its payload does not decode. */
  readonly iat: number | undefined;
  /** Expiry in unix seconds, 0 = never. */
  readonly exp: number;
  /** Issuer ("" when the payload does not decode); one string object per distinct issuer. */
  readonly iss: string;

  constructor(key: string, digest: string, size: number, iat: number | undefined, exp: number, iss: string) {
    this.key = key;
    this.digest = digest;
    this.size = size;
    this.iat = iat;
    this.exp = exp;
    this.iss = iss;
  }
}

/** Whether `a` and `b` are the same stored version of an account (or both absent). */
export function sameEntry(a: AccountEntry | undefined, b: AccountEntry | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.stamp !== 0 && a.stamp === b.stamp);
}

/** What an entry keeps, when the caller knows it already (the write path decoded and hashed the JWT). */
export interface EntryClaims {
  readonly iat: number;
  readonly exp: number;
  readonly iss: string;
  /** digestOf(jwt) */
  readonly digest?: string;
  /** The signature was checked (the write path checks it before storing). */
  readonly signed?: boolean;
}

const issuers = new Map<string, string>();
/** Issuers are few (an operator and its signing keys); a directory full of odd files must not grow this. */
const MAX_INTERNED_ISSUERS = 4096;

export function intern(iss: string): string {
  const known = issuers.get(iss);
  if (known !== undefined) return known;
  // A flat copy: a slice would keep the whole decoded payload alive.
  const flat = Buffer.from(iss, "latin1").toString("latin1");
  if (issuers.size < MAX_INTERNED_ISSUERS) issuers.set(flat, flat);
  return flat;
}

/** SHA-256 of `text` as one character per byte. */
export function digestOf(text: string): string {
  return oneShotText ? oneShotText("sha256", text, "latin1") : createHash("sha256").update(text).digest().toString("latin1");
}

/** The index entry for `jwt` stored under `key`; `claims` saves parsing the payload again. */
export function accountEntry(key: string, jwt: string, claims?: EntryClaims): AccountEntry {
  const c = claims ?? peekClaims(jwt);
  const entry = new AccountEntry(key, claims?.digest ?? digestOf(jwt), Buffer.byteLength(jwt), c?.iat, c?.exp ?? 0, c ? intern(c.iss) : "");
  if (claims?.signed) entry.signature = "good";
  return entry;
}

export interface JwtStore {
  /** Short name for logs and health: "memory", "dir". */
  readonly kind: string;
  /** Human description for the startup log, e.g. the directory. */
  readonly description: string;
  /** False when the content is maintained outside the server (read-only directory, nsc). */
  readonly writable: boolean;
  /** Load the index; must be called (and awaited) before anything else. */
  open(): Promise<void>;
  get(key: string): AccountEntry | undefined;
  /**
   * The body of `entry`, read from where the backend keeps it (file, bucket); undefined when
   * what is there now is not `entry` any more (it changed or went away meanwhile).
   */
  read(entry: AccountEntry): Promise<string | undefined>;
  /** The body of `entry` when the backend holds it in memory (the memory store only). */
  held(entry: AccountEntry): string | undefined;
  /** Record what checking the signature of `entry` found, so it is checked once per version. */
  checked(entry: AccountEntry, signature: "good" | "bad"): void;
  entries(): IterableIterator<AccountEntry>;
  readonly size: number;
  /** XOR of the SHA-256 of every entry (all zeros when empty), kept incrementally. */
  hash(): Buffer;
  /**
   * Store `jwt` under `key`. Resolves after the write is durable. On a store that is not
   * writable this only updates the in-memory view of content that is already on disk.
   */
  put(key: string, jwt: string, claims?: EntryClaims): Promise<AccountEntry>;
  /** Forget a JWT (on a writable store, remove it durably). */
  remove(key: string): Promise<void>;
  /**
   * Delete an account for good: the JWT leaves the index and a tombstone stays, so no sync path
   * brings it back (`<KEY>.jwt.deleted` on disk, as nats-server's full resolver does). A later
   * `put` of the key clears the tombstone.
   */
  tombstone(key: string): Promise<void>;
  /** True when `key` was deleted and not uploaded again since. */
  isDeleted(key: string): boolean;
  /**
   * Take a change another instance already made durable (shared stores): update the index only.
   * Stores without `adopt` persist nothing themselves on external changes, so `put` serves.
   * Also called with a change whose content is already served, so its revision is recorded.
   */
  adopt?(change: ExternalChange, claims?: EntryClaims): AccountEntry | undefined;
  /**
   * True when the store already serves `change` or a later one (a change reported from outside
   * is applied in order with local writes, and may have been overtaken by the time it runs).
   */
  isOutdated?(change: ExternalChange): boolean;
  /**
   * Set when other account servers share this store's content (a KV bucket): they form a group
   * named by this, and hold the same JWTs.
   */
  readonly group?: string;
  /** False while the backend is still loading or unreachable (absent means always ready). */
  readonly ready?: boolean;
  /**
   * Set while a large store reads its JWTs in the background after open() (the directory store);
   * resolves when all are in memory. Meanwhile the store is ready: get() loads a missing entry on
   * demand and size is exact, but entries() and hash() must first load everything, so callers
   * that walk the whole store can wait for this instead of blocking.
   */
  readonly loading?: Promise<void> | undefined;
  /**
   * Set when the store acknowledges a change once it is durable in a journal (the writable
   * directory store): see StoreJournal.
   */
  readonly journaled?: StoreJournal | undefined;
  /** Start reporting external changes (no-op for stores that cannot have any). */
  watch(onChange: (change: ExternalChange) => void): void;
  close(): Promise<void>;
}

/**
 * A store whose changes are durable in a journal until a checkpoint makes them durable in place
 * and drops the journal. Whatever must survive with a change (a pending notification) can ride on
 * the journal instead of its own synchronous write, and persist itself in a checkpoint hook.
 */
export interface StoreJournal {
  /** Keys whose last change open() replayed from the journal of an interrupted run. */
  readonly recovered: readonly string[];
  /** Run `hook` in every checkpoint, after the files are durable and before the journal goes. */
  beforeCheckpoint(hook: () => Promise<void>): void;
  /** Run a checkpoint now (calls during a running one share the next). */
  checkpoint(): Promise<void>;
}

/** One-shot hashing (Node >= 20.12) skips the Hash object: a large store hashes every file at start. */
const oneShot = (crypto as { hash?: (alg: string, data: string, out: "buffer") => Buffer }).hash;
const oneShotText = (crypto as unknown as { hash?: (alg: string, data: string, out: "latin1") => string }).hash;

export function sha256(text: string): Buffer {
  const digest = oneShot ? oneShot("sha256", text, "buffer") : createHash("sha256").update(text).digest();
  // Copied into Node's shared buffer pool: an ArrayBuffer of its own per 32-byte digest costs
  // about 300 bytes more per stored JWT (30 MB for 100,000 accounts).
  return Buffer.from(digest);
}

export function makeEntry(key: string, jwt: string): StoredJwt {
  return Object.freeze({ key, jwt, hash: sha256(jwt) });
}

/**
 * A short name for stored content, from its SHA-256: the ETag (quoted) and the history's `hash`.
 * Not the `jti`: Go's jwt library hashes only the standard claims into it, so two edits issued in
 * one second share it while their bytes differ.
 */
export function contentId(hash: Buffer): string {
  return hash.toString("base64url", 0, 16);
}

export function contentEtag(entry: StoredJwt | AccountEntry): string {
  return `"${contentId(entry instanceof AccountEntry ? Buffer.from(entry.digest, "latin1") : entry.hash)}"`;
}

/** XOR `b` into `acc` in place (adding and removing an entry are the same operation). */
export function xorInto(acc: Buffer, b: Buffer): void {
  for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! ^ b[i]!;
}

/** Where a change came from; used in logs, metrics and to pick the rules that apply. */
export type ChangeSource =
  | "http"
  | "nats"
  | "file"
  | "sync"
  | "primary"
  | "lookup"
  | "expiry"
  /** Made by another instance sharing the store; that instance announces it. */
  | "cluster"
  /** A write of ours whose answer was lost, found in the shared store afterwards: we announce it. */
  | "own";

export interface AccountChange {
  readonly key: string;
  /** The new JWT's index entry, or undefined when it was removed. */
  readonly entry: AccountEntry | undefined;
  /** The new JWT itself (undefined when removed). */
  readonly jwt: string | undefined;
  readonly previous: AccountEntry | undefined;
  readonly source: ChangeSource;
  /** `jti` of the new JWT ("" when removed). */
  readonly jti: string;
  /** The account was deleted (tombstoned), not merely forgotten (expiry, file removed). */
  readonly deleted?: boolean;
  /** The operator-signed delete request behind a deletion. */
  readonly deleteClaim?: string;
  /**
   * The JWT arrived on a subject every nats-server and account server receives (per-account
   * update subjects): announcing it again would only echo between account servers.
   */
  readonly broadcast?: boolean;
}
