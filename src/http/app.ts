/**
 * The HTTP application: route table, the operator/help/health endpoints, and the node:http
 * listener with the configured timeouts, body limit and optional TLS.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { readFileSync } from "node:fs";
import type { Duplex } from "node:stream";
import type { AccountRegistry } from "../accounts.js";
import type { ActivationRegistry } from "../activations.js";
import type { HttpConfig } from "../config/types.js";
import { isAccountServerError } from "../errors.js";
import type { Logger } from "../log.js";
import type { Metrics } from "./metrics.js";
import type { Notifier } from "../nats/index.js";
import { accountRoutes, type AccountRoutesOptions } from "./accounts.js";
import { activationRoutes } from "./activations.js";
import { decodedView } from "./decoded.js";
import { HELP_TEXT } from "./help.js";
import { historyRoutes } from "./history.js";
import type { HistorySource } from "../store/index.js";
import { packRoute } from "./pack.js";
import { send, sendError, sendText } from "./respond.js";
import { Router, type Route } from "./router.js";

export interface HttpAppOptions {
  readonly registry: AccountRegistry;
  readonly notifier: Notifier;
  readonly log: Logger;
  readonly config: HttpConfig;
  /** Returns the operator JWT text as read from its file, if one is configured. */
  readonly operatorJwt: () => string | undefined;
  /** Health summary for /healthz. */
  readonly health: () => Record<string, unknown>;
  /** Replica mode: where uploads are forwarded (the primary). */
  readonly forward?: AccountRoutesOptions["forward"];
  /** The signing-service branch of uploads (`signrequestsubject`). */
  readonly signing?: AccountRoutesOptions["signing"];
  /** NATS lookup of an account the store lacks (GET miss); absent without NATS. */
  readonly lookup?: AccountRoutesOptions["lookup"];
  /** Activation tokens; without it the activation endpoints are not routed. */
  readonly activations?: ActivationRegistry;
  /** Past versions of account JWTs; without it the history endpoints are not routed. */
  readonly history?: HistorySource;
  /** `maxreplicationpack`: most entries in one `/jwt/v1/pack` answer (default 10000). */
  readonly maxReplicationPack?: number;
  readonly now?: () => number;
  /** Counts every request and refused upload; see `extraRoutes` for its scrape endpoint. */
  readonly metrics?: Metrics;
  /** Further routes served on this listener (the metrics endpoint, the console). */
  readonly extraRoutes?: readonly Route[];
}

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

export function createApp(opts: HttpAppOptions): RequestListener {
  const { log } = opts;
  const accounts = accountRoutes({
    registry: opts.registry,
    notifier: opts.notifier,
    log,
    maxBodyBytes: opts.config.maxBodyBytes,
    now: opts.now ?? Date.now,
    ...(opts.forward ? { forward: opts.forward } : {}),
    ...(opts.lookup ? { lookup: opts.lookup } : {}),
    ...(opts.signing ? { signing: opts.signing } : {}),
  });

  const routes: Route[] = [
    { path: "/jwt/v1/accounts", methods: { GET: accounts.probe, DELETE: accounts.deleteAccounts }, json: true, fast: accounts.fastProbe },
    { path: "/jwt/v1/accounts/", methods: { GET: accounts.probe, DELETE: accounts.deleteAccounts }, json: true, fast: accounts.fastProbe },
    { path: "/jwt/v1/accounts/:key", methods: { GET: accounts.getAccount, POST: accounts.postAccount }, fast: (q, s, key) => accounts.fastGet(q, s, key) || accounts.fastMiss(q, s, key) },
    { path: "/jwt/v1/help", methods: { GET: (_q, res) => sendText(res, 200, HELP_TEXT) } },
    {
      path: "/jwt/v1/pack",
      methods: {
        GET: packRoute({ entries: () => opts.registry.entries(), body: (e) => opts.registry.body(e), current: (k) => opts.registry.get(k), indexed: () => opts.registry.store.loading, maxPack: opts.maxReplicationPack ?? 10000, now: opts.now ?? Date.now }),
      },
    },
    {
      path: "/healthz",
      methods: {
        GET: (_q, res) => send(res, 200, { "Content-Type": "application/json" }, JSON.stringify(opts.health())),
      },
    },
    {
      // Readiness, unlike liveness: 503 until the store can answer (a KV bucket still loading).
      path: "/readyz",
      methods: {
        GET: (_q, res) => {
          const ready = opts.registry.ready;
          send(res, ready ? 200 : 503, { "Content-Type": "application/json" }, JSON.stringify({ ready }));
        },
      },
    },
  ];
  if (opts.history) {
    const h = historyRoutes(opts.history);
    routes.push(
      { path: "/jwt/v1/accounts/:key/history", methods: { GET: h.list }, json: true },
      { path: "/jwt/v1/accounts/:key/history/:revision", methods: { GET: h.version }, json: true },
    );
  }
  if (opts.operatorJwt() !== undefined) {
    const operator = (_q: IncomingMessage, res: ServerResponse, ctx: { flag(n: string): boolean }): void => {
      const jwt = opts.operatorJwt() ?? "";
      if (ctx.flag("text")) send(res, 200, { "Content-Type": "text/plain" }, jwt);
      else if (ctx.flag("decode")) send(res, 200, { "Content-Type": "text/plain" }, decodedView(jwt));
      else send(res, 200, { "Content-Type": "application/jwt" }, jwt);
    };
    routes.push({ path: "/jwt/v1/operator", methods: { GET: operator } });
    // `nsc pull -A` asks v2 first and falls back to v1 only on a status above 299.
    routes.push({ path: "/jwt/v2/operator", methods: { GET: operator } });
  }
  if (opts.activations) {
    const act = activationRoutes({
      activations: opts.activations,
      notifier: opts.notifier,
      maxBodyBytes: opts.config.maxBodyBytes,
      now: opts.now ?? Date.now,
    });
    // A read-only store or a replica takes no uploads: the path stays known, so POST answers 405.
    const writable = opts.activations.writable && !opts.forward;
    routes.push({ path: "/jwt/v1/activations", methods: writable ? { POST: act.postActivation } : {} });
    routes.push({ path: "/jwt/v1/activations/:hash", methods: { GET: act.getActivation } });
  }
  routes.push(...(opts.extraRoutes ?? []));
  const router = new Router(routes);
  const metrics = opts.metrics;

  return function handleRequest(req, res) {
    if (log.traceEnabled) log.trace(`${req.socket.remoteAddress}: ${req.method} ${req.url}`);
    const t0 = metrics ? process.hrtime.bigint() : 0n;
    router.handle(req, res, (err, ctx) => {
      if (metrics && req.method === "POST" && isAccountServerError(err)) metrics.refusal("http", err.code);
      sendError(req, res, err, log, ctx.params["key"] ?? "", ctx.json, ctx.logFields);
    });
    if (!metrics) return;
    const record = (): void => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      metrics.request(router.templateOf(req.url ?? "/"), req.method ?? "GET", res.statusCode, seconds);
    };
    // Answered already (the fast paths, most errors): counted now, without a listener per request.
    if (res.writableEnded) record();
    else res.once("finish", record);
  };
}

/** A listener of its own serving only `routes` (metrics or console bound elsewhere). */
export function createSideApp(routes: readonly Route[], log: Logger): RequestListener {
  const router = new Router(routes);
  return function handleSideRequest(req, res) {
    router.handle(req, res, (err, ctx) => sendError(req, res, err, log, "", ctx.json));
  };
}

const CONNECT_REFUSAL =
  "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n" +
  "Content-Length: 19\r\nConnection: close\r\n\r\nMethod Not Allowed\n";

/** Create the listener (HTTP or HTTPS) with the configured timeouts; not yet listening. */
export function createListener(config: HttpConfig, app: RequestListener): Server {
  const tls = config.tls;
  // Node checks the request and header deadlines only this often (default 30 s), so without it
  // a client trickling bytes could hold a connection far longer than the read timeout.
  const timing = { connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(config.readTimeout / 4) || 1000)) };
  const server: Server =
    tls.cert !== undefined && tls.cert !== ""
      ? (createHttpsServer(
          { ...timing, cert: readFileSync(tls.cert), key: readFileSync(tls.key ?? ""), minVersion: "TLSv1.2" },
          app,
        ) as unknown as Server)
      : createHttpServer(timing, app);
  server.requestTimeout = config.readTimeout;
  server.headersTimeout = Math.min(config.readTimeout, 60_000);
  // Idle keep-alive connections are closed after the read timeout, as the Go server did.
  server.keepAliveTimeout = config.readTimeout;
  server.timeout = config.readTimeout + config.writeTimeout;
  // Node hands CONNECT to this event instead of the request handler, and without a listener closes
  // the socket unanswered. The socket is no longer parsed as HTTP afterwards, so it is closed.
  server.on("connect", (_req: IncomingMessage, socket: Duplex) => {
    socket.on("error", () => socket.destroy());
    socket.end(CONNECT_REFUSAL);
  });
  return server;
}
