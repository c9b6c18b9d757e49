/**
 * Prometheus metrics (prom-client, one private Registry per server): HTTP traffic, the store,
 * uploads by outcome, notifications, the NATS link, pack syncs and store journal timings; and
 * the scrape endpoint that serves them in the text exposition format.
 */
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { AccountRegistry, ChangeSource } from "../accounts.js";
import type { ErrorCode } from "../errors.js";
import type { NatsLink } from "../nats/connection.js";
import type { Notifier, PackSync } from "../nats/index.js";
import { STORE_TIMING_CHANNEL, type StoreTiming } from "../store/index.js";
import { send } from "./respond.js";
import type { Handler } from "./router.js";

const P = "nats_account_server_";

export interface MetricsSources {
  readonly registry: AccountRegistry;
  readonly notifier: Notifier;
  readonly link?: NatsLink | undefined;
  readonly packSync?: PackSync | undefined;
}

/** Where an upload came from: the registry's change sources plus the HTTP and NATS front doors. */
export type UploadSource = ChangeSource;

/** A gauge read from its source at every scrape. */
function gauge(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name: P + name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

/** A counter whose total another component keeps (read at every scrape). */
function total(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name: P + name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

export class Metrics {
  readonly registry = new Registry();
  private readonly requests: Counter<"route" | "method" | "status">;
  private readonly latency: Histogram<"route" | "method">;
  /** Bound once: an inc() with a labels object hashes it on every request. */
  private readonly lookupHits: { inc(): void };
  private readonly lookupMisses: { inc(): void };
  private readonly accepted: Counter<"source">;
  private readonly refused: Counter<"source" | "code">;
  private readonly reconnects: Counter;
  private readonly syncRounds: Counter<"outcome">;
  private readonly divergences: Counter;
  private readonly storeTiming: Histogram<"operation">;
  /** Label children by route, method and status: prom-client hashes label objects on every call. */
  private readonly requestChildren = new Map<string, { count: { inc(): void }; latency: { observe(v: number): void } }>();
  private hits = 0;
  private misses = 0;
  private readonly onTiming: (msg: unknown) => void;

  constructor(src: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    // prom-client names these gauges `_total`, which promtool rejects (a suffix for counters).
    for (const bad of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) {
      this.registry.removeSingleMetric(bad);
    }
    this.requests = new Counter({
      name: `${P}http_requests_total`,
      help: "HTTP requests answered, by route template, method and status",
      labelNames: ["route", "method", "status"],
      registers,
    });
    this.latency = new Histogram({
      name: `${P}http_request_duration_seconds`,
      help: "Time from a request's arrival to the end of its answer",
      labelNames: ["route", "method"],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    });
    const lookups = new Counter({
      name: `${P}jwt_lookups_total`,
      help: "Account JWT GETs: hit (served from memory) or miss (404)",
      labelNames: ["result"],
      registers,
    });
    this.lookupHits = lookups.labels("hit");
    this.lookupMisses = lookups.labels("miss");
    const self = this;
    gauge(this.registry, "jwt_lookup_hit_ratio", "Share of account JWT GETs answered with a JWT since start (0 before the first)", () => {
      const all = self.hits + self.misses;
      return all === 0 ? 0 : self.hits / all;
    });
    gauge(this.registry, "store_accounts", "Account JWTs held by the store", () => src.registry.store.size);
    gauge(this.registry, "store_ready", "1 when the store can answer (a KV bucket has loaded)", () =>
      src.registry.store.ready === false ? 0 : 1,
    );
    this.accepted = new Counter({
      name: `${P}uploads_accepted_total`,
      help: "Account JWT changes stored, by where they came from",
      labelNames: ["source"],
      registers,
    });
    this.refused = new Counter({
      name: `${P}uploads_refused_total`,
      help: "JWT uploads (accounts, activation tokens) refused, by where they came from and error code",
      labelNames: ["source", "code"],
      registers,
    });
    total(this.registry, "notifications_sent_total", "Account update notifications published to NATS", () => src.notifier.sentTotal);
    total(
      this.registry,
      "notifications_confirmed_total",
      "Account update notifications a nats-server confirmed (PING/PONG after the publish)",
      () => src.notifier.confirmedTotal,
    );
    gauge(this.registry, "notifications_unconfirmed", "Account changes no nats-server has confirmed yet (sent or not)", () => src.notifier.unconfirmed);
    gauge(this.registry, "notifications_pending", "Changes waiting for a NATS connection", () => src.notifier.backlog);
    gauge(this.registry, "nats_connected", "1 while the NATS connection is up (0 while reconnecting or without NATS)", () =>
      src.notifier.connected ? 1 : 0,
    );
    this.reconnects = new Counter({
      name: `${P}nats_reconnects_total`,
      help: "NATS connections re-established after the first",
      registers,
    });
    this.syncRounds = new Counter({
      name: `${P}sync_rounds_total`,
      help: "Pack syncs with the nats-servers, by outcome",
      labelNames: ["outcome"],
      registers,
    });
    this.divergences = new Counter({
      name: `${P}sync_divergences_total`,
      help: "Pack syncs that found the peers' accounts differ from ours",
      registers,
    });
    this.storeTiming = new Histogram({
      name: `${P}store_operation_duration_seconds`,
      help: "Directory store: journal commits (write + fdatasync of a batch) and checkpoints",
      labelNames: ["operation"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    });

    src.registry.onChange((c) => {
      if (c.entry) this.accepted.inc({ source: c.source });
    });
    let connections = 0;
    src.link?.onConnected(() => {
      if (connections++ > 0) this.reconnects.inc();
    });
    src.packSync?.onResult((r) => {
      this.syncRounds.inc({ outcome: r.outcome });
      if (r.outcome === "merged") {
        this.divergences.inc();
        for (const code of r.refused.values()) this.refused.inc({ source: "sync", code });
      }
    });
    const dir = src.registry.store.kind === "dir" ? src.registry.store.description : undefined;
    this.onTiming = (msg) => {
      const t = msg as StoreTiming;
      if (t.dir === dir) this.storeTiming.observe({ operation: t.operation }, t.seconds);
    };
    if (dir !== undefined) subscribe(STORE_TIMING_CHANNEL, this.onTiming);
  }

  /** One answered HTTP request; `route` is the route template (a bounded label set). */
  request(route: string, method: string, status: number, seconds: number): void {
    const id = `${route} ${method} ${status}`;
    let child = this.requestChildren.get(id);
    if (!child) {
      child = { count: this.requests.labels(route, method, String(status)), latency: this.latency.labels(route, method) };
      this.requestChildren.set(id, child);
    }
    child.count.inc();
    child.latency.observe(seconds);
    if (route === "/jwt/v1/accounts/:key" && (method === "GET" || method === "HEAD")) {
      if (status === 200 || status === 304) {
        this.hits++;
        this.lookupHits.inc();
      } else if (status === 404) {
        this.misses++;
        this.lookupMisses.inc();
      }
    }
  }

  /** An upload refused by one of the closed error codes. */
  refusal(source: UploadSource, code: ErrorCode): void {
    this.refused.inc({ source, code });
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }

  close(): void {
    unsubscribe(STORE_TIMING_CHANNEL, this.onTiming);
    this.registry.clear();
  }
}

export function metricsRoute(metrics: Metrics): Handler {
  return async function scrape(_req, res) {
    const { body, contentType } = await metrics.render();
    send(res, 200, { "Content-Type": contentType, "Cache-Control": "no-store" }, body);
  };
}
