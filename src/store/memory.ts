/**
 * Memory store: the default when no directory is configured (demos, tests, ephemeral replicas).
 * Nothing survives a restart; the log says so at startup.
 */
import { ServedOnlyStore } from "./indexed.js";
import type { JwtStore } from "./types.js";

export class MemoryStore extends ServedOnlyStore implements JwtStore {
  readonly kind = "memory";
  readonly description = "memory (nothing is kept across restarts)";
  readonly writable = true;

  async open(): Promise<void> {}

  watch(): void {}

  async close(): Promise<void> {}
}
