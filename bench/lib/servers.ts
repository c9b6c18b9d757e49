/**
 * Starting the processes under test: our real CLI (built dist/, through bin/), the reference
 * servers, a nats-server 2.9.10; and how the CLI takes a store cache size, if it has one.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Child, freePort } from "./procs.js";
import type { OperatorSet } from "./identity.js";

export interface BenchEnv {
  readonly root: string;
  /** Temp dir of this run (removed at exit). */
  readonly work: string;
  /** CPU for servers under test, CPU for load generators (undefined: no pinning). */
  readonly serverCpu: number | undefined;
  readonly loadCpu: number | undefined;
  readonly op: OperatorSet;
}

let seq = 0;

export interface OurServer {
  readonly proc: Child;
  readonly port: number;
  readonly base: string;
  readonly dir: string;
  /** ms from spawn until "nats-account-server is running". */
  readonly startMs: number;
}

export interface OurServerOptions {
  readonly storeDir?: string;
  readonly shard?: boolean;
  readonly nats?: { readonly url: string; readonly credsFile: string };
  /** Do not wait for the "running" line (startup measurements wait themselves). */
  readonly noWait?: boolean;
  readonly extraConf?: string;
  /** Lines added inside the `store { }` block. */
  readonly storeConf?: string;
  /** Flags after `-c <file>`. */
  readonly cliArgs?: readonly string[];
  /** Trust a different operator than the run's (a store generated in an earlier run). */
  readonly op?: OperatorSet;
  readonly port?: number;
  /** Extra node flags, e.g. --cpu-prof when investigating. */
  readonly nodeArgs?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
}

/** Write the operator and system account files (of the run's operator: into the run's directory). */
export function trustFiles(env: BenchEnv, op = env.op, dir = env.work): { opFile: string; sysFile: string } {
  const opFile = join(dir, "operator.jwt");
  const sysFile = join(dir, "sys.jwt");
  writeFileSync(opFile, op.operatorJwt);
  writeFileSync(sysFile, op.sysJwt);
  return { opFile, sysFile };
}

/** The node flags the launcher's first line gives (`#!/usr/bin/env -S node <flags>`): runs measure what users run. */
export function launcherFlags(root: string): string[] {
  const first = readFileSync(join(root, "bin/nats-account-server.js"), "utf8").split("\n", 1)[0]!;
  const m = /^#!\S*env -S node(.*)$/.exec(first);
  return m ? m[1]!.trim().split(/\s+/).filter(Boolean) : [];
}

export async function startOurs(env: BenchEnv, o: OurServerOptions = {}): Promise<OurServer> {
  const dir = join(env.work, `ours-${++seq}`);
  mkdirSync(dir, { recursive: true });
  const { opFile, sysFile } = o.op ? trustFiles(env, o.op, dir) : trustFiles(env);
  const port = o.port ?? (await freePort());
  const conf = [
    `operatorjwtpath: "${opFile}"`,
    `systemaccountjwtpath: "${sysFile}"`,
    `http { host: "127.0.0.1", port: ${port} }`,
    `store {\n  dir: "${o.storeDir ?? join(dir, "store")}"\n  shard: ${o.shard ?? true}\n${o.storeConf ?? ""}\n}`,
    o.nats ? `nats { servers: ["${o.nats.url}"], usercredentials: "${o.nats.credsFile}", reconnectwait: 100 }` : "",
    o.extraConf ?? "",
  ].join("\n");
  const confFile = join(dir, "server.conf");
  writeFileSync(confFile, conf + "\n");
  // BENCH_PROFILE_DIR=<dir>: write a V8 CPU profile of each of our server runs there.
  const profile = process.env["BENCH_PROFILE_DIR"] ? ["--cpu-prof", `--cpu-prof-dir=${process.env["BENCH_PROFILE_DIR"]}`] : [];
  const proc = new Child(process.execPath, [...launcherFlags(env.root), ...profile, ...(o.nodeArgs ?? []), join(env.root, "bin/nats-account-server.js"), "-c", confFile, ...(o.cliArgs ?? [])], {
    cpu: env.serverCpu,
    cwd: dir,
    logFile: join(dir, "server.log"),
    ...(o.env ? { env: o.env } : {}),
  });
  const startMs = o.noWait ? NaN : (await proc.waitFor(/nats-account-server is running/, 120_000)) - proc.startedAt;
  return { proc, port, base: `http://127.0.0.1:${port}`, dir, startMs };
}

export interface RefServer {
  readonly proc: Child;
  readonly port: number;
  readonly base: string;
  readonly startMs: number;
}

/** One of the reference servers in bench/ref/ (run through tsx like every bench script). */
export async function startRef(
  env: BenchEnv,
  script: "ceiling" | "durable-ref" | "legacy-ref",
  ...args: readonly string[]
): Promise<RefServer> {
  const port = await freePort();
  const proc = new Child(
    process.execPath,
    ["--import", "tsx", join(env.root, `bench/ref/${script}.ts`), String(port), ...args],
    { cpu: env.serverCpu, cwd: env.root, logFile: join(env.work, `${script}-${++seq}.log`) },
  );
  const startMs = (await proc.waitFor(/listening/, 60_000)) - proc.startedAt;
  return { proc, port, base: `http://127.0.0.1:${port}`, startMs };
}

export interface NatsServerProc {
  readonly proc: Child;
  readonly port: number;
  readonly url: string;
}

export async function startNats(env: BenchEnv, conf: string, fixedPort?: number): Promise<NatsServerProc> {
  const port = fixedPort ?? (await freePort());
  const dir = join(env.work, `nats-${++seq}`);
  mkdirSync(dir, { recursive: true });
  const confFile = join(dir, "server.conf");
  writeFileSync(confFile, `listen: 127.0.0.1:${port}\n${conf}\n`);
  const proc = new Child("nats-server", ["-c", confFile], { cwd: dir, logFile: join(dir, "nats.log") });
  await proc.waitFor(/Server is ready/, 30_000);
  return { proc, port, url: `nats://127.0.0.1:${port}` };
}

/** How the CLI under test takes a response-cache size for its store, as its `--help` tells. */
export interface StoreCacheSupport {
  /** A command-line flag such as `-store_cache`. */
  readonly flag: string | undefined;
  /** `store.cache` / `store { cache: … }` is mentioned (set in the configuration file). */
  readonly config: boolean;
  /** The help line that mentions it, for the report. */
  readonly helpLine: string | undefined;
}

/**
 * Read from `--help`; when it is silent, a probe: a memory-store instance started with
 * `store { cache: … }` and `-dump` has the setting if it neither warns of an unknown key nor
 * leaves the cache out of its effective configuration.
 */
export async function storeCacheSupport(root: string, work: string): Promise<StoreCacheSupport> {
  const cli = join(root, "bin/nats-account-server.js");
  const r = spawnSync(process.execPath, [cli, "--help"], { encoding: "utf8" });
  const fromHelp = parseStoreCacheHelp(`${r.stdout ?? ""}\n${r.stderr ?? ""}`);
  if (fromHelp.flag || fromHelp.config) return fromHelp;
  const conf = join(work, "cache-probe.conf");
  writeFileSync(conf, `http { host: "127.0.0.1", port: ${await freePort()} }\nstore { cache: 1048576 }\n`);
  const probe = new Child(process.execPath, [cli, "-c", conf, "-dump"], { cwd: work, logFile: join(work, "cache-probe.log") });
  try {
    await probe.waitFor(/nats-account-server is running/, 30_000);
  } catch {
    return fromHelp;
  } finally {
    await probe.stop();
  }
  const out = probe.output();
  const config = !/unknown configuration key "store\.cache"/i.test(out) && dumpedStoreCache(out) !== undefined;
  return { flag: undefined, config, helpLine: config ? "store.cache (not in --help; accepted by the configuration)" : undefined };
}

export function parseStoreCacheHelp(help: string): StoreCacheSupport {
  const flag = /(?:^|\s)(--?store[_-]?cache)\b/im.exec(help)?.[1];
  const helpLine = help.split("\n").find((l) => /store[._ -]?cache|store\s*\{[^}]*\bcache\b/i.test(l))?.trim();
  return { flag, config: flag === undefined && helpLine !== undefined, helpLine };
}

/** How to hand `size` (e.g. "64MB" or 67108864) to the CLI: flags, or a line for the store block. */
export function storeCacheArgs(s: StoreCacheSupport, size: string): { cliArgs: string[]; storeConf: string } {
  if (s.flag) return { cliArgs: [s.flag, size], storeConf: "" };
  if (s.config) return { cliArgs: [], storeConf: `  cache: ${/^\d+$/.test(size) ? size : JSON.stringify(size)}` };
  return { cliArgs: [], storeConf: "" };
}

/** The store cache size the server reports in its `-dump` of the effective configuration, if any. */
export function dumpedStoreCache(log: string): string | undefined {
  const store = /"store"\s*:\s*\{[^}]*\}/.exec(log)?.[0] ?? "";
  const m = /"cache\w*"\s*:\s*("[^"]*"|[\d.]+)/i.exec(store);
  if (!m) return undefined;
  const bytes = Number(m[1]);
  return Number.isFinite(bytes) ? `${(bytes / 2 ** 20).toFixed(bytes % 2 ** 20 ? 1 : 0)} MiB` : m[1];
}
