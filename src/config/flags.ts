/**
 * Command-line flags in Go `flag` syntax (`-x v`, `--x v`, `-x=v`, bare booleans) and how they
 * override the loaded configuration: each flag replaces only the one setting it names.
 */

import { isAbsolute, resolve } from "node:path";
import type { Config } from "./types.js";
import { ConfigError, expandTilde, parseDuration } from "./schema.js";

export interface Flags {
  configFile?: string;
  dir?: string;
  operator?: string;
  nats?: string;
  creds?: string;
  hostPort?: string;
  primary?: string;
  nsc?: string;
  readOnly?: boolean;
  /** Milliseconds. */
  maxClockSkew?: number;
  debug?: boolean;
  trace?: boolean;
  dump?: boolean;
  help?: boolean;
  version?: boolean;
}

/** A command line that cannot be understood; callers exit with code 2 as Go's flag package does. */
export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FlagError";
  }
}

/** One flag of a command: how it is shown and what it sets in that command's flag record. */
export interface FlagSpec<F> {
  readonly name: string;
  /** Placeholder shown in the usage text; absent for booleans. */
  readonly arg?: string;
  readonly help: string;
  readonly set: (flags: F, value: string | boolean) => void;
}

/** `~` expansion and absolute paths, so later changes of working directory do not matter. */
function absPath(p: string): string {
  const expanded = expandTilde(p);
  return isAbsolute(expanded) ? expanded : resolve(process.cwd(), expanded);
}

const str = (v: string | boolean): string => String(v);
const bool = (v: string | boolean): boolean => v === true;

const SPECS: readonly FlagSpec<Flags>[] = [
  { name: "c", arg: "file", help: "configuration file", set: (f, v) => (f.configFile = absPath(str(v))) },
  { name: "dir", arg: "path", help: "directory store path (sets store.dir only)", set: (f, v) => (f.dir = absPath(str(v))) },
  { name: "operator", arg: "path", help: "operator JWT file", set: (f, v) => (f.operator = absPath(str(v))) },
  { name: "nats", arg: "url", help: "NATS server URL(s), comma separated; replaces nats.servers", set: (f, v) => (f.nats = str(v)) },
  { name: "creds", arg: "file", help: "credentials file of a system-account user", set: (f, v) => (f.creds = absPath(str(v))) },
  {
    name: "hp",
    arg: "host:port",
    help: "HTTP bind address; ':9090' listens on all interfaces",
    set: (f, v) => {
      parseHostPort(str(v));
      f.hostPort = str(v);
    },
  },
  { name: "primary", arg: "url", help: "primary account server to replicate from (this server becomes a replica)", set: (f, v) => (f.primary = str(v)) },
  { name: "nsc", arg: "folder", help: "serve an nsc operator folder read-only, announcing its changes", set: (f, v) => (f.nsc = absPath(str(v))) },
  { name: "ro", help: "read-only directory store: serve files maintained elsewhere, announce their changes", set: (f, v) => (f.readOnly = bool(v)) },
  {
    name: "maxclockskew",
    arg: "duration",
    help: "refuse JWTs issued more than this ahead of our clock (default 5m)",
    set: (f, v) => {
      try {
        f.maxClockSkew = parseDuration(str(v), "-maxclockskew");
      } catch (err) {
        throw err instanceof ConfigError ? new FlagError(err.message) : err;
      }
    },
  },
  { name: "D", help: "enable debug logging", set: (f, v) => (f.debug = bool(v)) },
  { name: "V", help: "enable trace logging", set: (f, v) => (f.trace = bool(v)) },
  {
    name: "DV",
    help: "enable debug and trace logging",
    set: (f, v) => {
      f.debug = bool(v);
      f.trace = bool(v);
    },
  },
  { name: "dump", help: "log the effective configuration after startup", set: (f, v) => (f.dump = bool(v)) },
  { name: "h", help: "show this help", set: (f, v) => (f.help = bool(v)) },
  { name: "help", help: "show this help", set: (f, v) => (f.help = bool(v)) },
  { name: "version", help: "print the version and exit", set: (f, v) => (f.version = bool(v)) },
];

export const USAGE: string = [
  "Usage: nats-account-server [options]",
  "",
  "Hosts, validates and distributes NATS account JWTs; nats-servers use it with",
  "resolver: URL(http://<host>:<port>/jwt/v1/accounts/). Without -c or -dir it serves a",
  "memory store on localhost:9090. API reference: GET /jwt/v1/help. Prometheus metrics:",
  "GET /metrics (config: metrics { }). Read-only console: /ui/ when configured (ui { enabled: true }).",
  "",
  "Options:",
  ...flagUsage(SPECS),
  "",
  "Flags may be written -x value, --x value, -x=value or --x=value; booleans as -x or -x=false.",
  "",
  "With NATS configured, a GET for an account the store lacks asks",
  "$SYS.REQ.ACCOUNT.<key>.CLAIMS.LOOKUP, waiting up to signrequesttimeout only once a peer",
  "outside this server's group (instances sharing a KV bucket) has answered one; otherwise the",
  "404 comes with the first reply or \"no responders\". At most nats.maxlookups (64) are open at",
  "once (a miss over it answers 404 at once); a key that missed is not asked again for",
  "nats.lookupmissttl (5s) unless it changes. /healthz nats.lookups counts lookups;",
  "nats.notifications_resent counts announcements sent again after a lost confirmation.",
  "Log lines of GET misses are rate-limited: per kind, 10 in full per 10 s, then one line with",
  "the count of those suppressed.",
  "",
  "Memory: every store keeps a compact index of every account (~130 bytes each, off the heap) and a bounded",
  "cache of ready-to-serve JWTs, store.cache in the configuration file (default 16MB, 0 caches",
  "nothing); an account not cached is read once from the store when asked for, then cached.",
  "",
  "Subcommands:",
  "  migrate               copy account JWTs between stores (see: nats-account-server migrate -h)",
  "  signer                run the signing service for self-signed accounts, approve or reject",
  "                        its queued requests (see: nats-account-server signer -h)",
  "  demo                  the whole job in a temporary directory: operator, accounts, this server,",
  "                        a nats-server, a push and a live revocation (see: nats-account-server demo -h)",
  "",
].join("\n");

/** Go's strconv.ParseBool spellings. */
function parseGoBool(name: string, text: string): boolean {
  if (["1", "t", "T", "true", "TRUE", "True"].includes(text)) return true;
  if (["0", "f", "F", "false", "FALSE", "False"].includes(text)) return false;
  throw new FlagError(`invalid boolean value "${text}" for -${name}`);
}

/** The usage lines of `specs`, one per flag, help text aligned. */
export function flagUsage<F>(specs: readonly FlagSpec<F>[]): string[] {
  return specs.map((s) => {
    const left = `-${s.name}${s.arg ? ` <${s.arg}>` : ""}`;
    return `  ${left.length < 22 ? left.padEnd(22) : `${left} `}${s.help}`;
  });
}

export function parseFlags(argv: readonly string[]): Flags {
  return parseGoFlags(argv, SPECS, {});
}

/**
 * Go `flag` parsing of `argv` into `flags` by `specs`. Words that are not flags go to
 * `positional` when the command takes some; otherwise they are an error (Go would silently stop
 * there, and a stray word is usually a forgotten -c).
 */
export function parseGoFlags<F>(argv: readonly string[], specs: readonly FlagSpec<F>[], flags: F, positional?: string[]): F {
  const byName = new Map(specs.map((s) => [s.name, s]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") {
      if (positional) positional.push(...argv.slice(i + 1));
      else if (i + 1 < argv.length) throw new FlagError(`unexpected argument "${argv[i + 1]}"`);
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      if (!positional) throw new FlagError(`unexpected argument "${arg}"`);
      positional.push(arg);
      continue;
    }
    const body = arg.startsWith("--") ? arg.slice(2) : arg.slice(1);
    if (body === "" || body.startsWith("-") || body.startsWith("=")) {
      throw new FlagError(`bad flag syntax: ${arg}`);
    }
    const eq = body.indexOf("=");
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const inline = eq >= 0 ? body.slice(eq + 1) : undefined;
    const spec = byName.get(name);
    if (!spec) throw new FlagError(`flag provided but not defined: -${name}`);

    if (spec.arg === undefined) {
      spec.set(flags, inline === undefined ? true : parseGoBool(name, inline));
      continue;
    }
    let value = inline;
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: -${name}`);
      value = argv[++i] ?? "";
    }
    spec.set(flags, value);
  }
  return flags;
}

/**
 * Splits `host:port` like Go's net.SplitHostPort: `[v6]:port` brackets, empty host = all
 * interfaces, and the port must be numeric.
 */
export function parseHostPort(hp: string): { host: string; port: number } {
  const fail = (why: string): never => {
    throw new FlagError(`error parsing hostport: ${why} (in "${hp}")`);
  };
  let host: string;
  let portText: string;
  if (hp.startsWith("[")) {
    const close = hp.indexOf("]");
    if (close < 0) return fail("missing ']' in address");
    host = hp.slice(1, close);
    const rest = hp.slice(close + 1);
    if (!rest.startsWith(":")) return fail("missing port in address");
    portText = rest.slice(1);
  } else {
    const colon = hp.lastIndexOf(":");
    if (colon < 0) return fail("missing port in address");
    host = hp.slice(0, colon);
    if (host.includes(":")) return fail("too many colons in address (put IPv6 hosts in brackets)");
    portText = hp.slice(colon + 1);
  }
  if (!/^\d+$/.test(portText)) return fail(`invalid port "${portText}"`);
  const port = Number(portText);
  if (port > 65535) return fail(`port ${port} is out of range`);
  return { host, port };
}

export function applyFlags(config: Config, flags: Flags): Config {
  let c: Config = config;
  if (flags.dir !== undefined) c = { ...c, store: { ...c.store, dir: flags.dir } };
  if (flags.nsc !== undefined) c = { ...c, store: { ...c.store, nsc: flags.nsc } };
  if (flags.readOnly !== undefined) c = { ...c, store: { ...c.store, readonly: flags.readOnly } };
  if (flags.operator !== undefined) c = { ...c, operatorJwtPath: flags.operator };
  if (flags.maxClockSkew !== undefined) c = { ...c, maxClockSkew: flags.maxClockSkew };
  if (flags.primary !== undefined) c = { ...c, primary: flags.primary };
  if (flags.nats !== undefined) {
    const servers = flags.nats
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
    c = { ...c, nats: { ...c.nats, servers } };
  }
  if (flags.creds !== undefined) c = { ...c, nats: { ...c.nats, userCredentials: flags.creds } };
  if (flags.hostPort !== undefined) {
    const { host, port } = parseHostPort(flags.hostPort);
    c = { ...c, http: { ...c.http, host, port } };
  }
  if (flags.debug !== undefined) c = { ...c, logging: { ...c.logging, debug: flags.debug } };
  if (flags.trace !== undefined) c = { ...c, logging: { ...c.logging, trace: flags.trace } };
  return c;
}
