/**
 * The HTTP application: route table, the operator/help/health endpoints, and the node:http
 * listener with the configured timeouts, body limit and optional TLS.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { readFileSync } from "node:fs";
import type { AccountRegistry } from "../accounts.js";
import type { HttpConfig } from "../config/types.js";
import type { Logger } from "../log.js";
import type { Notifier } from "../nats/notifier.js";
import { accountRoutes } from "./accounts.js";
import { HELP_TEXT } from "./help.js";
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
  readonly now?: () => number;
}

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

export function createApp(opts: HttpAppOptions): RequestListener {
  const { log } = opts;
  const accounts = accountRoutes({
    registry: opts.registry,
    notifier: opts.notifier,
    maxBodyBytes: opts.config.maxBodyBytes,
    now: opts.now ?? Date.now,
  });

  const routes: Route[] = [
    { path: "/jwt/v1/accounts", methods: { GET: accounts.probe, DELETE: accounts.deleteAccounts }, json: true },
    { path: "/jwt/v1/accounts/", methods: { GET: accounts.probe, DELETE: accounts.deleteAccounts }, json: true },
    { path: "/jwt/v1/accounts/:key", methods: { GET: accounts.getAccount, POST: accounts.postAccount } },
    { path: "/jwt/v1/help", methods: { GET: (_q, res) => sendText(res, 200, HELP_TEXT) } },
    {
      path: "/healthz",
      methods: {
        GET: (_q, res) => send(res, 200, { "Content-Type": "application/json" }, JSON.stringify(opts.health())),
      },
    },
  ];
  if (opts.operatorJwt() !== undefined) {
    const operator = (_q: IncomingMessage, res: ServerResponse, ctx: { flag(n: string): boolean }): void => {
      const jwt = opts.operatorJwt() ?? "";
      send(res, 200, { "Content-Type": ctx.flag("text") ? "text/plain" : "application/jwt" }, jwt);
    };
    routes.push({ path: "/jwt/v1/operator", methods: { GET: operator } });
  }
  const router = new Router(routes);

  return function handleRequest(req, res) {
    if (log.traceEnabled) log.trace(`${req.socket.remoteAddress}: ${req.method} ${req.url}`);
    router.handle(req, res, (err, ctx) => sendError(req, res, err, log, ctx.params["key"] ?? "", ctx.json));
  };
}

/** Create the listener (HTTP or HTTPS) with the configured timeouts; not yet listening. */
export function createListener(config: HttpConfig, app: RequestListener): Server {
  const tls = config.tls;
  const server: Server =
    tls.cert !== undefined && tls.cert !== ""
      ? (createHttpsServer(
          { cert: readFileSync(tls.cert), key: readFileSync(tls.key ?? ""), minVersion: "TLSv1.2" },
          app,
        ) as unknown as Server)
      : createHttpServer(app);
  server.requestTimeout = config.readTimeout;
  server.headersTimeout = Math.min(config.readTimeout, 60_000);
  // Idle keep-alive connections are closed after the read timeout, as the Go server did.
  server.keepAliveTimeout = config.readTimeout;
  server.timeout = config.readTimeout + config.writeTimeout;
  return server;
}
