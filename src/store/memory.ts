/**
 * Memory store: the default when no directory is configured (demos, tests, ephemeral replicas).
 * Nothing survives a restart; the log says so at startup.
 */
import { IndexedStore } from "./indexed.js";
import type { JwtStore, StoredJwt } from "./types.js";

export class MemoryStore extends IndexedStore implements JwtStore {
  readonly kind = "memory";
  readonly description = "memory (nothing is kept across restarts)";
  readonly writable = true;

  async open(): Promise<void> {}

  async put(key: string, jwt: string): Promise<StoredJwt> {
    return this.setEntry(key, jwt);
  }

  async remove(key: string): Promise<void> {
    this.forget(key, false);
  }

  async tombstone(key: string): Promise<void> {
    this.forget(key, true);
  }

  watch(): void {}

  async close(): Promise<void> {}
}
