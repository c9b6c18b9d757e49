/**
 * The bounded cache of ready-to-serve answers (`store.cache`): least recently used first out,
 * counted in bytes the caller states, so what it holds is deterministic and never over budget.
 */

/** What one cached value costs beyond its own bytes (objects, map slot, precomputed headers). */
export const CACHE_ENTRY_OVERHEAD = 512;

export class ViewCache<V> {
  /** Insertion order is recency order: a hit moves its key to the end. */
  private readonly map = new Map<string, { readonly value: V; readonly bytes: number }>();
  private used = 0;
  /** Values dropped to stay within the budget, since start (a metric). */
  evictions = 0;

  readonly budget: number;

  constructor(budget: number) {
    this.budget = budget;
  }

  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string): V | undefined {
    const slot = this.map.get(key);
    if (slot === undefined) return undefined;
    // Moving on every hit keeps the order exact; a Map delete+set costs well under a microsecond.
    this.map.delete(key);
    this.map.set(key, slot);
    return slot.value;
  }

  /** The value without counting a use (for walks that must not reorder the cache). */
  peek(key: string): V | undefined {
    return this.map.get(key)?.value;
  }

  /** Cache `value` for `key` at `bytes` (its own size; the overhead is added). Too big: not cached. */
  set(key: string, value: V, bytes: number): void {
    this.delete(key);
    const cost = bytes + CACHE_ENTRY_OVERHEAD;
    if (cost > this.budget) return;
    this.map.set(key, { value, bytes: cost });
    this.used += cost;
    if (this.used <= this.budget) return;
    for (const [k, slot] of this.map) {
      if (this.used <= this.budget) break;
      this.map.delete(k);
      this.used -= slot.bytes;
      this.evictions++;
    }
  }

  delete(key: string): void {
    const slot = this.map.get(key);
    if (slot === undefined) return;
    this.map.delete(key);
    this.used -= slot.bytes;
  }

  clear(): void {
    this.map.clear();
    this.used = 0;
  }
}
