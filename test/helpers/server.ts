/**
 * Starts our server in-process on a free loopback port with a capturing logger and an optional
 * injected clock, for HTTP-level tests that need no child process.
 */
import { join } from "node:path";
import {
  defaultConfig,
  type Config,
  type HttpConfig,
  type MetricsConfig,
  type NatsConfig,
  type StoreConfig,
  type UiConfig,
} from "../../src/config/types.js";
import { createLogger } from "../../src/log.js";
import { AccountServer } from "../../src/server.js";
import type { OperatorSetup } from "./fixtures.js";
import { tempDir, writeFile } from "./processes.js";

export interface TestServer {
  readonly server: AccountServer;
  readonly base: string;
  readonly logs: string[];
  readonly dir: string;
  stop(): Promise<void>;
}

export interface TestServerOptions {
  /** Operator whose JWT is written to operatorjwtpath; null for none. */
  readonly operator?: OperatorSetup | null;
  /** Also configure systemaccountjwtpath with the operator's system account. */
  readonly systemAccount?: boolean;
  readonly store?: Partial<StoreConfig>;
  readonly http?: Partial<HttpConfig>;
  readonly nats?: Partial<NatsConfig>;
  readonly now?: () => number;
  readonly dir?: string;
  /** Replica of this primary URL. */
  readonly primary?: string;
  /** The signing-service branch. */
  readonly sign?: { readonly subject: string; readonly timeoutMs?: number };
  /** Top-level settings (the sections have their own options). */
  readonly config?: Partial<Pick<Config, "maxClockSkew" | "signRequestTimeout">>;
  readonly metrics?: Partial<MetricsConfig>;
  readonly ui?: Partial<UiConfig>;
  readonly logging?: Partial<Config["logging"]>;
}

/**
 * NAS_TEST_STORE_CACHE (bytes) sets store.cache of every test server: with 0 nothing is ever
 * cached, so every read takes the cold path (test/store/cold-suites.test.ts runs suites so).
 */
function cacheFromEnv(): Partial<StoreConfig> {
  const v = process.env["NAS_TEST_STORE_CACHE"];
  return v === undefined || v === "" ? {} : { cache: Number(v) };
}

export async function startServer(o: TestServerOptions = {}): Promise<TestServer> {
  const dir = o.dir ?? tempDir("nas-srv-");
  const d = defaultConfig();
  const op = o.operator;
  const config: Config = {
    ...d,
    ...(op ? { operatorJwtPath: writeFile(dir, "op.jwt", op.operatorJwt) } : {}),
    ...(op && o.systemAccount ? { systemAccountJwtPath: writeFile(dir, "sys.jwt", op.sysJwt) } : {}),
    ...(o.primary !== undefined ? { primary: o.primary } : {}),
    ...(o.sign ? { signRequestSubject: o.sign.subject, signRequestTimeout: o.sign.timeoutMs ?? d.signRequestTimeout } : {}),
    ...(o.config ?? {}),
    logging: { ...d.logging, colors: false, debug: true, ...(o.logging ?? {}) },
    http: { ...d.http, host: "127.0.0.1", port: 0, ...(o.http ?? {}) },
    nats: { ...d.nats, ...(o.nats ?? {}) },
    store: { ...d.store, ...cacheFromEnv(), ...(o.store ?? {}) },
    metrics: { ...d.metrics, ...(o.metrics ?? {}) },
    ui: { ...d.ui, ...(o.ui ?? {}) },
  };
  const logs: string[] = [];
  const log = createLogger(config.logging, { write: (l) => logs.push(l.trimEnd()), isTTY: false });
  const server = await AccountServer.start({ config, log, ...(o.now ? { now: o.now } : {}) });
  return {
    server,
    base: `http://127.0.0.1:${server.port}`,
    logs,
    dir,
    stop: () => server.stop(100),
  };
}

export function storeDir(t: TestServer, name = "store"): string {
  return join(t.dir, name);
}
