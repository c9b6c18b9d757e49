/**
 * The in-memory half every store backend shares: the served entries with their incremental
 * hash, and the tombstones of deleted accounts. Backends add how content is persisted or found.
 */
import { EntryIndex, makeEntry, type StoredJwt } from "./types.js";

export class IndexedStore {
  protected readonly index = new EntryIndex();
  protected readonly deleted = new Set<string>();

  get(key: string): StoredJwt | undefined {
    return this.index.get(key);
  }

  entries(): IterableIterator<StoredJwt> {
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

  /** Serve `jwt` for `key` (a new version also lifts a deletion). */
  protected setEntry(key: string, jwt: string): StoredJwt {
    const entry = makeEntry(key, jwt);
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
export class ServedOnlyStore extends IndexedStore {
  async put(key: string, jwt: string): Promise<StoredJwt> {
    return this.setEntry(key, jwt);
  }

  async remove(key: string): Promise<void> {
    this.forget(key, false);
  }

  async tombstone(key: string): Promise<void> {
    this.forget(key, true);
  }
}
