/**
 * Answering a GET of a stored JWT (account or activation token): the text/decode views, the
 * `check` flag, ETag and never-negative Cache-Control, If-None-Match and `notify`.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { AccountServerError } from "../errors.js";
import { decodedView } from "./decoded.js";
import { send } from "./respond.js";
import type { RequestContext } from "./router.js";

/** Seconds a JWT stays fresh (never negative), or -1 without `exp`. */
export function freshFor(exp: number, nowMs: number): number {
  return exp <= 0 ? -1 : Math.max(0, Math.trunc(exp - nowMs / 1000));
}

/**
 * Cache-Control for a JWT: fresh until it expires (never a negative age). A JWT without `exp`
 * can be replaced at any moment, so caches must revalidate (cheap thanks to the ETag).
 */
export function cacheControl(exp: number, nowMs: number): string {
  const age = freshFor(exp, nowMs);
  if (age < 0) return "no-cache";
  return `max-age=${age}, stale-while-revalidate=3600, stale-if-error=3600`;
}

/** RFC 9110 weak comparison of an If-None-Match header against our ETag. */
export function ifNoneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined || header === "") return false;
  for (let tag of header.split(",")) {
    tag = tag.trim();
    if (tag === "*") return true;
    if (tag.startsWith("W/")) tag = tag.slice(2);
    if (tag === etag) return true;
  }
  return false;
}

/** What answering a GET of a stored token needs (an account's or an activation's view). */
export interface ServedView {
  readonly jwt: string;
  readonly etag: string | undefined;
  readonly exp: number;
  readonly valid: boolean;
}

/** Answer a GET of `view`; `notify` re-announces it (the `notify=true` flag). */
export function serveStored(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: RequestContext,
  view: ServedView,
  nowMs: number,
  notify: () => void,
): void {
  if (ctx.flag("text")) {
    send(res, 200, { "Content-Type": "text/plain" }, view.jwt);
    return;
  }
  if (ctx.flag("decode")) {
    send(res, 200, { "Content-Type": "text/plain" }, decodedView(view.jwt));
    return;
  }
  if (!view.valid) throw new AccountServerError("LOAD_FAILED", { reason: "stored JWT does not decode or is not trusted" });
  if (ctx.flag("check") && view.exp > 0 && view.exp * 1000 < nowMs) {
    send(res, 404, {});
    return;
  }
  const etag = view.etag!;
  const headers: OutgoingHttpHeaders = { ETag: etag, "Cache-Control": cacheControl(view.exp, nowMs) };
  if (ifNoneMatch(req.headers["if-none-match"], etag)) {
    send(res, 304, headers);
    return;
  }
  if (ctx.flag("notify")) notify();
  headers["Content-Type"] = "application/jwt";
  send(res, 200, headers, view.jwt);
}
