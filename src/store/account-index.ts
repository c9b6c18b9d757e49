/**
 * The account index every backend shares, kept in columns of typed arrays (a hash table of slots):
 * a million accounts cost ~130 bytes each, off the JS heap, so the GC neither holds nor traces them.
 */
import { AccountEntry } from "./types.js";

/** An account public key: 56 base32 characters. Any other key is kept as an object (tests, odd files). */
const KEY_LEN = 56;
const DIGEST_LEN = 32;
/** Slots per chunk: the index grows a chunk at a time, never copying what it holds. */
const CHUNK_BITS = 14;
const CHUNK = 1 << CHUNK_BITS;
const OFFSET_MASK = CHUNK - 1;
/** Distinct issuers the columns name by number; an entry with one more is kept as an object. */
const MAX_ISSUERS = 4096;

const FREE = 0;
const STATE: Record<AccountEntry["signature"], number> = { unchecked: 1, good: 2, bad: 3 };
const SIGNATURE = [undefined, "unchecked", "good", "bad"] as const;

class Chunk {
  readonly keys = Buffer.alloc(CHUNK * KEY_LEN);
  readonly digests = Buffer.alloc(CHUNK * DIGEST_LEN);
  readonly sizes = new Uint32Array(CHUNK);
  readonly iats = new Float64Array(CHUNK);
  readonly exps = new Float64Array(CHUNK);
  readonly stamps = new Float64Array(CHUNK);
  readonly hashes = new Int32Array(CHUNK);
  readonly issuers = new Uint16Array(CHUNK);
  /** FREE, or the signature state + 1. */
  readonly states = new Uint8Array(CHUNK);
}

/** FNV-1a of a key that fits the columns; -1 when it does not (wrong length or not one byte a char). */
function keyHash(key: string): number {
  if (key.length !== KEY_LEN) return -1;
  let h = 0x811c9dc5;
  for (let i = 0; i < KEY_LEN; i++) {
    const c = key.charCodeAt(i);
    if (c > 0xff) return -1;
    h = Math.imul(h ^ c, 0x01000193);
  }
  return h & 0x7fffffff;
}

function xorDigest(acc: Buffer, digest: string): void {
  for (let i = 0; i < DIGEST_LEN; i++) acc[i] = acc[i]! ^ digest.charCodeAt(i);
}

/** The account index with its incremental hash (XOR of every entry's SHA-256). */
export class AccountIndex {
  private readonly chunks: Chunk[] = [];
  /** Open addressing, linear probing: slot + 1, 0 = empty. */
  private table = new Int32Array(1024);
  private used = 0;
  private nextSlot = 0;
  private readonly free: number[] = [];
  /** Every set() takes the next stamp: entries are the same version exactly when their stamps are. */
  private stamp = 0;
  private readonly issuerNames: string[] = [""];
  private readonly issuerIds = new Map<string, number>([["", 0]]);
  /** Entries whose key or issuer does not fit the columns. */
  private readonly others = new Map<string, AccountEntry>();
  private readonly xor = Buffer.alloc(DIGEST_LEN);

  get size(): number {
    return this.used + this.others.size;
  }

  get(key: string): AccountEntry | undefined {
    const h = keyHash(key);
    if (h < 0) return this.others.get(key);
    const slot = this.slotOf(key, h);
    return slot < 0 ? this.others.get(key) : this.entryAt(slot, key);
  }

  /** Stores `entry` (replacing what `key` had) and stamps it as the version now served. */
  set(entry: AccountEntry): void {
    entry.stamp = ++this.stamp;
    const { key } = entry;
    const h = keyHash(key);
    let iss = this.issuerIds.get(entry.iss);
    if (iss === undefined && this.issuerNames.length < MAX_ISSUERS) {
      iss = this.issuerNames.push(entry.iss) - 1;
      this.issuerIds.set(entry.iss, iss);
    }
    if (h < 0 || iss === undefined) {
      this.delete(key);
      this.others.set(key, entry);
      xorDigest(this.xor, entry.digest);
      return;
    }
    const old = this.others.get(key);
    if (old) {
      xorDigest(this.xor, old.digest);
      this.others.delete(key);
    }
    let slot = this.slotOf(key, h);
    if (slot >= 0) {
      this.xorSlot(slot);
    } else {
      slot = this.claimSlot(key, h);
    }
    const c = this.chunks[slot >>> CHUNK_BITS]!;
    const i = slot & OFFSET_MASK;
    c.digests.write(entry.digest, i * DIGEST_LEN, DIGEST_LEN, "latin1");
    c.sizes[i] = entry.size;
    c.iats[i] = entry.iat ?? Number.NaN;
    c.exps[i] = entry.exp;
    c.stamps[i] = entry.stamp;
    c.issuers[i] = iss;
    c.states[i] = STATE[entry.signature];
    xorDigest(this.xor, entry.digest);
  }

  delete(key: string): boolean {
    const old = this.others.get(key);
    if (old) {
      xorDigest(this.xor, old.digest);
      return this.others.delete(key);
    }
    const h = keyHash(key);
    if (h < 0) return false;
    const mask = this.table.length - 1;
    for (let pos = h & mask; ; pos = (pos + 1) & mask) {
      const s = this.table[pos]!;
      if (s === 0) return false;
      if (this.holds(s - 1, key, h)) {
        this.xorSlot(s - 1);
        this.release(s - 1, pos);
        return true;
      }
    }
  }

  /** Records the outcome of a signature check, if `entry` is still the version served. */
  mark(entry: AccountEntry, signature: AccountEntry["signature"]): void {
    const other = this.others.get(entry.key);
    if (other !== undefined) {
      if (other.stamp === entry.stamp) other.signature = signature;
      return;
    }
    const h = keyHash(entry.key);
    const slot = h < 0 ? -1 : this.slotOf(entry.key, h);
    if (slot < 0) return;
    const c = this.chunks[slot >>> CHUNK_BITS]!;
    const i = slot & OFFSET_MASK;
    if (c.stamps[i] === entry.stamp) c.states[i] = STATE[signature];
  }

  *entries(): IterableIterator<AccountEntry> {
    for (let slot = 0; slot < this.nextSlot; slot++) {
      const c = this.chunks[slot >>> CHUNK_BITS]!;
      const i = slot & OFFSET_MASK;
      if (c.states[i] !== FREE) yield this.entryAt(slot, c.keys.toString("latin1", i * KEY_LEN, (i + 1) * KEY_LEN));
    }
    yield* this.others.values();
  }

  hash(): Buffer {
    return Buffer.from(this.xor);
  }

  private entryAt(slot: number, key: string): AccountEntry {
    const c = this.chunks[slot >>> CHUNK_BITS]!;
    const i = slot & OFFSET_MASK;
    const iat = c.iats[i]!;
    const e = new AccountEntry(
      key,
      c.digests.toString("latin1", i * DIGEST_LEN, (i + 1) * DIGEST_LEN),
      c.sizes[i]!,
      Number.isNaN(iat) ? undefined : iat,
      c.exps[i]!,
      this.issuerNames[c.issuers[i]!]!,
    );
    e.signature = SIGNATURE[c.states[i]!]!;
    e.stamp = c.stamps[i]!;
    return e;
  }

  private holds(slot: number, key: string, h: number): boolean {
    const c = this.chunks[slot >>> CHUNK_BITS]!;
    const i = slot & OFFSET_MASK;
    if (c.hashes[i] !== h) return false;
    const keys = c.keys;
    for (let j = 0, at = i * KEY_LEN; j < KEY_LEN; j++, at++) if (keys[at] !== key.charCodeAt(j)) return false;
    return true;
  }

  private slotOf(key: string, h: number): number {
    const mask = this.table.length - 1;
    for (let pos = h & mask; ; pos = (pos + 1) & mask) {
      const s = this.table[pos]!;
      if (s === 0) return -1;
      if (this.holds(s - 1, key, h)) return s - 1;
    }
  }

  private xorSlot(slot: number): void {
    const c = this.chunks[slot >>> CHUNK_BITS]!;
    const at = (slot & OFFSET_MASK) * DIGEST_LEN;
    for (let i = 0; i < DIGEST_LEN; i++) this.xor[i] = this.xor[i]! ^ c.digests[at + i]!;
  }

  private claimSlot(key: string, h: number): number {
    // At most half full, so a probe ends after a slot or two.
    if ((this.used + 1) * 2 > this.table.length) this.rehash(this.table.length * 2);
    let slot = this.free.pop();
    if (slot === undefined) {
      slot = this.nextSlot++;
      if (slot >>> CHUNK_BITS >= this.chunks.length) this.chunks.push(new Chunk());
    }
    const c = this.chunks[slot >>> CHUNK_BITS]!;
    const i = slot & OFFSET_MASK;
    c.keys.write(key, i * KEY_LEN, KEY_LEN, "latin1");
    c.hashes[i] = h;
    const mask = this.table.length - 1;
    let pos = h & mask;
    while (this.table[pos] !== 0) pos = (pos + 1) & mask;
    this.table[pos] = slot + 1;
    this.used++;
    return slot;
  }

  /** Frees `slot`, found at table position `pos`; later entries of its probe run shift back into the gap. */
  private release(slot: number, pos: number): void {
    const c = this.chunks[slot >>> CHUNK_BITS]!;
    c.states[slot & OFFSET_MASK] = FREE;
    this.free.push(slot);
    this.used--;
    const table = this.table;
    const mask = table.length - 1;
    let gap = pos;
    for (let next = (gap + 1) & mask; table[next] !== 0; next = (next + 1) & mask) {
      const home = this.hashOf(table[next]! - 1) & mask;
      // Move it back unless its home lies cyclically in (gap, next].
      const stays = gap <= next ? gap < home && home <= next : gap < home || home <= next;
      if (!stays) {
        table[gap] = table[next]!;
        gap = next;
      }
    }
    table[gap] = 0;
  }

  private hashOf(slot: number): number {
    return this.chunks[slot >>> CHUNK_BITS]!.hashes[slot & OFFSET_MASK]!;
  }

  private rehash(size: number): void {
    const table = new Int32Array(size);
    const mask = size - 1;
    for (const s of this.table) {
      if (s === 0) continue;
      let pos = this.hashOf(s - 1) & mask;
      while (table[pos] !== 0) pos = (pos + 1) & mask;
      table[pos] = s;
    }
    this.table = table;
  }
}
