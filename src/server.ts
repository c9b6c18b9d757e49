/**
 * Composition root: builds the store, registry, NATS link, notifier and HTTP listener from a
 * Config, in the startup order and with the log lines of the user's documentation.
 */
import { readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { AccountRegistry } from "./accounts.js";
import type { Config } from "./config/types.js";
import { isAccountServerError } from "./errors.js";
import { createApp, createListener } from "./http/app.js";
import { decodeAccountJwt, decodeOperatorJwt, extractJwt } from "./jwt/decode.js";
import { Trust } from "./jwt/trust.js";
import type { Logger } from "./log.js";
import { NatsLink } from "./nats/connection.js";
import { Notifier } from "./nats/notifier.js";
import { DirStore } from "./store/dir.js";
import { MemoryStore } from "./store/memory.js";
import type { JwtStore } from "./store/types.js";
import { VERSION } from "./version.js";

/** A problem that prevents the server from starting; the CLI prints it and exits 1. */
export class StartupError extends Error {
  override readonly name = "StartupError";
}

export interface ServerOptions {
  readonly config: Config;
  readonly log: Logger;
  /** Wall clock in milliseconds. */
  readonly now?: () => number;
}

interface TrustFiles {
  readonly trust: Trust;
  readonly operatorJwt: string | undefined;
  readonly systemAccountJwt: string | undefined;
}

const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** `Fri May 31 18:00:26 CDT 2019`, the Unix `date` format the Go server logged. */
export function unixDate(d: Date): string {
  const tz =
    new Intl.DateTimeFormat("en-US", { timeZoneName: "short" })
      .formatToParts(d)
      .find((p) => p.type === "timeZoneName")?.value ?? "UTC";
  const pad = (n: number): string => String(n).padStart(2, "0");
  return (
    `${WEEKDAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, " ")} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${tz} ${d.getFullYear()}`
  );
}

async function readJwtFile(path: string, what: string): Promise<string> {
  try {
    return extractJwt(await readFile(path, "utf8"));
  } catch (err) {
    throw new StartupError(`error reading ${what} from ${path}: ${(err as Error).message}`);
  }
}

/** Read and check the operator and system account JWT files. */
async function loadTrust(config: Config, log: Logger): Promise<TrustFiles> {
  let operator;
  let operatorJwt: string | undefined;
  if (config.operatorJwtPath) {
    log.info(`loading operator from ${config.operatorJwtPath}`);
    operatorJwt = await readJwtFile(config.operatorJwtPath, "operator JWT");
    try {
      operator = decodeOperatorJwt(operatorJwt);
    } catch (err) {
      throw new StartupError(`error decoding operator JWT ${config.operatorJwtPath}: ${(err as Error).message}`);
    }
  }
  const trust = new Trust(operator);
  let systemAccountJwt: string | undefined;
  if (config.systemAccountJwtPath) {
    log.info(`loading system account from ${config.systemAccountJwtPath}`);
    systemAccountJwt = await readJwtFile(config.systemAccountJwtPath, "system account JWT");
    let sub: string;
    try {
      sub = decodeAccountJwt(systemAccountJwt).sub;
    } catch (err) {
      throw new StartupError(
        `error decoding system account JWT ${config.systemAccountJwtPath}: ${(err as Error).message}`,
      );
    }
    const declared = trust.systemAccount;
    if (declared !== undefined && declared !== sub) {
      throw new StartupError(
        `operator declares system account ${declared} but ${config.systemAccountJwtPath} holds ${sub}`,
      );
    }
  }
  if (!operator) log.warn("no operator configured: uploads will be refused as untrusted");
  return { trust, operatorJwt, systemAccountJwt };
}

function createStore(config: Config, log: Logger): JwtStore {
  const s = config.store;
  if (s.dir === undefined) return new MemoryStore();
  return new DirStore({ dir: s.dir, shard: s.shard, readonly: s.readonly, log });
}

export class AccountServer {
  private stopped = false;
  private operatorJwt: string | undefined;

  readonly config: Config;
  readonly registry: AccountRegistry;
  readonly notifier: Notifier;
  private readonly log: Logger;
  private readonly link: NatsLink | undefined;
  private readonly http: Server;

  private constructor(parts: {
    config: Config;
    log: Logger;
    registry: AccountRegistry;
    notifier: Notifier;
    link: NatsLink | undefined;
    http: Server;
    operatorJwt: string | undefined;
  }) {
    this.config = parts.config;
    this.log = parts.log;
    this.registry = parts.registry;
    this.notifier = parts.notifier;
    this.link = parts.link;
    this.http = parts.http;
    this.operatorJwt = parts.operatorJwt;
  }

  /** Start everything; on failure whatever was started is stopped again. */
  static async start(opts: ServerOptions): Promise<AccountServer> {
    const { config, log } = opts;
    const now = opts.now ?? Date.now;
    log.info(`starting NATS Account server, version ${VERSION}`);
    log.info(`server time is ${unixDate(new Date(now()))}`);

    const files = await loadTrust(config, log);
    const store = createStore(config, log);
    log.info(
      store.kind === "memory"
        ? "creating a memory store (account JWTs are not kept across restarts)"
        : `creating a ${store.writable ? "" : "read-only "}store at ${store.description}`,
    );
    try {
      await store.open();
    } catch (err) {
      throw new StartupError(`error opening store ${store.description}: ${(err as Error).message}`);
    }
    log.debug(`store holds ${store.size} account JWT(s)`);

    const registry = new AccountRegistry({
      store,
      trust: files.trust,
      log,
      now,
      allowDelete: config.store.allowDelete,
      ...(files.systemAccountJwt !== undefined ? { systemAccountJwt: files.systemAccountJwt } : {}),
    });
    registry.onChange((c) => {
      if (c.entry) log.info(`updated JWT for account - ${c.key.slice(0, 12)} - ${c.jti}`);
      else log.info(`${c.deleted ? "deleted" : "removed"} JWT for account - ${c.key.slice(0, 12)}`);
    });

    const link = config.nats.servers.length > 0 ? new NatsLink({ config: config.nats, log }) : undefined;
    const notifier = new Notifier(registry, link, log);

    let http: Server | undefined;
    let server: AccountServer | undefined;
    try {
      if (link) await link.start();
      else log.info("NATS is not configured, nats-servers will not be notified of changes");

      const app = createApp({
        registry,
        notifier,
        log,
        config: config.http,
        now,
        operatorJwt: () => server?.operatorJwt ?? files.operatorJwt,
        health: () => server?.health() ?? {},
      });
      try {
        http = createListener(config.http, app);
      } catch (err) {
        throw new StartupError(`error loading X509 certificate/key pair: ${(err as Error).message}`);
      }
      const listening = http;
      await new Promise<void>((resolve, reject) => {
        listening.once("error", reject);
        listening.listen(config.http.port, config.http.host === "" ? undefined : config.http.host, () => {
          listening.off("error", reject);
          resolve();
        });
      }).catch((err: Error) => {
        throw new StartupError(`error listening on ${config.http.host}:${config.http.port}: ${err.message}`);
      });
      server = new AccountServer({
        config,
        log,
        registry,
        notifier,
        link,
        http: listening,
        operatorJwt: files.operatorJwt,
      });
    } catch (err) {
      await link?.stop();
      http?.close();
      await store.close();
      throw err;
    }

    store.watch((change) => {
      const done =
        change.jwt === undefined
          ? registry.remove(change.key, "file")
          : registry.accept(change.jwt, { source: "file", key: change.key });
      done.catch((err: unknown) => {
        const why = isAccountServerError(err) ? `${err.phrase}${err.reason ? ` - ${err.reason}` : ""}` : String(err);
        log.error(`ignoring changed file for ${change.key.slice(0, 12)}: ${why}`);
      });
    });

    const proto = config.http.tls.cert ? "https" : "http";
    log.info(`${proto} listening on port ${server.port}`);
    log.info("nats-account-server is running");
    log.info("configure the nats-server with:");
    log.info(`resolver: URL(${server.resolverUrl})`);
    return server;
  }

  get port(): number {
    return (this.http.address() as AddressInfo).port;
  }

  /** The value to put in nats-server's `resolver: URL(...)`. */
  get resolverUrl(): string {
    const proto = this.config.http.tls.cert ? "https" : "http";
    let host = this.config.http.host === "" ? "127.0.0.1" : this.config.http.host;
    if (host.includes(":")) host = `[${host}]`;
    return `${proto}://${host}:${this.port}/jwt/v1/accounts/`;
  }

  health(): Record<string, unknown> {
    const store = this.registry.store;
    return {
      status: "ok",
      version: VERSION,
      store: { type: store.kind, location: store.description, writable: store.writable, accounts: store.size },
      nats: {
        configured: this.link !== undefined,
        connected: this.link?.connection !== undefined,
        pending_notifications: this.notifier.backlog,
      },
    };
  }

  /**
   * Re-read the operator and system account JWTs (SIGHUP). Settings that need new sockets or a
   * new store (http, nats, store sections) are reported as needing a restart.
   */
  async reload(config: Config): Promise<void> {
    const files = await loadTrust(config, this.log);
    this.registry.setTrust(files.trust);
    this.registry.setSystemAccountJwt(files.systemAccountJwt);
    this.operatorJwt = files.operatorJwt;
    for (const section of ["http", "nats", "store"] as const) {
      if (JSON.stringify(config[section]) !== JSON.stringify(this.config[section])) {
        this.log.warn(`changes to the ${section} section take effect after a restart`);
      }
    }
    this.log.info("configuration reloaded");
  }

  /** Stop accepting requests, let in-flight ones finish (up to `graceMs`), flush NATS, close. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.log.info("stopping account server");
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeIdleConnections();
    const timer = setTimeout(() => this.http.closeAllConnections(), graceMs);
    await closed;
    clearTimeout(timer);
    this.log.info("http server stopped");
    await this.link?.stop();
    await this.registry.store.close();
    this.log.info("account server stopped");
  }
}
