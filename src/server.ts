/**
 * Composition root: builds the store, registry, NATS link, notifier and HTTP listener from a
 * Config, in the startup order and with the log lines of the user's documentation.
 */
import { statSync } from "node:fs";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { AccountRegistry } from "./accounts.js";
import { ActivationRegistry } from "./activations.js";
import type { Config } from "./config/types.js";
import { errorText, isAccountServerError, StartupError } from "./errors.js";
import { createApp, createListener } from "./http/app.js";
import { Drain } from "./http/drain.js";
import { CheckPool, isValidLiteralSubject, loadTrustFiles } from "./jwt/index.js";
import { limitRepeats, unixDate, type LimitedLogger, type Logger } from "./log.js";
import { NatsLink } from "./nats/connection.js";
import { createSignRequests, Notifier, openOutbox, PackSync, Responder } from "./nats/index.js";
import { ExpirySweeper } from "./expiry.js";
import { Replica } from "./replica.js";
import {
  createActivationStore,
  createHistory,
  createStore,
  HistoryLog,
  nscOperatorJwtPath,
} from "./store/index.js";
import { VERSION } from "./version.js";
import { Metrics } from "./http/metrics.js";
import { operatorSurfaces, Surfaces } from "./http/surfaces.js";

export interface ServerOptions {
  readonly config: Config;
  readonly log: Logger;
  /** Wall clock in milliseconds. */
  readonly now?: () => number;
}

/**
 * Settings implied by others: an nsc folder supplies the operator JWT when none is configured.
 * Applied at start and on every reload. Also refuses combinations that cannot work.
 */
function effectiveConfig(config: Config): Config {
  if (!config.metrics.path.startsWith("/")) {
    throw new StartupError(`metrics.path must start with "/", got ${JSON.stringify(config.metrics.path)}`);
  }
  const sign = config.signRequestSubject;
  if (sign !== undefined && !isValidLiteralSubject(sign)) {
    throw new StartupError(`signrequestsubject ${JSON.stringify(sign)} is not a valid NATS subject without wildcards`);
  }
  const nsc = config.store.nsc;
  if (nsc !== undefined && config.primary !== undefined) {
    throw new StartupError(
      "a replica (primary) needs a writable store: it cannot serve an nsc folder (store.nsc, -nsc)",
    );
  }
  if (config.primary !== undefined && config.store.readonly) {
    throw new StartupError(
      "a replica (primary) needs a writable store: it cannot serve a read-only directory (store.readonly, -ro)",
    );
  }
  if (nsc === undefined) return config;
  if (!statSync(nsc, { throwIfNoEntry: false })?.isDirectory()) {
    throw new StartupError(
      `nsc folder ${nsc} is not a directory: -nsc and store.nsc take an nsc operator folder ` +
        "(e.g. ~/.local/share/nats/nsc/stores/<operator>)",
    );
  }
  if (config.operatorJwtPath !== undefined) return config;
  return { ...config, operatorJwtPath: nscOperatorJwtPath(nsc) };
}

/** GET misses (accounts, activations): 10 lines per kind in full per 10 s, the rest counted (see limitRepeats). */
export const MISS_LOG_LIMIT = { codes: ["NOT_FOUND", "ACTIVATION_NOT_FOUND"], intervalMs: 10_000, burst: 10 } as const;

export class AccountServer {
  private stopped = false;
  private reloads = 0;
  private operatorJwt: string | undefined;

  readonly config: Config;
  readonly registry: AccountRegistry;
  readonly notifier: Notifier;
  private readonly log: LimitedLogger;
  private readonly link: NatsLink | undefined;
  private readonly http: Server;
  private readonly drain: Drain;
  private readonly expiry: ExpirySweeper;
  private readonly replica: Replica | undefined;
  /** Peer of the nats-servers' resolvers on the system account (with NATS only). */
  readonly responder: Responder | undefined;
  /** Periodic pack pull from full nats-servers and other account servers (with NATS only). */
  readonly packSync: PackSync | undefined;
  /** The state-directory history of a directory or memory store (closed after the store). */
  private readonly historyLog: HistoryLog | undefined;
  /** Validation workers for large JWTs (closed after the HTTP server and NATS). */
  private readonly checks: CheckPool;
  /** The metrics and console (with their own listeners when configured so). */
  readonly surfaces: Surfaces;
  readonly metrics: Metrics | undefined;

  private constructor(parts: {
    config: Config;
    log: LimitedLogger;
    registry: AccountRegistry;
    notifier: Notifier;
    link: NatsLink | undefined;
    http: Server;
    drain: Drain;
    operatorJwt: string | undefined;
    expiry: ExpirySweeper;
    replica: Replica | undefined;
    responder: Responder | undefined;
    packSync: PackSync | undefined;
    historyLog: HistoryLog | undefined;
    checks: CheckPool;
    surfaces: Surfaces;
    metrics: Metrics | undefined;
  }) {
    this.config = parts.config;
    this.log = parts.log;
    this.registry = parts.registry;
    this.notifier = parts.notifier;
    this.link = parts.link;
    this.http = parts.http;
    this.drain = parts.drain;
    this.operatorJwt = parts.operatorJwt;
    this.expiry = parts.expiry;
    this.replica = parts.replica;
    this.responder = parts.responder;
    this.packSync = parts.packSync;
    this.historyLog = parts.historyLog;
    this.checks = parts.checks;
    this.surfaces = parts.surfaces;
    this.metrics = parts.metrics;
  }

  /** Start everything; on failure whatever was started is closed again, newest first. */
  static async start(opts: ServerOptions): Promise<AccountServer> {
    const opened: Array<() => unknown> = [];
    try {
      return await AccountServer.compose(opts, (close) => opened.push(close));
    } catch (err) {
      for (const close of opened.reverse()) await Promise.resolve(close()).catch(() => {});
      throw err;
    }
  }

  /** The startup steps in order; `opened` hears of each thing that must be closed on a failure. */
  private static async compose(opts: ServerOptions, opened: (close: () => unknown) => void): Promise<AccountServer> {
    const config = effectiveConfig(opts.config);
    const now = opts.now ?? Date.now;
    const log = limitRepeats(opts.log, { ...MISS_LOG_LIMIT, now });
    log.info(`starting NATS Account server, version ${VERSION}`);
    log.info(`server time is ${unixDate(new Date(now()))}`);

    const files = await loadTrustFiles(config, log);
    const store = createStore(config, log);
    log.info(
      store.kind === "memory"
        ? "creating a memory store (account JWTs are not kept across restarts)"
        : `creating a ${store.writable ? "" : "read-only "}store at ${store.description}`,
    );
    try {
      await store.open();
    } catch (err) {
      throw new StartupError(`error opening store ${store.description}: ${errorText(err)}`);
    }
    opened(() => store.close());
    log.debug(`store holds ${store.size} account JWT(s)`);

    const checks = new CheckPool();
    opened(() => checks.close());
    const registry = new AccountRegistry({
      store,
      trust: files.trust,
      log,
      now,
      allowDelete: config.store.allowDelete,
      maxClockSkewMs: config.maxClockSkew,
      cacheBytes: config.store.cache,
      checks,
      ...(files.systemAccountJwt !== undefined ? { systemAccountJwt: files.systemAccountJwt } : {}),
    });
    const history = createHistory(config, store, log, now);
    registry.setHistory(history);
    if (history instanceof HistoryLog) {
      await history.open();
      opened(() => history.close());
      // Versions are as durable as the changes themselves once the journal is dropped.
      store.journaled?.beforeCheckpoint(() => history.sync());
      for (const key of store.journaled?.recovered ?? []) {
        const entry = store.get(key);
        await history.recordRecovered(key, entry && (await store.read(entry)), store.isDeleted(key));
      }
    }

    const activationStore = createActivationStore(config.store, store, log);
    try {
      await activationStore.open();
    } catch (err) {
      throw new StartupError(`error opening activation store ${activationStore.description}: ${errorText(err)}`);
    }
    log.debug(`activation tokens: ${activationStore.size} in ${activationStore.description}`);
    const activations = new ActivationRegistry({
      store: activationStore,
      accounts: registry,
      log,
      now,
      maxClockSkewMs: config.maxClockSkew,
    });

    const expiry = new ExpirySweeper({ registry, log, intervalMs: config.store.cleanupInterval, now });
    let replica: Replica | undefined;
    if (config.primary !== undefined) {
      try {
        replica = new Replica({
          primary: config.primary,
          registry,
          log,
          timeoutMs: config.replicationTimeout,
          maxPack: config.maxReplicationPack,
          intervalMs: config.replicationInterval,
        });
      } catch (err) {
        throw new StartupError(errorText(err));
      }
      const started = replica;
      opened(() => started.stop());
    }

    const link = config.nats.servers.length > 0 ? new NatsLink({ config: config.nats, log }) : undefined;
    if (link) opened(() => link.stop());
    const outbox = await openOutbox(config, store, link, log);
    // Drops what an interrupted run journaled, now that the outbox has taken its keys.
    await store.journaled?.checkpoint();
    const notifier = new Notifier(registry, link, log, outbox);
    // Both subscribe on every new connection, so they exist before the link starts.
    let metrics: Metrics | undefined;
    const responder = link
      ? new Responder({
          registry,
          link,
          notifier,
          log,
          now,
          lookupTimeoutMs: config.signRequestTimeout,
          lookupLimits: { maxOpen: config.nats.maxLookups, missTtlMs: config.nats.lookupMissTtl, missKeys: config.nats.lookupMissKeys },
          name: config.nats.name,
          signing: config.signRequestSubject !== undefined,
          onRefused: (code) => metrics?.refusal("nats", code),
          group: store.group,
        })
      : undefined;
    const packSync =
      link && config.nats.syncInterval > 0
        ? new PackSync({ registry, link, notifier, log, now, intervalMs: config.nats.syncInterval })
        : undefined;
    const signing = createSignRequests(config, registry, link, log);
    if (config.metrics.enabled) {
      const m = new Metrics({ registry, notifier, link, packSync });
      opened(() => m.close());
      metrics = m;
    }
    // The server object exists only once listening; routes made before ask it lazily.
    let server: AccountServer | undefined;
    const surfaces = new Surfaces(
      operatorSurfaces(config, log, metrics, {
        registry,
        notifier,
        history,
        operatorJwt: () => server?.operatorJwt ?? files.operatorJwt,
        connection: () => link?.connection,
        now,
      }),
      config.http,
      log,
    );
    // The change feeds' listeners, all here, in the order each change reaches them. (The expiry
    // index and the console's catalog subscribe when they start; metrics count on their own.)
    registry.onChange((c) => {
      const fields = { account: c.key, source: c.source };
      if (c.entry) log.info(`updated JWT for account - ${c.key.slice(0, 12)} - ${c.jti}`, { ...fields, jti: c.jti });
      else log.info(`${c.deleted ? "deleted" : "removed"} JWT for account - ${c.key.slice(0, 12)}`, fields);
    });
    if (history instanceof HistoryLog) registry.onChange((c) => history.record(c));
    registry.onChange((c) => notifier.accountChanged(c));
    if (packSync) registry.onChange(() => packSync.accountChanged());
    if (responder) registry.onChange((c) => responder.lookups.accountChanged(c.key));
    activations.onChange((c) =>
      log.info(`updated activation JWT - ${c.issuer.slice(0, 12)}-${c.subject.slice(0, 12)} - ${JSON.stringify(c.importSubject)}`),
    );
    activations.onChange((c) => notifier.notifyActivation(c.issuer, c.hash, c.entry.jwt));
    // A peer that gave us JWTs we lacked may answer lookups too: misses wait for it from now on.
    packSync?.onResult((r) => {
      if (r.outcome === "merged" && r.changed > 0) responder?.lookups.answered();
    });
    // Before NATS and HTTP, as the Go server did: a replica starts out with the primary's JWTs.
    await replica?.importAtStart();

    const drain = new Drain(log);
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
      activations,
      history,
      maxReplicationPack: config.maxReplicationPack,
      ...(replica ? { forward: replica.forward.bind(replica) } : {}),
      ...(responder ? { lookup: (key: string) => responder.lookup(key) } : {}),
      ...(signing ? { signing } : {}),
      ...(metrics ? { metrics } : {}),
      extraRoutes: surfaces.mainRoutes,
    });
    let listening: Server;
    try {
      listening = createListener(config.http, drain.wrap(app));
    } catch (err) {
      throw new StartupError(`error loading X509 certificate/key pair: ${errorText(err)}`);
    }
    opened(() => listening.close());
    await new Promise<void>((resolve, reject) => {
      listening.once("error", reject);
      listening.listen(config.http.port, config.http.host === "" ? undefined : config.http.host, () => {
        listening.off("error", reject);
        resolve();
      });
    }).catch((err: Error) => {
      throw new StartupError(`error listening on ${config.http.host}:${config.http.port}: ${err.message}`);
    });
    opened(() => surfaces.close());
    await surfaces.listen().catch((err: Error) => {
      throw new StartupError(err.message);
    });
    server = new AccountServer({
      config,
      log,
      registry,
      notifier,
      link,
      http: listening,
      drain,
      operatorJwt: files.operatorJwt,
      expiry,
      replica,
      responder,
      packSync,
      historyLog: history instanceof HistoryLog ? history : undefined,
      checks,
      surfaces,
      metrics,
    });

    store.watch((change) => {
      const source = store.kind !== "kv" ? "file" : change.own ? "own" : "cluster";
      registry.applyExternal(change, source).catch((err: unknown) => {
        const why = isAccountServerError(err) ? `${err.phrase}${err.reason ? ` - ${err.reason}` : ""}` : String(err);
        const what = store.kind === "kv" ? "change from the bucket" : "changed file";
        const source = store.kind === "kv" ? "cluster" : "file";
        const code = isAccountServerError(err) ? err.code : "INTERNAL";
        log.error(`ignoring ${what} for ${change.key.slice(0, 12)}: ${why}`, { account: change.key, source, code });
        metrics?.refusal(source, code);
      });
    });

    expiry.start();
    await expiry.sweep();
    replica?.start();
    packSync?.start();

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
      store: {
        type: store.kind,
        location: store.description,
        writable: store.writable,
        ready: store.ready !== false,
        accounts: store.size,
      },
      nats: {
        configured: this.link !== undefined,
        // The client object survives a disconnect while it reconnects; the notifier knows better.
        connected: this.notifier.connected,
        unconfirmed_notifications: this.notifier.unconfirmed,
        pending_notifications: this.notifier.backlog,
        notifications_resent: this.notifier.resent,
        ...(this.packSync ? { pack_sync_interval_ms: this.packSync.currentIntervalMs } : {}),
        ...(this.responder
          ? {
              lookups: {
                wait: this.responder.lookups.mode,
                asked: this.responder.lookups.stats.asked,
                found: this.responder.lookups.stats.found,
                waited_out: this.responder.lookups.stats.waitedOut,
                skipped: this.responder.lookups.stats.skipped,
                ...this.responder.lookups.counts,
              },
            }
          : {}),
      },
      ...(this.replica ? { primary: this.replica.status() } : {}),
    };
  }

  /**
   * Re-read the operator and system account JWTs (SIGHUP). Settings that need new sockets or a
   * new store (http, nats, store sections) are reported as needing a restart.
   */
  async reload(next: Config): Promise<void> {
    const config = effectiveConfig(next);
    const generation = ++this.reloads;
    const files = await loadTrustFiles(config, this.log);
    // SIGHUPs in quick succession overlap; an earlier reload finishing last must not win.
    if (generation !== this.reloads) return;
    this.registry.setTrust(files.trust);
    this.registry.setSystemAccountJwt(files.systemAccountJwt);
    this.operatorJwt = files.operatorJwt;
    for (const section of ["http", "nats", "store", "signRequestSubject"] as const) {
      if (JSON.stringify(config[section]) !== JSON.stringify(this.config[section])) {
        const what = section === "signRequestSubject" ? "signrequestsubject" : `the ${section} section`;
        this.log.warn(`changes to ${what} take effect after a restart`);
      }
    }
    this.log.info("configuration reloaded");
  }

  /** Stop accepting requests, let in-flight ones finish (up to `graceMs`), flush NATS, close. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.log.info("stopping account server");
    this.drain.start();
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeIdleConnections();
    const timer = setTimeout(() => this.http.closeAllConnections(), graceMs);
    await closed;
    clearTimeout(timer);
    await this.surfaces.close();
    this.log.info("http server stopped");
    this.expiry.stop();
    await this.replica?.stop();
    await this.packSync?.stop();
    await this.notifier.close();
    await this.link?.stop();
    await this.checks.close();
    await this.registry.store.close();
    await this.historyLog?.close();
    this.metrics?.close();
    this.log.flush();
    this.log.info("account server stopped");
  }
}
