/**
 * The signing service's settings: its own configuration file in the NATS conf syntax (NATS
 * connection, subject, operator signing key, state directory, policy), with defaults and checks.
 */
import { dirname, resolve } from "node:path";
import { defaultConfig, type LoggingConfig, type NatsConfig } from "../config/types.js";
import { parseConfFile } from "../config/parser.js";
import { ConfigError, LOGGING_SECTION, mapConf, NATS_SECTION, type Field, type Section } from "../config/schema.js";
import { ACCOUNT_LIMIT_COUNTS, isValidLiteralSubject, JETSTREAM_LIMIT_COUNTS } from "../jwt/index.js";

/** Numeric account limits a request may ask for, as named in the JWT's `nats.limits`. */
export const LIMIT_NAMES = [...ACCOUNT_LIMIT_COUNTS, ...JETSTREAM_LIMIT_COUNTS] as const;
export type LimitName = (typeof LIMIT_NAMES)[number];

export interface SignerPolicy {
  /** Accounts the signer has not signed before: signed at once, or queued for `signer approve`. */
  readonly newAccounts: "sign" | "queue";
  /** A request over a cap or asking for something not allowed: clamped to the policy, or refused. */
  readonly overLimit: "clamp" | "refuse";
  readonly allowExports: boolean;
  readonly allowImports: boolean;
  readonly allowSigningKeys: boolean;
  /** Caps; -1 = no cap. A limit the request leaves out gets its cap. */
  readonly limits: Readonly<Record<LimitName, number>>;
  /** Whether wildcard exports may be allowed (`limits.wildcards`). */
  readonly wildcards: boolean;
  /** Most requests waiting for approval; more are refused. */
  readonly maxPending: number;
}

export interface SignerConfig {
  /** The account servers' `signrequestsubject`. */
  readonly subject: string;
  /** Queue group, so that with several signers each request gets one decision. */
  readonly queue: string;
  /** File holding the operator signing key's seed (`SO…`), readable by its owner only. */
  readonly seedFile: string;
  /** When set, the seed's key must be one of this operator's signing keys. */
  readonly operatorJwtPath?: string;
  /** The approval queue and the accounts signed so far. */
  readonly stateDir: string;
  /** Larger requests are refused unread. */
  readonly maxRequestBytes: number;
  /** ms the `approve` command waits for account servers to confirm the signed JWT. */
  readonly deliveryTimeout: number;
  readonly logging: LoggingConfig;
  readonly nats: NatsConfig;
  readonly policy: SignerPolicy;
}

/** Defaults: a small tenant without JetStream, exports, imports or signing keys. */
export function defaultSignerConfig(stateDir: string): SignerConfig {
  const base = defaultConfig();
  return {
    subject: "",
    queue: "nats-account-signer",
    seedFile: "",
    stateDir,
    maxRequestBytes: 64 * 1024,
    deliveryTimeout: 2000,
    logging: base.logging,
    nats: { ...base.nats, syncInterval: 0 },
    policy: {
      newAccounts: "queue",
      overLimit: "clamp",
      allowExports: false,
      allowImports: false,
      allowSigningKeys: false,
      wildcards: true,
      maxPending: 1000,
      limits: {
        conn: 100,
        leaf: 0,
        subs: 1000,
        data: -1,
        payload: 1024 * 1024,
        imports: 0,
        exports: 0,
        mem_storage: 0,
        disk_storage: 0,
        streams: 0,
        consumer: 0,
        max_ack_pending: -1,
        mem_max_stream_bytes: -1,
        disk_max_stream_bytes: -1,
      },
    },
  };
}

const COUNT: Field = { kind: "int", prop: "", min: -1 };
const BYTES: Field = { kind: "size", prop: "", min: -1 };
const BYTE_LIMITS: ReadonlySet<LimitName> = new Set(["data", "payload", "mem_storage", "disk_storage", "mem_max_stream_bytes", "disk_max_stream_bytes"]);

const SCHEMA: Section = {
  prop: "",
  keys: {
    subject: { kind: "string", prop: "subject" },
    queue: { kind: "string", prop: "queue" },
    seedfile: { kind: "path", prop: "seedFile" },
    operatorjwtpath: { kind: "path", prop: "operatorJwtPath" },
    statedir: { kind: "path", prop: "stateDir" },
    maxrequestbytes: { kind: "size", prop: "maxRequestBytes", min: 1 },
    deliverytimeout: { kind: "duration", prop: "deliveryTimeout" },
    logging: LOGGING_SECTION,
    nats: NATS_SECTION,
    policy: {
      prop: "policy",
      keys: {
        newaccounts: { kind: "string", prop: "newAccounts", oneOf: ["sign", "queue"] },
        overlimit: { kind: "string", prop: "overLimit", oneOf: ["clamp", "refuse"] },
        exports: { kind: "bool", prop: "allowExports" },
        imports: { kind: "bool", prop: "allowImports" },
        signingkeys: { kind: "bool", prop: "allowSigningKeys" },
        maxpending: { kind: "int", prop: "maxPending", min: 0 },
        wildcards: { kind: "bool", prop: "wildcards" },
        limits: {
          prop: "limits",
          keys: Object.fromEntries(LIMIT_NAMES.map((n) => [n, { ...(BYTE_LIMITS.has(n) ? BYTES : COUNT), prop: n }])),
        },
      },
    },
  },
};

/** Read the signer's file; relative paths resolve against its directory. */
export function loadSignerConfig(path: string): { config: SignerConfig; warnings: string[] } {
  const file = resolve(path);
  const { config, warnings } = mapConf(parseConfFile(file), SCHEMA, defaultSignerConfig(resolve(dirname(file), "signer-state")));
  if (!config.subject) throw new ConfigError("subject: the subject the account servers send sign requests on (their signrequestsubject) is required");
  if (!isValidLiteralSubject(config.subject)) throw new ConfigError(`subject: ${JSON.stringify(config.subject)} is not a NATS subject without wildcards`);
  if (!config.seedFile) throw new ConfigError("seedfile: the file with the operator signing key's seed is required");
  if (config.nats.servers.length === 0) throw new ConfigError("nats.servers: the signer needs the NATS servers the account servers use");
  return { config, warnings };
}
