/**
 * Memory store: the default when no directory is configured (demos, tests, ephemeral replicas).
 * The only backend that holds the bodies themselves; nothing survives a restart.
 */
import { ServedOnlyStore } from "./indexed.js";
import { sameEntry, type AccountEntry, type EntryClaims, type JwtStore } from "./types.js";

export class MemoryStore extends ServedOnlyStore implements JwtStore {
  readonly kind = "memory";
  readonly description = "memory (nothing is kept across restarts)";
  readonly writable = true;
  private readonly bodies = new Map<string, string>();

  async open(): Promise<void> {}

  override held(entry: AccountEntry): string | undefined {
    return sameEntry(this.index.get(entry.key), entry) ? this.bodies.get(entry.key) : undefined;
  }

  protected async readBody(entry: AccountEntry): Promise<string | undefined> {
    return this.held(entry);
  }

  override async put(key: string, jwt: string, claims?: EntryClaims): Promise<AccountEntry> {
    this.bodies.set(key, jwt);
    return this.setEntry(key, jwt, claims);
  }

  override async remove(key: string): Promise<void> {
    this.bodies.delete(key);
    this.forget(key, false);
  }

  override async tombstone(key: string): Promise<void> {
    this.bodies.delete(key);
    this.forget(key, true);
  }

  watch(): void {}

  async close(): Promise<void> {}
}
