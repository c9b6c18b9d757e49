/**
 * Turns a parsed configuration file into the typed `Config`: case-insensitive keys, type checks
 * with the key and line in every message, warnings for unknown keys, durations and path expansion.
 */

import { homedir } from "node:os";
import { basename, dirname, isAbsolute, resolve } from "node:path";
import { defaultConfig } from "./types.js";
import type { Config, HttpConfig, LoggingConfig, MetricsConfig, NatsConfig, StoreConfig, TlsFiles, UiConfig } from "./types.js";
import { parseConfFile, TEXT_SOURCE } from "./parser.js";
import type { ConfMap, ConfPos, ConfValue, ParsedConf } from "./parser.js";

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export type Kind = "string" | "path" | "int" | "size" | "duration" | "bool" | "list" | "port";

export interface Field {
  readonly kind: Kind;
  /** Property name in `Config`. */
  readonly prop: string;
  /** Lowest accepted integer, for int/size kinds. */
  readonly min?: number;
  /** An empty string is a real value here, not "unset". */
  readonly keepEmpty?: boolean;
  /** The only accepted values of a string field (compared lower-case). */
  readonly oneOf?: readonly string[];
}

export interface Section {
  readonly prop: string;
  readonly keys: Readonly<Record<string, Field | Section>>;
}

/** Keys whose `prop` must name a property of `T`: a typo cannot drop a setting silently. */
type KeysOf<T> = Readonly<Record<string, (Field | Section) & { readonly prop: keyof T & string }>>;

const TLS: Readonly<Record<string, Field>> = {
  cert: { kind: "path", prop: "cert" },
  key: { kind: "path", prop: "key" },
  root: { kind: "path", prop: "root" },
} satisfies KeysOf<TlsFiles>;

/** Every accepted key, lower-case, mapped to where it lands in `Config`. */
const SCHEMA: Section = {
  prop: "",
  keys: {
    operatorjwtpath: { kind: "path", prop: "operatorJwtPath" },
    systemaccountjwtpath: { kind: "path", prop: "systemAccountJwtPath" },
    signrequestsubject: { kind: "string", prop: "signRequestSubject" },
    signrequesttimeout: { kind: "duration", prop: "signRequestTimeout" },
    primary: { kind: "string", prop: "primary" },
    replicationtimeout: { kind: "duration", prop: "replicationTimeout" },
    replicationinterval: { kind: "duration", prop: "replicationInterval" },
    maxreplicationpack: { kind: "int", prop: "maxReplicationPack", min: 0 },
    maxclockskew: { kind: "duration", prop: "maxClockSkew" },
    logging: {
      prop: "logging",
      keys: {
        time: { kind: "bool", prop: "time" },
        debug: { kind: "bool", prop: "debug" },
        trace: { kind: "bool", prop: "trace" },
        colors: { kind: "bool", prop: "colors" },
        pid: { kind: "bool", prop: "pid" },
        json: { kind: "bool", prop: "json" },
      } satisfies KeysOf<LoggingConfig>,
    },
    http: {
      prop: "http",
      keys: {
        host: { kind: "string", prop: "host", keepEmpty: true },
        port: { kind: "port", prop: "port" },
        readtimeout: { kind: "duration", prop: "readTimeout" },
        writetimeout: { kind: "duration", prop: "writeTimeout" },
        maxbodybytes: { kind: "size", prop: "maxBodyBytes", min: 1 },
        tls: { prop: "tls", keys: TLS },
      } satisfies KeysOf<HttpConfig>,
    },
    nats: {
      prop: "nats",
      keys: {
        servers: { kind: "list", prop: "servers" },
        connecttimeout: { kind: "duration", prop: "connectTimeout" },
        reconnectwait: { kind: "duration", prop: "reconnectWait" },
        maxreconnects: { kind: "int", prop: "maxReconnects", min: -1 },
        tls: { prop: "tls", keys: TLS },
        usercredentials: { kind: "path", prop: "userCredentials" },
        syncinterval: { kind: "duration", prop: "syncInterval" },
        name: { kind: "string", prop: "name" },
        maxlookups: { kind: "int", prop: "maxLookups", min: 0 },
        lookupmissttl: { kind: "duration", prop: "lookupMissTtl" },
        lookupmisskeys: { kind: "int", prop: "lookupMissKeys", min: 1 },
      } satisfies KeysOf<NatsConfig>,
    },
    store: {
      prop: "store",
      keys: {
        dir: { kind: "path", prop: "dir" },
        shard: { kind: "bool", prop: "shard" },
        readonly: { kind: "bool", prop: "readonly" },
        allowdelete: { kind: "bool", prop: "allowDelete" },
        cleanupinterval: { kind: "duration", prop: "cleanupInterval" },
        nsc: { kind: "path", prop: "nsc" },
        statedir: { kind: "path", prop: "stateDir" },
        type: { kind: "string", prop: "type", oneOf: ["memory", "dir", "nsc", "kv"] },
        bucket: { kind: "string", prop: "bucket" },
        replicas: { kind: "int", prop: "replicas", min: 1 },
        history: { kind: "int", prop: "history", min: 1 },
        cache: { kind: "size", prop: "cache", min: 0 },
        servers: { kind: "list", prop: "servers" },
        usercredentials: { kind: "path", prop: "userCredentials" },
      } satisfies KeysOf<StoreConfig>,
    },
    metrics: {
      prop: "metrics",
      keys: {
        enabled: { kind: "bool", prop: "enabled" },
        path: { kind: "string", prop: "path" },
        host: { kind: "string", prop: "host", keepEmpty: true },
        port: { kind: "port", prop: "port" },
      } satisfies KeysOf<MetricsConfig>,
    },
    ui: {
      prop: "ui",
      keys: {
        enabled: { kind: "bool", prop: "enabled" },
        host: { kind: "string", prop: "host", keepEmpty: true },
        port: { kind: "port", prop: "port" },
        user: { kind: "string", prop: "user" },
        password: { kind: "string", prop: "password" },
        token: { kind: "string", prop: "token" },
        expirywarningdays: { kind: "int", prop: "expiryWarningDays", min: 0 },
      } satisfies KeysOf<UiConfig>,
    },
  } satisfies KeysOf<Config>,
};

/** Sections the signer's configuration shares with the server's. */
export const LOGGING_SECTION = SCHEMA.keys["logging"] as Section;
export const NATS_SECTION = SCHEMA.keys["nats"] as Section;

function isSection(x: Field | Section): x is Section {
  return "keys" in x;
}

function isConfMap(v: ConfValue): v is ConfMap {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** How a value is shown in an error message. */
function show(v: ConfValue): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (v instanceof Date) return `the datetime ${v.toISOString()}`;
  if (Array.isArray(v)) return "a list";
  return "a map";
}

function where(pos: ConfPos | undefined): string {
  if (!pos) return "";
  if (pos.file === TEXT_SOURCE || pos.file === "") return ` (line ${pos.line})`;
  return ` (${basename(pos.file)} line ${pos.line})`;
}

/** Expands a leading `~` to the home directory (`~user` forms are left alone). */
export function expandTilde(p: string): string {
  if (p === "~") return homedir();
  if (p.startsWith("~/")) return homedir() + p.slice(1);
  return p;
}

// ---- durations ---------------------------------------------------------------------------

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Milliseconds for a duration value, or undefined if it is not one. */
function durationMs(v: ConfValue): number | undefined {
  if (typeof v === "number") {
    // Integers are milliseconds, as in the legacy server.
    return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  }
  if (typeof v !== "string") return undefined;
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s);
  // Go-style: one or more <number><unit> parts, e.g. "1.5s" or "1h30m".
  if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(s)) return undefined;
  let total = 0;
  for (const part of s.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(part[1]) * (DURATION_UNITS[part[2] ?? ""] ?? Number.NaN);
  }
  return Number.isFinite(total) ? Math.round(total) : undefined;
}

/**
 * Milliseconds for a duration setting: an integer is milliseconds (legacy), a string may be a
 * plain number of milliseconds or carry units ("500ms", "5s", "2m", "1h", "1.5s", "1h30m").
 */
export function parseDuration(v: ConfValue, keyPath: string): number {
  const ms = durationMs(v);
  if (ms === undefined) {
    throw new ConfigError(
      `${keyPath}: expected a duration (e.g. "500ms", "5s", "2m" or integer milliseconds), got ${show(v)}`,
    );
  }
  return ms;
}

// ---- scalar conversion -------------------------------------------------------------------

function toInt(v: ConfValue): number | undefined {
  if (typeof v === "number") return Number.isSafeInteger(v) ? v : undefined;
  if (typeof v === "string" && /^\s*-?\d+\s*$/.test(v)) {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  return undefined;
}

const SIZE_MULTIPLIERS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  k: 1e3,
  kb: 1024,
  ki: 1024,
  kib: 1024,
  m: 1e6,
  mb: 1024 ** 2,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1e9,
  gb: 1024 ** 3,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1e12,
  tb: 1024 ** 4,
  ti: 1024 ** 4,
  tib: 1024 ** 4,
};

/** Byte counts: integers, or strings such as "1MB" written in quotes (unquoted ones the parser already converted). */
function toSize(v: ConfValue): number | undefined {
  const n = toInt(v);
  if (n !== undefined || typeof v !== "string") return n;
  const m = /^\s*(\d+)\s*([a-zA-Z]*)\s*$/.exec(v);
  const mult = m ? SIZE_MULTIPLIERS[(m[2] ?? "").toLowerCase()] : undefined;
  if (!m || mult === undefined) return undefined;
  const size = Number(m[1]) * mult;
  return Number.isSafeInteger(size) ? size : undefined;
}

function toBool(v: ConfValue): boolean | undefined {
  if (typeof v === "boolean") return v;
  if (typeof v === "string") {
    // Stricter than the legacy server, which read any string other than "true" as false.
    const s = v.toLowerCase();
    if (s === "true") return true;
    if (s === "false") return false;
  }
  return undefined;
}

// ---- mapping -----------------------------------------------------------------------------

type Mutable = Record<string, unknown>;

class Mapper {
  readonly warnings: string[] = [];
  private readonly positions: ParsedConf["positions"];

  constructor(positions: ParsedConf["positions"]) {
    this.positions = positions;
  }

  /** Applies the keys present in `map` onto `target`, leaving absent keys as they were. */
  section(map: ConfMap, schema: Section, target: Mutable, path: string): void {
    const keyPositions = this.positions.get(map);
    for (const [key, value] of Object.entries(map)) {
      const pos = keyPositions?.get(key);
      const spec = schema.keys[key.toLowerCase()];
      if (spec === undefined) {
        const full = path ? `${path}.${key}` : key;
        this.warnings.push(`unknown configuration key "${full}"${where(pos)}`);
        continue;
      }
      const keyPath = path ? `${path}.${key.toLowerCase()}` : key.toLowerCase();
      if (isSection(spec)) {
        if (!isConfMap(value)) {
          throw new ConfigError(`${keyPath}: expected a map (section), got ${show(value)}${where(pos)}`);
        }
        const sub = { ...(target[spec.prop] as Mutable | undefined) };
        this.section(value, spec, sub, keyPath);
        target[spec.prop] = sub;
      } else {
        const converted = this.field(spec, value, keyPath, pos);
        if (converted === undefined) delete target[spec.prop];
        else target[spec.prop] = converted;
      }
    }
  }

  private field(spec: Field, v: ConfValue, keyPath: string, pos: ConfPos | undefined): unknown {
    const bad = (expected: string): never => {
      throw new ConfigError(`${keyPath}: expected ${expected}, got ${show(v)}${where(pos)}`);
    };
    switch (spec.kind) {
      case "string":
        if (typeof v !== "string") return bad("a string");
        if (spec.oneOf) {
          if (!spec.oneOf.includes(v.toLowerCase())) return bad(`one of ${spec.oneOf.join(", ")}`);
          return v.toLowerCase();
        }
        // Optional settings treat "" as absent, as the legacy server's zero values did.
        return v === "" && !spec.keepEmpty ? undefined : v;
      case "path": {
        if (typeof v !== "string") return bad("a path string");
        if (v === "") {
          // An empty store directory used to fail at startup; failing here names the line.
          if (keyPath === "store.dir") {
            throw new ConfigError(`store.dir: store directory is required${where(pos)}`);
          }
          return undefined;
        }
        return this.path(v, pos);
      }
      case "int":
      case "size": {
        const n = spec.kind === "int" ? toInt(v) : toSize(v);
        if (n === undefined) return bad(spec.kind === "int" ? "an integer" : "a size in bytes");
        if (spec.min !== undefined && n < spec.min) return bad(`an integer >= ${spec.min}`);
        return n;
      }
      case "port": {
        const n = toInt(v);
        if (n === undefined) return bad("an integer");
        if (n < 0 || n > 65535) return bad("a port number between 0 and 65535");
        return n;
      }
      case "duration": {
        // The parser reads an unquoted `2m` as 2 000 000; for a duration, minutes is what is meant.
        if (typeof v === "number" && pos?.raw !== undefined && /^\d+m$/.test(pos.raw)) {
          return Number(pos.raw.slice(0, -1)) * 60_000;
        }
        const ms = durationMs(v);
        if (ms === undefined) return bad('a duration (e.g. "500ms", "5s", "2m" or integer milliseconds)');
        return ms;
      }
      case "bool": {
        const b = toBool(v);
        if (b === undefined) return bad("a boolean (true or false)");
        return b;
      }
      case "list": {
        if (typeof v === "string") return [v];
        if (!Array.isArray(v)) return bad("a list of strings");
        const elPositions = this.positions.get(v);
        return v.map((el, i) => {
          if (typeof el !== "string") {
            throw new ConfigError(
              `${keyPath}[${i}]: expected a string, got ${show(el)}${where(elPositions?.get(String(i)) ?? pos)}`,
            );
          }
          return el;
        });
      }
    }
  }

  /**
   * `~` is expanded and relative paths resolve against the directory of the file that holds
   * the key. The legacy server resolved them against the working directory, which made a
   * config file mean different things depending on where the server was started.
   */
  private path(p: string, pos: ConfPos | undefined): string {
    const expanded = expandTilde(p);
    if (isAbsolute(expanded)) return expanded;
    const file = pos?.file;
    if (!file || file === TEXT_SOURCE) return resolve(expanded);
    return resolve(dirname(file), expanded);
  }
}

export function configFromConf(parsed: ParsedConf, base?: Config): { config: Config; warnings: string[] } {
  return mapConf(parsed, SCHEMA, base ?? defaultConfig());
}

/** Apply a parsed file onto `base` with another schema (the signer's configuration). */
export function mapConf<T>(parsed: ParsedConf, schema: Section, base: T): { config: T; warnings: string[] } {
  const target = structuredClone(base) as unknown as Mutable;
  const mapper = new Mapper(parsed.positions);
  mapper.section(parsed.value, schema, target, "");
  return { config: target as unknown as T, warnings: mapper.warnings };
}

export function loadConfigFile(
  path: string,
  env?: Record<string, string | undefined>,
): { config: Config; warnings: string[] } {
  const parsed = parseConfFile(path, env === undefined ? {} : { env });
  return configFromConf(parsed);
}
