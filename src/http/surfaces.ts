/**
 * The operator-facing extras, metrics and console: served on the main listener, or each on a
 * listener of its own when its section names a port (Prometheus scraping a private interface).
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Config, HttpConfig, SideListener } from "../config/types.js";
import type { Logger } from "../log.js";
import { createListener, createSideApp } from "./app.js";
import { consoleRoutes, type ConsoleOptions } from "./console/pages.js";
import { metricsRoute, type Metrics } from "./metrics.js";
import type { Route } from "./router.js";

export interface Surface {
  /** For log lines: "metrics", "console". */
  readonly name: string;
  readonly listener: SideListener;
  readonly routes: readonly Route[];
  /** Path shown in the log line. */
  readonly path: string;
}

export class Surfaces {
  private readonly servers: Server[] = [];
  private readonly surfaces: readonly Surface[];
  private readonly http: HttpConfig;
  private readonly log: Logger;

  constructor(surfaces: readonly Surface[], http: HttpConfig, log: Logger) {
    this.surfaces = surfaces;
    this.http = http;
    this.log = log;
  }

  /** Routes of the surfaces that share the main listener. */
  get mainRoutes(): Route[] {
    return this.surfaces.filter((s) => s.listener.port === undefined).flatMap((s) => s.routes);
  }

  /** Start the surfaces' own listeners (plain HTTP, the main listener's timeouts). */
  async listen(): Promise<void> {
    for (const s of this.surfaces) {
      const port = s.listener.port;
      if (port === undefined) continue;
      const server = createListener({ ...this.http, tls: {} }, createSideApp(s.routes, this.log));
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, s.listener.host === "" ? undefined : s.listener.host, () => {
          server.off("error", reject);
          resolve();
        });
      }).catch((err: Error) => {
        throw new Error(`error listening for the ${s.name} on ${s.listener.host}:${port}: ${err.message}`);
      });
      this.servers.push(server);
      this.log.info(`${s.name} listening on port ${(server.address() as AddressInfo).port}, ${s.path}`);
    }
  }

  /** Ports of the own listeners, by surface name (port 0 in the config picks one). */
  portOf(name: string): number | undefined {
    const i = this.surfaces.filter((s) => s.listener.port !== undefined).findIndex((s) => s.name === name);
    const server = i < 0 ? undefined : this.servers[i];
    return server ? (server.address() as AddressInfo).port : undefined;
  }

  async close(): Promise<void> {
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
  }
}

/** The metrics endpoint and the console, as configured. */
export function operatorSurfaces(
  config: Config,
  log: Logger,
  metrics: Metrics | undefined,
  ui: Omit<ConsoleOptions, "config" | "natsServers">,
): Surface[] {
  const out: Surface[] = [];
  if (metrics) {
    const path = config.metrics.path;
    out.push({ name: "metrics", listener: config.metrics, path, routes: [{ path, methods: { GET: metricsRoute(metrics) } }] });
  }
  if (config.ui.enabled) {
    const c = config.ui;
    const authed = (c.user !== undefined && c.password !== undefined) || c.token !== undefined;
    const host = c.port === undefined ? config.http.host : c.host;
    if (!authed && !["localhost", "127.0.0.1", "::1"].includes(host)) {
      log.warn("the console answers loopback clients only: set ui.user and ui.password, or ui.token, to open it to others");
    }
    out.push({ name: "console", listener: c, path: "/ui/", routes: consoleRoutes({ ...ui, config: c, natsServers: config.nats.servers }) });
  }
  return out;
}
