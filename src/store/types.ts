/**
 * The one interface every JWT store backend implements (memory, directory, later nsc and KV).
 * Reads are synchronous from memory; writes resolve only once the change is durable.
 */
import * as crypto from "node:crypto";
import { createHash } from "node:crypto";

/** A stored JWT. Entries are immutable: a change replaces the object, so caches can key on it. */
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

export interface JwtStore {
  /** Short name for logs and health: "memory", "dir". */
  readonly kind: string;
  /** Human description for the startup log, e.g. the directory. */
  readonly description: string;
  /** False when the content is maintained outside the server (read-only directory, nsc). */
  readonly writable: boolean;
  /** Load the index; must be called (and awaited) before anything else. */
  open(): Promise<void>;
  get(key: string): StoredJwt | undefined;
  entries(): IterableIterator<StoredJwt>;
  readonly size: number;
  /** XOR of the SHA-256 of every entry (all zeros when empty), kept incrementally. */
  hash(): Buffer;
  /**
   * Store `jwt` under `key`. Resolves after the write is durable. On a store that is not
   * writable this only updates the in-memory view of content that is already on disk.
   */
  put(key: string, jwt: string): Promise<StoredJwt>;
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
  adopt?(change: ExternalChange): StoredJwt | undefined;
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

export function contentEtag(entry: StoredJwt): string {
  return `"${contentId(entry.hash)}"`;
}

/** XOR `b` into `acc` in place (adding and removing an entry are the same operation). */
export function xorInto(acc: Buffer, b: Buffer): void {
  for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! ^ b[i]!;
}

/** In-memory index with the incremental hash; the shared core of every backend. */
export class EntryIndex {
  private readonly map = new Map<string, StoredJwt>();
  private readonly xor = Buffer.alloc(32);

  get(key: string): StoredJwt | undefined {
    return this.map.get(key);
  }

  get size(): number {
    return this.map.size;
  }

  entries(): IterableIterator<StoredJwt> {
    return this.map.values();
  }

  set(entry: StoredJwt): void {
    const old = this.map.get(entry.key);
    if (old) xorInto(this.xor, old.hash);
    xorInto(this.xor, entry.hash);
    this.map.set(entry.key, entry);
  }

  delete(key: string): StoredJwt | undefined {
    const old = this.map.get(key);
    if (old) {
      xorInto(this.xor, old.hash);
      this.map.delete(key);
    }
    return old;
  }

  hash(): Buffer {
    return Buffer.from(this.xor);
  }
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
  /** The new JWT, or undefined when it was removed. */
  readonly entry: StoredJwt | undefined;
  readonly previous: StoredJwt | undefined;
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
