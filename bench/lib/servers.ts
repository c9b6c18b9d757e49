/**
 * Starting the processes under test: our real CLI (built dist/, through bin/), the reference
 * servers, a nats-server 2.9.10; plus store directories written directly for large stores.
 */
import { mkdirSync, writeFileSync } from "node:fs";
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
  readonly port?: number;
  /** Extra node flags, e.g. --cpu-prof when investigating. */
  readonly nodeArgs?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
}

/** Write the operator and system account files once per run. */
export function trustFiles(env: BenchEnv): { opFile: string; sysFile: string } {
  const opFile = join(env.work, "operator.jwt");
  const sysFile = join(env.work, "sys.jwt");
  writeFileSync(opFile, env.op.operatorJwt);
  writeFileSync(sysFile, env.op.sysJwt);
  return { opFile, sysFile };
}

export async function startOurs(env: BenchEnv, o: OurServerOptions = {}): Promise<OurServer> {
  const dir = join(env.work, `ours-${++seq}`);
  mkdirSync(dir, { recursive: true });
  const { opFile, sysFile } = trustFiles(env);
  const port = o.port ?? (await freePort());
  const conf = [
    `operatorjwtpath: "${opFile}"`,
    `systemaccountjwtpath: "${sysFile}"`,
    `http { host: "127.0.0.1", port: ${port} }`,
    `store { dir: "${o.storeDir ?? join(dir, "store")}", shard: ${o.shard ?? true} }`,
    o.nats ? `nats { servers: ["${o.nats.url}"], usercredentials: "${o.nats.credsFile}", reconnectwait: 100 }` : "",
    o.extraConf ?? "",
  ].join("\n");
  const confFile = join(dir, "server.conf");
  writeFileSync(confFile, conf + "\n");
  // BENCH_PROFILE_DIR=<dir>: write a V8 CPU profile of each of our server runs there.
  const profile = process.env["BENCH_PROFILE_DIR"] ? ["--cpu-prof", `--cpu-prof-dir=${process.env["BENCH_PROFILE_DIR"]}`] : [];
  const proc = new Child(process.execPath, [...profile, ...(o.nodeArgs ?? []), join(env.root, "bin/nats-account-server.js"), "-c", confFile], {
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

/** Write `<dir>/<last 2>/<KEY>.jwt` files directly, as a nats-server `full` resolver or nsc would leave them. */
export function writeShardedStore(dir: string, accounts: ReadonlyArray<readonly [string, string]>): number {
  let bytes = 0;
  const made = new Set<string>();
  for (const [key, jwt] of accounts) {
    const shard = key.slice(-2);
    if (!made.has(shard)) {
      mkdirSync(join(dir, shard), { recursive: true });
      made.add(shard);
    }
    writeFileSync(join(dir, shard, `${key}.jwt`), jwt);
    bytes += jwt.length;
  }
  return bytes;
}
