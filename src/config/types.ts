/**
 * The server's typed settings and their defaults: the single shape that the config file,
 * the command-line flags and the code all agree on. Durations are milliseconds.
 */
import { resolve } from "node:path";

export interface TlsFiles {
  /** PEM certificate file. */
  readonly cert?: string;
  /** PEM private key file. */
  readonly key?: string;
  /** PEM CA file (trust roots). */
  readonly root?: string;
}

export interface LoggingConfig {
  readonly time: boolean;
  readonly debug: boolean;
  readonly trace: boolean;
  readonly colors: boolean;
  readonly pid: boolean;
  /** One JSON object per line instead of the nats-server text format. */
  readonly json: boolean;
}

export interface HttpConfig {
  /** Bind host; empty string means all interfaces. */
  readonly host: string;
  /** Bind port; 0 picks a free one. */
  readonly port: number;
  /** ms allowed to receive a whole request (headers and body). */
  readonly readTimeout: number;
  /** ms allowed to send a response. */
  readonly writeTimeout: number;
  /** Largest accepted request body, in bytes. */
  readonly maxBodyBytes: number;
  readonly tls: TlsFiles;
}

/** A listener of its own for the metrics or the console; absent port = the main HTTP listener. */
export interface SideListener {
  /** Bind host of the own listener. */
  readonly host: string;
  /** Own listener's port (0 picks a free one); absent serves on the main HTTP listener. */
  readonly port?: number;
}

export interface MetricsConfig extends SideListener {
  /** Serve Prometheus metrics. */
  readonly enabled: boolean;
  /** Path of the metrics (default `/metrics`). */
  readonly path: string;
}

export interface UiConfig extends SideListener {
  /** Serve the read-only console at `/ui/`. */
  readonly enabled: boolean;
  /** Basic auth user and password; with them (or a token) non-loopback clients are let in. */
  readonly user?: string;
  readonly password?: string;
  /** Bearer token accepted instead of basic auth. */
  readonly token?: string;
  /** Days before `exp` an account is shown as expiring soon. */
  readonly expiryWarningDays: number;
}

export interface NatsConfig {
  /** NATS URLs; empty means no NATS connection at all. */
  readonly servers: readonly string[];
  /** ms for one connection attempt. */
  readonly connectTimeout: number;
  /** ms between reconnect attempts (also the startup retry period). */
  readonly reconnectWait: number;
  /** -1 = retry forever. */
  readonly maxReconnects: number;
  readonly tls: TlsFiles;
  /** .creds file of a system-account user. */
  readonly userCredentials?: string;
  /**
   * ms between pack syncs with the full nats-servers and other account servers (jittered, and
   * backed off while a divergence persists); 0 = never pull.
   */
  readonly syncInterval: number;
  /** `server.name` in replies to NATS requests (nsc prints it); default `nats-account-server`. */
  readonly name?: string;
  /** Most NATS lookups open at once for GET misses; a miss over it answers 404 without asking; 0 = never ask. */
  readonly maxLookups: number;
  /** ms a key that missed is answered 404 without asking again (until it changes); 0 = always ask. */
  readonly lookupMissTtl: number;
  /** Most keys remembered as missing. */
  readonly lookupMissKeys: number;
}

/** Which backend holds the account JWTs. */
export type StoreType = "memory" | "dir" | "nsc" | "kv";

/**
 * `store.cache` when not configured: 16 MiB holds ~15,000 typical account JWTs and keeps the
 * process within ~120 MB with 100,000 accounts (bench/RESULTS.md, "Memory").
 */
export const DEFAULT_CACHE_BYTES = 16 << 20;

export interface StoreConfig {
  /** Backend; absent means inferred: `nsc` if set, else `dir` if set, else memory. */
  readonly type?: StoreType;
  /** Directory store path; absent means the memory store. */
  readonly dir?: string;
  /** `<dir>/<last 2 chars>/<KEY>.jwt` layout. */
  readonly shard: boolean;
  /** Serve a directory maintained by someone else; POST is refused, file changes are announced. */
  readonly readonly: boolean;
  /** Honour operator-signed delete requests (HTTP DELETE, `$SYS.REQ.CLAIMS.DELETE`). */
  readonly allowDelete: boolean;
  /** ms between expiry sweeps; 0 means the 60 s default. */
  readonly cleanupInterval: number;
  /** nsc operator folder (read-only view). */
  readonly nsc?: string;
  /** JetStream KV bucket (type kv). */
  readonly bucket: string;
  /** Replicas of the KV bucket's stream. */
  readonly replicas: number;
  /** Versions kept per account: KV bucket history, and the directory store's history log. */
  readonly history: number;
  /**
   * Bytes of ready-to-serve account JWTs kept in memory (the rest are read from the store when
   * asked for, then cached); the index of every account is kept whatever this is.
   */
  readonly cache: number;
  /** NATS URLs of the JetStream deployment holding the bucket; absent means `nats.servers`. */
  readonly servers?: readonly string[];
  /** Credentials of a user of the (JetStream-enabled) account holding the bucket. */
  readonly userCredentials?: string;
  /**
   * The server's own bookkeeping (activation tokens, ...), kept out of the store directory so
   * that it stays portable. Absent means `<dir>.state`, a sibling of the store directory.
   */
  readonly stateDir?: string;
}

export interface Config {
  readonly operatorJwtPath?: string;
  readonly systemAccountJwtPath?: string;
  readonly signRequestSubject?: string;
  /** ms; also the timeout of NATS lookups made on an HTTP miss. */
  readonly signRequestTimeout: number;
  readonly primary?: string;
  readonly replicationTimeout: number;
  /** ms between a replica's pack re-syncs with its primary (jittered); 0 = only at start. */
  readonly replicationInterval: number;
  readonly maxReplicationPack: number;
  /** How far a JWT's `iat` may be ahead of our clock before it is refused, milliseconds. */
  readonly maxClockSkew: number;
  readonly logging: LoggingConfig;
  readonly http: HttpConfig;
  readonly nats: NatsConfig;
  readonly store: StoreConfig;
  readonly metrics: MetricsConfig;
  readonly ui: UiConfig;
}

/** Default of `maxclockskew`: how far a JWT's `iat` may be ahead of our clock. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

export function defaultConfig(): Config {
  return {
    signRequestTimeout: 1000,
    replicationTimeout: 5000,
    replicationInterval: 30000,
    maxReplicationPack: 10000,
    maxClockSkew: DEFAULT_MAX_CLOCK_SKEW_MS,
    logging: { time: true, debug: false, trace: false, colors: true, pid: false, json: false },
    http: {
      host: "localhost",
      port: 9090,
      readTimeout: 5000,
      writeTimeout: 5000,
      maxBodyBytes: 1024 * 1024,
      tls: {},
    },
    nats: {
      servers: [],
      connectTimeout: 5000,
      reconnectWait: 1000,
      maxReconnects: -1,
      syncInterval: 60000,
      maxLookups: 64,
      lookupMissTtl: 5000,
      lookupMissKeys: 10_000,
      tls: {},
    },
    store: {
      shard: false,
      readonly: false,
      allowDelete: true,
      cleanupInterval: 0,
      bucket: "nats-account-server",
      replicas: 1,
      history: 10,
      cache: DEFAULT_CACHE_BYTES,
    },
    metrics: { enabled: true, path: "/metrics", host: "localhost" },
    ui: { enabled: false, host: "localhost", expiryWarningDays: 30 },
  };
}

/**
 * Where the server keeps its own files: `store.statedir`, else `<store.dir>.state` next to
 * the store directory (never inside it). Undefined when there is no directory store.
 */
export function stateDirOf(store: StoreConfig): string | undefined {
  if (store.stateDir !== undefined) return store.stateDir;
  return store.dir === undefined ? undefined : resolve(store.dir) + ".state";
}
