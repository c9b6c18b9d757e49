/**
 * The in-memory half every account store backend shares: the compact index with its incremental
 * hash, the tombstones, and reading a body back checked against the digest the index holds.
 */
import { AccountIndex } from "./account-index.js";
import { accountEntry, digestOf, type AccountEntry, type EntryClaims } from "./types.js";

export abstract class IndexedStore {
  protected readonly index = new AccountIndex();
  protected readonly deleted = new Set<string>();

  get(key: string): AccountEntry | undefined {
    return this.index.get(key);
  }

  entries(): IterableIterator<AccountEntry> {
    return this.index.entries();
  }

  get size(): number {
    return this.index.size;
  }

  hash(): Buffer {
    return this.index.hash();
  }

  isDeleted(key: string): boolean {
    return this.deleted.has(key);
  }

  /** Where the backend keeps the body of `entry`; undefined when it is not there. */
  protected abstract readBody(entry: AccountEntry): Promise<string | undefined>;

  async read(entry: AccountEntry): Promise<string | undefined> {
    const jwt = this.held(entry) ?? (await this.readBody(entry));
    // What is there now may be a later version (a write under way, an edit in a read-only
    // directory): only the bytes the index describes are this entry.
    return jwt !== undefined && digestOf(jwt) === entry.digest ? jwt : undefined;
  }

  held(_entry: AccountEntry): string | undefined {
    return undefined;
  }

  checked(entry: AccountEntry, signature: "good" | "bad"): void {
    entry.signature = signature;
    this.index.mark(entry, signature);
  }

  /** Serve `jwt` for `key` (a new version also lifts a deletion). */
  protected setEntry(key: string, jwt: string, claims?: EntryClaims): AccountEntry {
    const entry = accountEntry(key, jwt, claims);
    this.index.set(entry);
    this.deleted.delete(key);
    return entry;
  }

  /** Stop serving `key`; with `tombstone` it is remembered as deleted. */
  protected forget(key: string, tombstone: boolean): void {
    this.index.delete(key);
    if (tombstone) this.deleted.add(key);
  }
}

/**
 * A store whose writes change only what is served: the memory store, and the nsc folder (which
 * belongs to nsc, so nothing is written back).
 */
export abstract class ServedOnlyStore extends IndexedStore {
  async put(key: string, jwt: string, claims?: EntryClaims): Promise<AccountEntry> {
    return this.setEntry(key, jwt, claims);
  }

  async remove(key: string): Promise<void> {
    this.forget(key, false);
  }

  async tombstone(key: string): Promise<void> {
    this.forget(key, true);
  }
}
