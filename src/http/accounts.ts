/**
 * `/jwt/v1/accounts[/<key>]`: the resolver probe, account fetch (the hot path nats-servers
 * hit) and upload. GET answers from memory; POST goes through the registry's write path.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { AccountRegistry, AccountView } from "../accounts.js";
import { AccountServerError } from "../errors.js";
import { isPublicKey, peekClaims } from "../jwt/index.js";
import type { Notifier, SignRequests } from "../nats/index.js";
import type { Logger } from "../log.js";
import type { ForwardedAnswer } from "../replica.js";
import { errorHeaders, readBody, refusalLine, send } from "./respond.js";
import { cacheControl, freshFor, serveStored } from "./serve-jwt.js";
import { ROUTER_HEADERS, type RequestContext } from "./router.js";

export interface AccountRoutesOptions {
  readonly registry: AccountRegistry;
  readonly notifier: Notifier;
  readonly maxBodyBytes: number;
  /** Wall clock in milliseconds. */
  readonly now: () => number;
  /**
   * Asks the NATS system account for a key the store lacks (`$SYS.REQ.ACCOUNT.<key>.CLAIMS.LOOKUP`)
   * and stores a valid answer; resolves once done, whatever the outcome. Undefined when it does
   * not ask (the key missed recently, too many lookups open, nobody to ask): answer 404 at once.
   * Concurrent calls for one key share one request.
   */
  readonly lookup?: (key: string) => Promise<unknown> | undefined;
  /** Where refusals answered without the normal route (misses) are logged. */
  readonly log: Logger;
  /** `signrequestsubject` is set: JWTs not signed by a trusted key go to the signing service. */
  readonly signing?: SignRequests;
  /** Replica mode: uploads go to the primary and its answer is relayed (see src/replica.ts). */
  readonly forward?: (
    method: "POST" | "DELETE",
    pathAndQuery: string,
    body: string,
    contentType: string | undefined,
    applyLocally: () => Promise<unknown>,
  ) => Promise<ForwardedAnswer>;
}

const PROBE_HEADERS: OutgoingHttpHeaders = {
  "Cache-Control": "no-cache, no-store, must-revalidate",
  Pragma: "no-cache",
  Expires: "0",
};

/** Probe answer for the router's fast path, headers precomputed. */
const PROBE_FAST: readonly string[] = [...ROUTER_HEADERS, ...Object.entries(PROBE_HEADERS).flat().map(String)];

/** The 404 of a miss, built once: the bytes sendError writes for NOT_FOUND, without an error object per request. */
const MISS = new AccountServerError("NOT_FOUND");
const MISS_BODY = MISS.body();
const MISS_FAST: readonly string[] = [
  ...ROUTER_HEADERS,
  ...Object.entries({ ...errorHeaders("NOT_FOUND"), "Content-Length": Buffer.byteLength(MISS_BODY) }).flat().map(String),
];

/** A precomputed 200 answer for one view; Cache-Control counts down, so it is per max-age. */
interface CachedAnswer {
  /** The max-age the headers were made for (-1: no `exp`, they never change). */
  readonly age: number;
  readonly headers: readonly string[];
}

export function accountRoutes(opts: AccountRoutesOptions) {
  const { registry, notifier, now, log } = opts;

  function probe(_req: IncomingMessage, res: ServerResponse): void {
    send(res, 200, { ...PROBE_HEADERS });
  }

  function fastProbe(_req: IncomingMessage, res: ServerResponse): boolean {
    res.writeHead(200, PROBE_FAST as string[]);
    res.end();
    return true;
  }

  // Views are immutable and replaced on every change, so answers keyed on them never go stale.
  const answers = new WeakMap<AccountView, CachedAnswer>();

  /**
   * The hot path (router shortcut for a plain GET/HEAD of a key): the same answer as serveStored,
   * from headers computed once per view and second. Anything unusual takes the normal way.
   */
  function fastGet(_req: IncomingMessage, res: ServerResponse, key: string): boolean {
    const view = registry.view(key);
    if (view === undefined || !view.valid) return false;
    const nowMs = now();
    const age = freshFor(view.exp, nowMs);
    let a = answers.get(view);
    if (a === undefined || a.age !== age) {
      a = {
        age,
        headers: [
          ...ROUTER_HEADERS,
          "ETag", view.etag!,
          "Cache-Control", cacheControl(view.exp, nowMs),
          "Content-Type", "application/jwt",
          "Content-Length", String(view.entry.size),
        ],
      };
      answers.set(view, a);
    }
    res.writeHead(200, a.headers as string[]);
    res.end(view.jwt);
    return true;
  }

  function getAccount(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): void | Promise<void> {
    const key = ctx.params["key"]!;
    const jti = ctx.query("jti");
    if (jti !== undefined && jti !== "") throw new AccountServerError("JTI_UNSUPPORTED");
    const view = registry.view(key);
    if (view) return answer(req, res, ctx, view);
    // Stored but not cached: read it once (async), then it is served from the cache.
    if (registry.get(key)) return loadThenAnswer(req, res, ctx, key);
    // A shared store still loading must not answer "no such account" for one it may hold.
    if (!registry.ready) throw new AccountServerError("STORE_UNAVAILABLE");
    const asked = lookupFor(key);
    if (asked) return lookupThenAnswer(req, res, ctx, key, asked);
    throw new AccountServerError("NOT_FOUND", { reason: key });
  }

  async function loadThenAnswer(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, key: string): Promise<void> {
    const view = await registry.load(key);
    if (!view) throw new AccountServerError("NOT_FOUND", { reason: key });
    answer(req, res, ctx, view);
  }

  /**
   * The miss shortcut, after fastGet declined: a key the index lacks and nobody is asked for gets
   * getAccount's 404 and log line, without an error object or the normal route.
   */
  function fastMiss(_req: IncomingMessage, res: ServerResponse, key: string): boolean {
    // Indexed but not cached (fastGet declined it) is not a miss: getAccount reads it.
    if (registry.get(key) !== undefined || !registry.ready) return false;
    // A lookup started here is shared by key: getAccount, on the normal path, waits for the same one.
    if (lookupFor(key) !== undefined) return false;
    res.writeHead(404, MISS_FAST as string[]);
    res.end(MISS_BODY);
    log.error(refusalLine(key, MISS.phrase, key), { account: key, source: "http", code: "NOT_FOUND" });
    return true;
  }

  /** A full nats-server or another account server may hold a valid, never-deleted key: ask the system account. */
  function lookupFor(key: string): Promise<unknown> | undefined {
    if (!opts.lookup || !isPublicKey(key, "account") || registry.isDeleted(key)) return undefined;
    return opts.lookup(key);
  }

  async function lookupThenAnswer(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, key: string, asked: Promise<unknown>): Promise<void> {
    await asked;
    const view = await registry.load(key);
    if (!view) throw new AccountServerError("NOT_FOUND", { reason: key });
    answer(req, res, ctx, view);
  }

  function answer(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, view: AccountView): void {
    serveStored(req, res, ctx, view, now(), () => notifier.notify(view.entry.key));
  }

  async function postAccount(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
    const key = ctx.params["key"]!;
    if (opts.forward) {
      const body = await readBody(req, opts.maxBodyBytes);
      const a = await opts.forward("POST", req.url ?? "", body, req.headers["content-type"], () =>
        registry.accept(body, { source: "http", key }),
      );
      send(res, a.status, a.contentType ? { "Content-Type": a.contentType } : {}, a.body);
      return;
    }
    const readOnly = registry.readOnlyCode;
    if (readOnly) throw new AccountServerError(readOnly);
    const body = await readBody(req, opts.maxBodyBytes);
    try {
      if (opts.signing) {
        const r = await opts.signing.upload(body, key, "http");
        if (r.status === 202) send(res, 202, { "Content-Type": "text/plain; charset=utf-8" }, r.text);
        else send(res, 200, {});
        return;
      }
      await registry.accept(body, { source: "http", key });
      send(res, 200, {});
    } catch (err) {
      // Parsed for the refusal's log line only: an accepted upload is decoded once, by the check.
      const jti = peekClaims(body)?.jti;
      if (jti) ctx.logFields["jti"] = jti;
      throw err;
    }
  }

  /** Operator-signed deletion, the HTTP twin of `$SYS.REQ.CLAIMS.DELETE` (nsc push --prune). */
  async function deleteAccounts(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req, opts.maxBodyBytes);
    if (opts.forward) {
      const a = await opts.forward("DELETE", req.url ?? "", body, req.headers["content-type"], () =>
        registry.deleteAccounts(body, "http"),
      );
      send(res, a.status, a.contentType ? { "Content-Type": a.contentType } : {}, a.body);
      return;
    }
    const r = await registry.deleteAccounts(body, "http");
    send(
      res,
      200,
      { "Content-Type": "application/json" },
      JSON.stringify({ code: 200, message: `deleted ${r.accounts.length} accounts`, accounts: r.accounts }),
    );
  }

  return { probe, fastProbe, getAccount, fastGet, fastMiss, postAccount, deleteAccounts };
}
