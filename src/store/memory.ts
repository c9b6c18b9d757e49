/**
 * Memory store: the default when no directory is configured (demos, tests, ephemeral replicas).
 * Nothing survives a restart; the log says so at startup.
 */
import { EntryIndex, makeEntry, type JwtStore, type StoredJwt } from "./types.js";

export class MemoryStore implements JwtStore {
  readonly kind = "memory";
  readonly description = "memory (nothing is kept across restarts)";
  readonly writable = true;
  private readonly index = new EntryIndex();
  private readonly deleted = new Set<string>();

  async open(): Promise<void> {}

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

  async put(key: string, jwt: string): Promise<StoredJwt> {
    const entry = makeEntry(key, jwt);
    this.index.set(entry);
    this.deleted.delete(key);
    return entry;
  }

  async remove(key: string): Promise<void> {
    this.index.delete(key);
  }

  async tombstone(key: string): Promise<void> {
    this.index.delete(key);
    this.deleted.add(key);
  }

  isDeleted(key: string): boolean {
    return this.deleted.has(key);
  }

  watch(): void {}

  async close(): Promise<void> {}
}
