/**
 * A tiny router with the observable habits of the Go server's httprouter: redirects for a
 * trailing slash, letter case or unclean paths, 405 with `Allow`, plain OPTIONS and CORS.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { send } from "./respond.js";

export type Method = "GET" | "POST" | "DELETE";

export interface RequestContext {
  readonly path: string;
  /** The route answers errors as JSON (endpoints that did not exist in the Go server). */
  readonly json: boolean;
  readonly params: Readonly<Record<string, string>>;
  /** First value of a query parameter (legacy: first occurrence wins). */
  query(name: string): string | undefined;
  /** A query flag is on only when its value lower-cased is `true`. */
  flag(name: string): boolean;
  /** Fields a handler adds to the log line of its refusal (the uploaded JWT's `jti`). */
  readonly logFields: Record<string, string>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, ctx: RequestContext) => unknown;

/**
 * A shortcut for the hottest requests: plain GET/HEAD (no query string, no `Origin`, no
 * `If-None-Match`). It gets the route's last path segment (the parameter, or "" for a static
 * route) and either answers completely, starting its headers with ROUTER_HEADERS, and returns
 * true, or returns false having sent nothing, and the request takes the normal way.
 */
export type FastHandler = (req: IncomingMessage, res: ServerResponse, param: string) => boolean;

/** Headers the router adds to every answer outside preflight; fast handlers send them first. */
export const ROUTER_HEADERS: readonly string[] = ["Vary", "Origin"];

export interface Route {
  /** Segments starting with `:` are parameters, e.g. `/jwt/v1/accounts/:key`. */
  readonly path: string;
  readonly methods: Partial<Record<Method, Handler>>;
  /** Errors of this route are answered as JSON instead of the legacy plain text. */
  readonly json?: boolean;
  /** See FastHandler; only used for static routes and routes whose one parameter ends the path. */
  readonly fast?: FastHandler;
}

interface CompiledRoute extends Route {
  readonly segs: readonly string[];
  readonly allow: string;
}

const CORS_METHODS = new Set(["GET", "HEAD", "POST", "DELETE", "OPTIONS"]);

function splitPath(p: string): string[] {
  return p.split("/").slice(1);
}

/** Like Go's path.Clean, keeping a trailing slash. */
export function cleanPath(p: string): string {
  const out: string[] = [];
  for (const s of p.split("/")) {
    if (s === "" || s === ".") continue;
    if (s === "..") out.pop();
    else out.push(s);
  }
  const cleaned = "/" + out.join("/");
  return p.endsWith("/") && cleaned !== "/" ? cleaned + "/" : cleaned;
}

function makeContext(path: string, rawQuery: string, params: Record<string, string>, json: boolean): RequestContext {
  let parsed: URLSearchParams | undefined;
  const query = (name: string): string | undefined => {
    if (rawQuery === "") return undefined;
    parsed ??= new URLSearchParams(rawQuery);
    return parsed.get(name) ?? undefined;
  };
  return { path, json, params, query, flag: (name) => query(name)?.toLowerCase() === "true", logFields: {} };
}

export class Router {
  private readonly routes: CompiledRoute[];
  /** Fast handlers by exact path (static routes) and by path prefix up to the parameter. */
  private readonly fastStatic = new Map<string, FastHandler>();
  private readonly fastPrefix = new Map<string, FastHandler>();
  /** Route templates by fast-path prefix: the hot requests' metrics label without a scan. */
  private readonly prefixTemplate = new Map<string, string>();

  constructor(routes: readonly Route[]) {
    this.routes = routes.map((r) => {
      const ms = new Set<string>(Object.keys(r.methods));
      if (ms.has("GET")) ms.add("HEAD");
      ms.add("OPTIONS");
      return { ...r, segs: splitPath(r.path), allow: [...ms].sort().join(", ") };
    });
    this.routes.forEach((r, i) => {
      if (!r.fast || !r.methods.GET) return;
      // A map lookup must find the route the ordered scan would: skip shortcuts that an earlier
      // route could shadow (same number of segments).
      const earlier = this.routes.slice(0, i).filter((e) => e.segs.length === r.segs.length);
      const params = r.segs.filter((s) => s.startsWith(":")).length;
      if (params === 0 && !earlier.some((e) => matchSegs(e.segs, r.segs, false))) {
        this.fastStatic.set(r.path, r.fast);
      } else if (
        params === 1 &&
        r.segs[r.segs.length - 1]!.startsWith(":") &&
        !earlier.some((e) => e.segs[e.segs.length - 1] !== "" && matchSegs(e.segs.slice(0, -1), r.segs.slice(0, -1), false))
      ) {
        this.fastPrefix.set(r.path.slice(0, r.path.lastIndexOf("/") + 1), r.fast);
        this.prefixTemplate.set(r.path.slice(0, r.path.lastIndexOf("/") + 1), r.path);
      }
    });
  }

  /** The FastHandler shortcut; true when it answered the request. */
  private tryFast(req: IncomingMessage, res: ServerResponse, url: string, method: string): boolean {
    if ((method !== "GET" && method !== "HEAD") || url.includes("?")) return false;
    const h = req.headers;
    if (h.origin !== undefined || h["if-none-match"] !== undefined) return false;
    const exact = this.fastStatic.get(url);
    if (exact) return exact(req, res, "");
    const slash = url.lastIndexOf("/");
    if (slash <= 0 || slash === url.length - 1) return false;
    const fast = this.fastPrefix.get(url.slice(0, slash + 1));
    if (!fast) return false;
    const param = url.slice(slash + 1);
    return fast(req, res, param.includes("%") ? decodeURIComponentSafe(param) : param);
  }

  /** Exact match (case-sensitive), or with `ci` a case-insensitive one on static segments. */
  private match(path: string, ci: boolean): { route: CompiledRoute; params: Record<string, string>; canonical: string } | undefined {
    const segs = splitPath(path);
    for (const route of this.routes) {
      if (route.segs.length !== segs.length) continue;
      const params: Record<string, string> = {};
      const canon: string[] = [];
      let ok = true;
      for (let i = 0; i < segs.length; i++) {
        const want = route.segs[i]!;
        const got = segs[i]!;
        if (want.startsWith(":")) {
          if (got === "") {
            ok = false;
            break;
          }
          params[want.slice(1)] = decodeURIComponentSafe(got);
          canon.push(got);
        } else if (want === got || (ci && want.toLowerCase() === got.toLowerCase())) {
          canon.push(want);
        } else {
          ok = false;
          break;
        }
      }
      if (ok) return { route, params, canonical: "/" + canon.join("/") };
    }
    return undefined;
  }

  /** The route template a request URL matches (a bounded metrics label), or "unmatched". */
  templateOf(url: string): string {
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    const slash = path.lastIndexOf("/");
    if (slash > 0 && slash < path.length - 1 && !path.slice(slash + 1).includes("%")) {
      const t = this.prefixTemplate.get(path.slice(0, slash + 1));
      if (t !== undefined) return t;
    }
    return this.match(path, false)?.route.path ?? "unmatched";
  }

  /** Find where a near-miss path should redirect to (trailing slash, case, `//`, `..`). */
  private redirectTarget(path: string): string | undefined {
    const candidates = new Set<string>();
    const cleaned = cleanPath(path);
    candidates.add(cleaned);
    candidates.add(cleaned.endsWith("/") ? cleaned.slice(0, -1) : cleaned + "/");
    for (const c of candidates) {
      if (c === "") continue;
      const m = this.match(c, true);
      if (m) return m.canonical;
    }
    return undefined;
  }

  handle(req: IncomingMessage, res: ServerResponse, onError: (err: unknown, ctx: RequestContext) => void): void {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    const rawQuery = q < 0 ? "" : url.slice(q + 1);
    const method = req.method ?? "GET";
    if ((this.fastStatic.size > 0 || this.fastPrefix.size > 0) && this.tryFast(req, res, url, method)) return;
    const origin = req.headers.origin;

    if (method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined) {
      this.preflight(req, res);
      return;
    }
    res.setHeader("Vary", "Origin");
    if (origin !== undefined && CORS_METHODS.has(method)) {
      res.setHeader("Access-Control-Allow-Origin", origin);
      res.setHeader("Access-Control-Expose-Headers", "Authorization");
    }

    const m = this.match(path, false);
    if (!m) {
      const target = path === "/" ? undefined : this.redirectTarget(path);
      if (target !== undefined) {
        const location = target + (q < 0 ? "" : url.slice(q));
        if (method === "GET" || method === "HEAD") {
          send(res, 301, { Location: location, "Content-Type": "text/html; charset=utf-8" },
            `<a href="${location.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;")}">Moved Permanently</a>.\n\n`);
        } else {
          send(res, 307, { Location: location });
        }
        return;
      }
      send(res, 404, { "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff" }, "404 page not found\n");
      return;
    }
    const { route, params } = m;
    if (method === "OPTIONS") {
      send(res, 200, { Allow: route.allow });
      return;
    }
    const handler = route.methods[(method === "HEAD" ? "GET" : method) as Method];
    if (!handler) {
      send(
        res,
        405,
        { Allow: route.allow, "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff" },
        "Method Not Allowed\n",
      );
      return;
    }
    const ctx = makeContext(path, rawQuery, params, route.json === true);
    try {
      const r = handler(req, res, ctx);
      if (r instanceof Promise) r.catch((err: unknown) => onError(err, ctx));
    } catch (err) {
      onError(err, ctx);
    }
  }

  private preflight(req: IncomingMessage, res: ServerResponse): void {
    const headers: Record<string, string> = {
      Vary: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
    };
    const origin = req.headers.origin;
    const wanted = String(req.headers["access-control-request-method"]).toUpperCase();
    if (origin !== undefined && CORS_METHODS.has(wanted)) {
      headers["Access-Control-Allow-Origin"] = origin;
      headers["Access-Control-Allow-Methods"] = wanted;
      const reqHeaders = req.headers["access-control-request-headers"];
      if (reqHeaders) headers["Access-Control-Allow-Headers"] = String(reqHeaders);
    }
    send(res, 204, headers);
  }
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Whether the static segments of `route` accept `segs` (parameters accept any non-empty segment). */
function matchSegs(route: readonly string[], segs: readonly string[], ci: boolean): boolean {
  if (route.length !== segs.length) return false;
  for (let i = 0; i < segs.length; i++) {
    const want = route[i]!;
    const got = segs[i]!;
    if (want.startsWith(":")) {
      if (got === "") return false;
    } else if (want !== got && !(ci && want.toLowerCase() === got.toLowerCase())) {
      return false;
    }
  }
  return true;
}
