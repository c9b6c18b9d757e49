/**
 * The NATS connection's lifecycle: first attempt during startup, a retry every `reconnectwait`
 * while no server answers, reconnects afterwards, and never taking HTTP down with it.
 */
import { readFile } from "node:fs/promises";
import {
  connect as natsConnect,
  credsAuthenticator,
  type ConnectionOptions,
  type NatsConnection,
} from "@nats-io/transport-node";
import type { NatsConfig } from "../config/types.js";
import { errorText } from "../errors.js";
import type { Logger } from "../log.js";

export interface NatsLinkOptions {
  readonly config: NatsConfig;
  readonly log: Logger;
  /** What the connection is for, as the log lines say it ("notifications"). */
  readonly purpose?: string;
  /** The client connection name nats-server shows (default `nats-account-server`). */
  readonly clientName?: string;
  /** Injectable for tests; defaults to the real client. */
  readonly connect?: (opts: ConnectionOptions) => Promise<NatsConnection>;
}

type ConnectedListener = (nc: NatsConnection) => void;

/** Turn a client error into the phrase operators know from the Go server. */
function describeConnectError(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string } };
  const code = e.cause?.code;
  if (code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "EHOSTUNREACH" || e.message === "connection refused") {
    return "nats: no servers available for connection";
  }
  return `nats: ${e.message ?? String(err)}`;
}

export class NatsLink {
  private nc: NatsConnection | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly listeners: ConnectedListener[] = [];
  private readonly downListeners: Array<() => void> = [];
  private readonly connectFn: (opts: ConnectionOptions) => Promise<NatsConnection>;

  private readonly opts: NatsLinkOptions;

  private readonly purpose: string;

  constructor(opts: NatsLinkOptions) {
    this.opts = opts;
    this.purpose = opts.purpose ?? "notifications";
    this.connectFn = opts.connect ?? natsConnect;
  }

  /** The live connection, or undefined while disconnected or still trying. */
  get connection(): NatsConnection | undefined {
    return this.nc && !this.nc.isClosed() ? this.nc : undefined;
  }

  /** Called on every (re)established connection, including the first. */
  onConnected(l: ConnectedListener): void {
    this.listeners.push(l);
  }

  /**
   * Called when the connection drops (it may come back: see onConnected). The client discards
   * what is published until then, so publishers must hold their messages themselves.
   */
  onDisconnected(l: () => void): void {
    this.downListeners.push(l);
  }

  private announceDown(): void {
    for (const l of this.downListeners) {
      try {
        l();
      } catch (err) {
        this.opts.log.error(`NATS disconnect listener failed: ${errorText(err)}`);
      }
    }
  }

  /** Make the first attempt (awaited, so its outcome is logged in startup order) and keep trying. */
  async start(): Promise<void> {
    await this.attempt();
  }

  private async attempt(): Promise<void> {
    const { log, config } = this.opts;
    if (this.stopped) return;
    log.info(`connecting to NATS for ${this.purpose}`);
    let nc: NatsConnection;
    try {
      nc = await this.connectFn(await this.clientOptions());
    } catch (err) {
      log.error(`failed to connect to NATS, ${describeConnectError(err)}`);
      log.error(`will try to connect again in ${config.reconnectWait} milliseconds`);
      this.schedule();
      return;
    }
    if (this.stopped) {
      await nc.close().catch(() => {});
      return;
    }
    this.nc = nc;
    log.info(`connected to NATS at ${nc.getServer()} for ${this.purpose}`);
    void this.watchStatus(nc);
    this.announce(nc);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.attempt();
    }, this.opts.config.reconnectWait);
  }

  private announce(nc: NatsConnection): void {
    for (const l of this.listeners) {
      try {
        l(nc);
      } catch (err) {
        this.opts.log.error(`NATS connect listener failed: ${errorText(err)}`);
      }
    }
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    const { log } = this.opts;
    void nc.closed().then((err) => {
      if (this.stopped || this.nc !== nc) return;
      this.nc = undefined;
      this.announceDown();
      // The Go server exited here; we keep serving HTTP and start over.
      log.error(`nats connection closed${err ? `: ${err.message}` : ""}, will reconnect`);
      this.schedule();
    });
    for await (const s of nc.status()) {
      if (this.stopped) break;
      switch (s.type) {
        case "disconnect":
          log.warn("nats disconnected");
          this.announceDown();
          break;
        case "reconnect":
          log.warn("nats reconnected");
          this.announce(nc);
          break;
        case "error":
          log.warn(`nats error ${s.error.message}`);
          break;
        default:
          break;
      }
    }
  }

  private clientOptions(): Promise<ConnectionOptions> {
    return natsClientOptions(this.opts.config, this.opts.clientName);
  }

  /** Flush what was published and close; idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const nc = this.nc;
    this.nc = undefined;
    if (nc && !nc.isClosed()) {
      await nc.drain().catch(() => nc.close());
      this.opts.log.info("disconnected from NATS");
    }
  }
}

/** Client options for `config`; the credentials file is read on every call so a rotated one is used. */
export async function natsClientOptions(c: NatsConfig, name = "nats-account-server"): Promise<ConnectionOptions> {
  const o: ConnectionOptions = {
    servers: [...c.servers],
    name,
    noEcho: true,
    timeout: c.connectTimeout,
    reconnectTimeWait: c.reconnectWait,
    maxReconnectAttempts: c.maxReconnects,
  };
  if (c.userCredentials) {
    o.authenticator = credsAuthenticator(await readFile(c.userCredentials));
  }
  if (c.tls.root || c.tls.cert || c.tls.key) {
    o.tls = {
      ...(c.tls.root ? { caFile: c.tls.root } : {}),
      ...(c.tls.cert ? { certFile: c.tls.cert } : {}),
      ...(c.tls.key ? { keyFile: c.tls.key } : {}),
    };
  }
  return o;
}
