/**
 * The console's index of account summaries (name, issuer, times, size, tags), sorted by name and
 * kept current from the change feed, so search and paging over 100,000 accounts stay cheap.
 */
import type { AccountRegistry } from "../../accounts.js";
import { type AccountEntry, sameEntry } from "../../store/index.js";

export interface AccountSummary {
  readonly key: string;
  readonly name: string;
  readonly issuer: string;
  readonly iat: number;
  /** 0 when the JWT never expires. */
  readonly exp: number;
  /** Bytes of the JWT. */
  readonly size: number;
  readonly tags: readonly string[];
  /**
   * Lower-case name, key and tags, one per line: what a search looks in, and the list order
   * (by name, then by the unique key).
   */
  readonly hay: string;
}

export type ExpiryFilter = "all" | "expiring" | "expired" | "valid";

export interface CatalogQuery {
  /** Case-insensitive substring of the name, key or a tag; empty matches all. */
  readonly q: string;
  readonly filter: ExpiryFilter;
  readonly offset: number;
  readonly limit: number;
  /** Seconds since the epoch. */
  readonly now: number;
  /** Seconds before `exp` that count as expiring soon. */
  readonly warnSeconds: number;
}

/** Entries decoded per turn of the event loop while the index is built. */
const BUILD_SLICE = 2000;

/** The claims the list shows, read from the payload (the store holds only verified JWTs). */
export function summarize(entry: AccountEntry, jwt: string): AccountSummary {
  let c: Record<string, unknown> = {};
  try {
    const payload = jwt.split(".")[1] ?? "";
    const parsed: unknown = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
    if (parsed !== null && typeof parsed === "object") c = parsed as Record<string, unknown>;
  } catch {
    // shown with empty fields
  }
  const nats = (c["nats"] ?? {}) as Record<string, unknown>;
  const str = (v: unknown): string => (typeof v === "string" ? v : "");
  const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);
  const tags = Array.isArray(nats["tags"]) ? (nats["tags"] as unknown[]).filter((t): t is string => typeof t === "string") : [];
  const name = str(c["name"]);
  return {
    key: entry.key,
    name,
    issuer: str(c["iss"]),
    iat: num(c["iat"]),
    exp: num(c["exp"]),
    size: entry.size,
    tags,
    hay: `${name}\n${entry.key}\n${tags.join("\n")}`.toLowerCase(),
  };
}

export function expiryState(exp: number, now: number, warnSeconds: number): "none" | "expired" | "expiring" | "valid" {
  if (exp === 0) return "none";
  if (exp <= now) return "expired";
  return exp - now <= warnSeconds ? "expiring" : "valid";
}

const byHay = (a: AccountSummary, b: AccountSummary): number => (a.hay < b.hay ? -1 : a.hay > b.hay ? 1 : 0);

function merge(a: readonly AccountSummary[], b: readonly AccountSummary[]): AccountSummary[] {
  const out = new Array<AccountSummary>(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) out[k++] = a[i]!.hay <= b[j]!.hay ? a[i++]! : b[j++]!;
  while (i < a.length) out[k++] = a[i++]!;
  while (j < b.length) out[k++] = b[j++]!;
  return out;
}

export class AccountCatalog {
  private readonly registry: AccountRegistry;
  private readonly byKey = new Map<string, AccountSummary>();
  private sorted: AccountSummary[] = [];
  /** Keys changed while the index was being built; re-read once it is. */
  private changedDuringBuild: Set<string> | undefined = new Set();
  private readonly changedAt = new Map<string, Date>();
  readonly built: Promise<void>;

  constructor(registry: AccountRegistry, now: () => number = Date.now) {
    this.registry = registry;
    registry.onChange((c) => {
      this.changedAt.set(c.key, new Date(now()));
      if (this.changedDuringBuild) this.changedDuringBuild.add(c.key);
      else this.refresh(c.key, c.entry, c.jwt);
    });
    this.built = this.build();
  }

  /** When the account last changed while this server ran, if it did. */
  lastChange(key: string): Date | undefined {
    return this.changedAt.get(key);
  }

  get size(): number {
    return this.sorted.length;
  }

  get(key: string): AccountSummary | undefined {
    return this.byKey.get(key);
  }

  query(q: CatalogQuery): { total: number; rows: AccountSummary[] } {
    const needle = q.q.trim().toLowerCase();
    const rows: AccountSummary[] = [];
    let total = 0;
    for (const s of this.sorted) {
      if (needle !== "" && !s.hay.includes(needle)) continue;
      if (q.filter !== "all") {
        const st = expiryState(s.exp, q.now, q.warnSeconds);
        if (q.filter === "valid" ? st === "expired" : st !== q.filter) continue;
      }
      if (total >= q.offset && rows.length < q.limit) rows.push(s);
      total++;
    }
    return { total, rows };
  }

  private async build(): Promise<void> {
    const store = this.registry.store;
    // A directory store still reading its files in the background lists them once it is done.
    await store.loading;
    // Each slice is sorted and merged into what is sorted so far: one sort of everything at the
    // end would hold the event loop for a few hundred milliseconds at 100,000 accounts.
    let slice: AccountSummary[] = [];
    const mergeSlice = (): void => {
      slice.sort(byHay);
      this.sorted = merge(this.sorted, slice);
      slice = [];
    };
    // The index holds no bodies: each slice reads its JWTs (a change meanwhile is re-read after).
    let batch: AccountEntry[] = [];
    const readBatch = async (): Promise<void> => {
      const bodies = await Promise.all(batch.map((e) => this.registry.body(e)));
      batch.forEach((entry, i) => {
        const jwt = bodies[i];
        if (jwt === undefined) return void this.changedDuringBuild?.add(entry.key);
        const s = summarize(entry, jwt);
        this.byKey.set(s.key, s);
        slice.push(s);
      });
      batch = [];
      mergeSlice();
    };
    for (const entry of store.entries()) {
      batch.push(entry);
      if (batch.length === BUILD_SLICE) await readBatch();
    }
    await readBatch();
    const changed = this.changedDuringBuild ?? new Set<string>();
    this.changedDuringBuild = undefined;
    for (const key of changed) {
      const entry = this.registry.store.get(key);
      this.refresh(key, entry, entry && (await this.registry.body(entry)));
    }
  }

  /** Insert, move or drop the summary of `key`, now stored as `entry` (`jwt` its body). */
  private refresh(key: string, entry: AccountEntry | undefined, jwt: string | undefined): void {
    // Read before a later change was applied: that change's own refresh is the one to keep.
    if (!sameEntry(this.registry.store.get(key), entry)) return;
    const old = this.byKey.get(key);
    if (old) {
      this.sorted.splice(this.position(old.hay), 1);
      this.byKey.delete(key);
    }
    if (!entry || jwt === undefined) return;
    const s = summarize(entry, jwt);
    this.byKey.set(key, s);
    this.sorted.splice(this.position(s.hay), 0, s);
  }

  /** Index of the first summary whose hay is not below `hay` (binary search). */
  private position(hay: string): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.sorted[mid]!.hay < hay) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
