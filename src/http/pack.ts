/**
 * `GET /jwt/v1/pack`: every unexpired stored account JWT as `<key>|<jwt>` lines, for bootstrapping
 * replicas. Streamed in chunks so a large store never becomes one string in memory.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { setImmediate as nextTurn } from "node:timers/promises";
import { AccountServerError } from "../errors.js";
import { goQuote, peekClaims } from "../jwt/index.js";
import type { StoredJwt } from "../store/index.js";
import type { RequestContext } from "./router.js";

export interface PackRouteOptions {
  readonly entries: () => Iterable<StoredJwt>;
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
  /** Expiry per stored entry (entries are immutable, so this never goes stale). */
  const expiry = new WeakMap<StoredJwt, number>();
  const expOf = (e: StoredJwt): number => {
    let exp = expiry.get(e);
    if (exp === undefined) {
      exp = peekClaims(e.jwt)?.exp ?? 0;
      expiry.set(e, exp);
    }
    return exp;
  };

  return async function pack(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
    const limit = packLimit(ctx.query("max"), opts.maxPack);
    // A snapshot of references (not of text), sorted like the legacy directory walk.
    const entries = [...opts.entries()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const nowSec = Math.floor(opts.now() / 1000);
    res.writeHead(200, { "Content-Type": "text/plain" });
    if (req.method === "HEAD" || limit === 0) {
      res.end();
      return;
    }
    let sent = 0;
    let lines: string[] = [];
    for (const e of entries) {
      if (sent >= limit) break;
      const exp = expOf(e);
      // Undecodable entries are included, as the legacy server did; only expiry excludes.
      if (exp > 0 && exp < nowSec) continue;
      lines.push(`${e.key}|${e.jwt}`);
      sent++;
      if (lines.length >= CHUNK_ENTRIES) {
        const more = res.write((sent > lines.length ? "\n" : "") + lines.join("\n"));
        lines = [];
        if (!more && !(await drained(res))) return;
        // Let other requests in between chunks of a large pack.
        await nextTurn();
        if (res.destroyed) return;
      }
    }
    if (lines.length > 0) res.write((sent > lines.length ? "\n" : "") + lines.join("\n"));
    res.end();
  };
}
