/**
 * `GET /jwt/v1/pack`: every unexpired stored account JWT as `<key>|<jwt>` lines, for bootstrapping
 * replicas. Streamed in chunks so a large store never becomes one string in memory.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { setImmediate as nextTurn } from "node:timers/promises";
import { AccountServerError } from "../errors.js";
import { goQuote } from "../jwt/index.js";
import { type AccountEntry, sameEntry } from "../store/index.js";
import type { RequestContext } from "./router.js";

export interface PackRouteOptions {
  readonly entries: () => Iterable<AccountEntry>;
  /** The JWT of an entry (read from the store unless cached); undefined once it is not stored. */
  readonly body: (entry: AccountEntry) => Promise<string | undefined>;
  /** What is stored for `key` now. */
  readonly current: (key: string) => AccountEntry | undefined;
  /** Resolves once every stored entry is indexed (see JwtStore.loading). */
  readonly indexed: () => Promise<void> | undefined;
  /** `maxreplicationpack`: the most entries one pack may hold. */
  readonly maxPack: number;
  /** Wall clock in milliseconds. */
  readonly now: () => number;
}

/** Lines per write: large enough to be cheap, small enough to keep memory flat. */
const CHUNK_ENTRIES = 512;
const GO_INT = /^[+-]?[0-9]+$/;

/**
 * The number of entries to send for a `max` parameter, following the legacy rules, except that
 * a negative value means the configured limit instead of "unlimited".
 */
export function packLimit(max: string | undefined, limit: number): number {
  if (max === undefined || max === "") return limit;
  const value = max.toLowerCase();
  const n = GO_INT.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n)) {
    throw new AccountServerError("BAD_MAX", { phrase: `bad max parameter ${goQuote(value)}` });
  }
  if (limit >= 0 && n > limit) {
    throw new AccountServerError("BAD_MAX", {
      phrase: `bad max parameter ${goQuote(value)}, no more than ${limit} are allowed`,
    });
  }
  return n < 0 ? limit : n;
}

/** Resolve when the response can take more data, false when the client went away. */
function drained(res: ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => () => {
      res.off("drain", onDrain);
      res.off("close", onClose);
      resolve(ok);
    };
    const onDrain = done(true);
    const onClose = done(false);
    res.once("drain", onDrain);
    res.once("close", onClose);
  });
}

export function packRoute(opts: PackRouteOptions) {
  /** The entry's JWT, or the JWT that replaced it since the snapshot (undefined: removed since). */
  async function lineOf(e: AccountEntry): Promise<string | undefined> {
    for (let entry: AccountEntry | undefined = e; entry !== undefined; ) {
      const jwt = await opts.body(entry);
      if (jwt !== undefined) return `${entry.key}|${jwt}`;
      const next = opts.current(entry.key);
      entry = sameEntry(next, entry) ? undefined : next;
    }
    return undefined;
  }

  return async function pack(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
    const limit = packLimit(ctx.query("max"), opts.maxPack);
    await opts.indexed();
    // A snapshot of index entries, sorted like the legacy directory walk; bodies are read per chunk.
    const entries = [...opts.entries()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const nowSec = Math.floor(opts.now() / 1000);
    res.writeHead(200, { "Content-Type": "text/plain" });
    if (req.method === "HEAD" || limit === 0) {
      res.end();
      return;
    }
    let sent = 0;
    let chunk: AccountEntry[] = [];
    const flush = async (): Promise<boolean> => {
      const lines = (await Promise.all(chunk.map(lineOf))).filter((l): l is string => l !== undefined);
      chunk = [];
      if (res.destroyed) return false;
      if (lines.length === 0) return true;
      const more = res.write((sent > 0 ? "\n" : "") + lines.join("\n"));
      sent += lines.length;
      if (!more && !(await drained(res))) return false;
      // Let other requests in between chunks of a large pack.
      await nextTurn();
      return !res.destroyed;
    };
    for (const e of entries) {
      if (sent + chunk.length >= limit) break;
      // Undecodable entries are included, as the legacy server did; only expiry excludes.
      if (e.exp > 0 && e.exp < nowSec) continue;
      chunk.push(e);
      if (chunk.length >= CHUNK_ENTRIES && !(await flush())) return;
    }
    if (chunk.length > 0 && !(await flush())) return;
    res.end();
  };
}
