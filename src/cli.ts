/**
 * Command-line entry: flags and config file → Config, logger, server start, signal handling.
 * Wiring only; every behaviour lives in the modules it calls.
 */
import { resolve } from "node:path";
import { applyFlags, FlagError, flagUsage, parseFlags, parseGoFlags, USAGE, type Flags, type FlagSpec } from "./config/flags.js";
import { ConfigError, loadConfigFile } from "./config/schema.js";
import { ConfParseError } from "./config/parser.js";
import { defaultConfig, type Config } from "./config/types.js";
import { createLogger, type Logger } from "./log.js";
import { errorText, StartupError } from "./errors.js";
import { AccountServer } from "./server.js";
import { VERSION } from "./version.js";
import { migrate, parseStoreSpec } from "./migrate.js";
import { signerMain } from "./signer/cli.js";
import { runDemo } from "./demo.js";

export interface CliIO {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
}

const defaultIO: CliIO = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
};

/** Config from defaults, the file named by -c, then the flags (each overrides only its key). */
function buildConfig(flags: Flags): { config: Config; warnings: string[] } {
  let config = defaultConfig();
  let warnings: string[] = [];
  if (flags.configFile !== undefined) {
    ({ config, warnings } = loadConfigFile(flags.configFile));
  }
  return { config: applyFlags(config, flags), warnings };
}

function describe(err: unknown): string {
  if (err instanceof ConfigError || err instanceof ConfParseError || err instanceof FlagError) return err.message;
  if (err instanceof StartupError) return err.message;
  return (err as Error)?.stack ?? String(err);
}

/**
 * Run the server until a signal stops it. Resolves with the process exit code:
 * 0 after SIGINT/SIGTERM, 1 for configuration or startup errors, 2 for bad flags.
 */
export async function main(argv: readonly string[], io: CliIO = defaultIO): Promise<number> {
  if (argv[0] === "migrate") return runMigrate(argv.slice(1), io);
  if (argv[0] === "signer") return signerMain(argv.slice(1), io);
  if (argv[0] === "demo") return runDemo(argv.slice(1), { out: (line) => io.stdout(`${line}\n`) });
  let flags: Flags;
  try {
    flags = parseFlags([...argv]);
  } catch (err) {
    // A well-formed -hp with a bad address is a startup error (exit 1), as in the Go server.
    if (err instanceof FlagError && err.message.startsWith("error parsing hostport")) {
      io.stderr(`${err.message}\n`);
      return 1;
    }
    io.stderr(`${errorText(err)}\n${USAGE}`);
    return 2;
  }
  if (flags.help) {
    io.stdout(USAGE);
    return 0;
  }
  if (flags.version) {
    io.stdout(`nats-account-server version ${VERSION}\n`);
    return 0;
  }

  let built: { config: Config; warnings: string[] };
  try {
    built = buildConfig(flags);
  } catch (err) {
    io.stderr(`error loading configuration: ${describe(err)}\n`);
    return 1;
  }
  const { config } = built;
  const log = createLogger(config.logging);
  if (flags.configFile !== undefined) log.info(`loading configuration from "${resolve(flags.configFile)}"`);
  for (const w of built.warnings) log.warn(w);

  // Signals are handled from before the server starts, so an early SIGTERM still stops it cleanly.
  const signals = new SignalHandler(flags, log);
  let server: AccountServer;
  try {
    server = await AccountServer.start({ config, log });
  } catch (err) {
    signals.dispose();
    log.error(describe(err));
    return 1;
  }
  if (flags.dump) log.info(`effective configuration:\n${JSON.stringify(config, null, 2)}`);
  return signals.serve(server);
}

/** SIGINT/SIGTERM stop gracefully (a second one exits at once); SIGHUP reloads, as often as sent. */
class SignalHandler {
  private server: AccountServer | undefined;
  private stopping: string | undefined;
  private resolveExit: ((code: number) => void) | undefined;
  private readonly flags: Flags;
  private readonly log: Logger;
  private readonly onInt = (): void => this.stop("sig-interrupt");
  private readonly onTerm = (): void => this.stop("sig-term");
  private readonly onHup = (): void => this.reload();

  constructor(flags: Flags, log: Logger) {
    this.flags = flags;
    this.log = log;
    process.on("SIGINT", this.onInt);
    process.on("SIGTERM", this.onTerm);
    process.on("SIGHUP", this.onHup);
  }

  dispose(): void {
    process.off("SIGINT", this.onInt);
    process.off("SIGTERM", this.onTerm);
    process.off("SIGHUP", this.onHup);
  }

  serve(server: AccountServer): Promise<number> {
    this.server = server;
    return new Promise<number>((resolveExit) => {
      this.resolveExit = resolveExit;
      if (this.stopping) this.shutdown();
    });
  }

  private stop(name: string): void {
    if (this.stopping) {
      this.log.warn(`received ${name} again, exiting now`);
      process.exit(1);
    }
    this.stopping = name;
    this.log.info(`received ${name}, shutting down`);
    if (this.server && this.resolveExit) this.shutdown();
  }

  private shutdown(): void {
    const done = this.resolveExit!;
    this.server!.stop().then(
      () => {
        this.dispose();
        done(0);
      },
      (err: unknown) => {
        this.log.error(`error while stopping: ${describe(err)}`);
        done(1);
      },
    );
  }

  private reload(): void {
    if (this.stopping) return;
    this.log.info("received sig-hup, reloading configuration");
    if (!this.server) {
      this.log.warn("still starting; reload ignored");
      return;
    }
    let next: Config;
    try {
      next = buildConfig(this.flags).config;
    } catch (err) {
      this.log.error(`reload failed, keeping the running configuration: ${describe(err)}`);
      return;
    }
    this.server.reload(next).catch((err: unknown) => {
      this.log.error(`reload failed, keeping the running configuration: ${describe(err)}`);
    });
  }
}

interface MigrateFlags {
  from?: string;
  to?: string;
  nats?: string;
  creds?: string;
  replicas?: number;
  history?: number;
  help?: boolean;
}

function positiveInt(name: string, v: string | boolean): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new FlagError(`invalid value "${String(v)}" for flag -${name}: a whole number of at least 1`);
  return n;
}

const MIGRATE_FLAGS: readonly FlagSpec<MigrateFlags>[] = [
  { name: "from", arg: "store", help: "source store", set: (f, v) => (f.from = String(v)) },
  { name: "to", arg: "store", help: "target store", set: (f, v) => (f.to = String(v)) },
  { name: "nats", arg: "url", help: "NATS URL(s), comma separated, for kv: stores", set: (f, v) => (f.nats = String(v)) },
  { name: "creds", arg: "file", help: "credentials of a user of the account holding the bucket", set: (f, v) => (f.creds = resolve(String(v))) },
  { name: "replicas", arg: "n", help: "replicas when the bucket is created (default 1)", set: (f, v) => (f.replicas = positiveInt("replicas", v)) },
  {
    name: "history",
    arg: "n",
    help: "versions kept per account when the bucket is created (default 10)",
    set: (f, v) => (f.history = positiveInt("history", v)),
  },
  { name: "h", help: "show this help", set: (f, v) => (f.help = v === true) },
  { name: "help", help: "show this help", set: (f, v) => (f.help = v === true) },
];

export const MIGRATE_USAGE = [
  "Usage: nats-account-server migrate -from <store> -to <store> [options]",
  "",
  "Copies every account JWT from one store to another and verifies the copy by hash.",
  "A store is dir:<path>, dir+shard:<path> or kv:<bucket>.",
  "",
  "Options:",
  ...flagUsage(MIGRATE_FLAGS),
  "",
].join("\n");

/** `migrate` subcommand: Go-style flags of its own. */
async function runMigrate(argv: readonly string[], io: CliIO): Promise<number> {
  let flags: MigrateFlags;
  try {
    flags = parseGoFlags(argv, MIGRATE_FLAGS, {});
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    io.stderr(`${err.message}\n${MIGRATE_USAGE}`);
    return 2;
  }
  if (flags.help) {
    io.stdout(MIGRATE_USAGE);
    return 0;
  }
  const log = createLogger(defaultConfig().logging);
  try {
    const from = parseStoreSpec(flags.from ?? "");
    const to = parseStoreSpec(flags.to ?? "");
    const base = defaultConfig();
    await migrate({
      from,
      to,
      nats: {
        ...base.nats,
        servers: (flags.nats ?? "").split(",").filter((u) => u !== ""),
        ...(flags.creds !== undefined ? { userCredentials: flags.creds } : {}),
      },
      replicas: flags.replicas ?? base.store.replicas,
      history: flags.history ?? base.store.history,
      log,
    });
    return 0;
  } catch (err) {
    log.error(`migration failed: ${errorText(err)}`);
    return 1;
  }
}

/** Entry used by the `nats-account-server` launcher. */
export function run(argv: readonly string[]): void {
  main(argv).then(
    (code) => {
      process.exitCode = code;
      // Nothing else should keep the loop alive once main is done; do not wait for stragglers.
      setImmediate(() => process.exit(code));
    },
    (err: unknown) => {
      process.stderr.write(`${describe(err)}\n`);
      process.exit(1);
    },
  );
}
