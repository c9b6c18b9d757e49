/**
 * The benchmark suite: builds the CLI, runs it for real, measures GET/POST/notification/startup
 * figures each next to a reference from the same run, prints the tables (and writes RESULTS.md).
 *
 *   node --import tsx bench/run.ts [--quick] [--only=http,post,notify,startup] [--write] [--no-build]
 *                                  [--budget=SECONDS] [--accounts=N[,N…]] [--store-cache=SIZE]
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { makeOperator } from "./lib/identity.js";
import { cleanupAll, HAS_TASKSET, runSync, tempDir } from "./lib/procs.js";
import { machine } from "./lib/report.js";
import { storeCacheSupport, type BenchEnv } from "./lib/servers.js";
import { targetsTable, type RunFigures } from "./lib/targets.js";
import { httpSection } from "./sections/http.js";
import { notifySection } from "./sections/notify.js";
import { postSection } from "./sections/post.js";
import { startupSection } from "./sections/startup.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const SECTIONS = ["http", "post", "notify", "startup"] as const;
type Section = (typeof SECTIONS)[number];

interface Args {
  readonly quick: boolean;
  readonly write: boolean;
  readonly build: boolean;
  readonly only: ReadonlySet<Section>;
  readonly budgetSec: number;
  /** Store sizes of the startup section. */
  readonly accounts: readonly number[];
  /** Response-cache size handed to the server, when it has the setting. */
  readonly storeCache: string | undefined;
}

const USAGE =
  "usage: node --import tsx bench/run.ts [--quick] [--only=http,post,notify,startup] [--write] [--no-build]\n" +
  "         [--budget=SECONDS] [--accounts=N[,N…]] [--store-cache=SIZE]\n";

/** `1000000`, `1e6`, `1M`, `100k`, `10_000`. */
function count(s: string): number {
  const m = /^([\d_.e]+)([km]?)$/i.exec(s.trim());
  const n = m ? Number(m[1]!.replace(/_/g, "")) * ({ k: 1e3, m: 1e6 }[m[2]!.toLowerCase()] ?? 1) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--accounts: not a number of accounts: ${s}`);
  return n;
}

function parseArgs(argv: readonly string[]): Args {
  let quick = false;
  let write = false;
  let build = true;
  let only = new Set<Section>(SECTIONS);
  let budgetSec = 60 * 60;
  let accounts: number[] | undefined;
  let storeCache: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    // `--name=value` or `--name value`.
    const value = (name: string): string | undefined => {
      if (a.startsWith(`${name}=`)) return a.slice(name.length + 1);
      if (a !== name) return undefined;
      const v = argv[++i];
      if (v === undefined) throw new Error(`${name} needs a value`);
      return v;
    };
    let v: string | undefined;
    if (a === "--quick") quick = true;
    else if (a === "--write") write = true;
    else if (a === "--no-build") build = false;
    else if ((v = value("--only")) !== undefined) {
      only = new Set();
      for (const s of v.split(",")) {
        if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`unknown section ${s}; one of ${SECTIONS.join(", ")}`);
        only.add(s as Section);
      }
    } else if ((v = value("--budget")) !== undefined) budgetSec = Number(v);
    else if ((v = value("--accounts")) !== undefined) accounts = v.split(",").map(count);
    else if ((v = value("--store-cache")) !== undefined) storeCache = v;
    else if (a === "--help" || a === "-h") {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  accounts ??= quick ? [10_000] : [10_000, 100_000, 1_000_000];
  return { quick, write, build, only, budgetSec, accounts, storeCache };
}

/** The server code measured: the last commit that changed src/ or bin/, "+dirty" with uncommitted changes there. */
function commitOf(root: string): string {
  const git = (...a: string[]): string => spawnSync("git", ["-C", root, ...a], { encoding: "utf8" }).stdout?.trim() ?? "";
  const last = git("log", "-1", "--format=%h %cs", "--", "src", "bin") || "unknown";
  return git("status", "--porcelain", "--", "src", "bin") ? `${last} +dirty` : last;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  // The whole run is bounded: past the budget everything is killed and the run fails.
  const budget = setTimeout(() => {
    process.stderr.write(`benchmark exceeded its budget of ${args.budgetSec} s; stopping\n`);
    cleanupAll();
    process.exit(3);
  }, args.budgetSec * 1000);
  budget.unref();

  const say = (s: string): void => void process.stderr.write(`${s}\n`);
  if (args.build) {
    say("building dist/ (tsc -p tsconfig.build.json)");
    runSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], ROOT);
  }
  const work = tempDir("nas-bench-");
  const twoCpus = HAS_TASKSET && cpus().length >= 2;
  const env: BenchEnv = {
    root: ROOT,
    work,
    serverCpu: twoCpus ? 0 : undefined,
    loadCpu: twoCpus ? 1 : undefined,
    op: makeOperator(),
  };
  const started = new Date();
  const parts: string[] = [];
  const figures: { -readonly [K in keyof RunFigures]: RunFigures[K] } = {};
  const t0 = performance.now();

  if (args.only.has("http")) {
    say("GET throughput and latency");
    figures.http = await httpSection(
      env,
      { durationSec: args.quick ? 2 : 5, warmupSec: 1, connections: [1, 10, 50], rounds: args.quick ? 1 : 2 },
      say,
    );
    parts.push(
      "## GET: stored account, unknown account, resolver probe\n\n" +
        "Each run: 1 s warm-up, then " +
        `${args.quick ? 2 : 5} s measured; latency over every response; the ceiling and our scenarios are ` +
        `interleaved and each figure is the best (by req/s) of ${args.quick ? 1 : 2} round(s). The ceiling is a minimal node:http ` +
        "server answering the same JWT from memory with precomputed headers (bench/ref/ceiling.ts). " +
        "CPU µs/req is the server process's user+system CPU time (from /proc) divided by the requests it " +
        "answered, the least over the rounds: unlike req/s it hardly moves when other work shares the machine. " +
        "With a closed-loop load generator, latency at N connections is about N / (req/s) (Little's law).\n\n" +
        figures.http.markdown,
    );
  }
  if (args.only.has("post")) {
    say("durable uploads");
    const p = (figures.post = await postSection(env, { uploads: args.quick ? 3000 : 10_000, connections: 50 }, say));
    parts.push(
      "## POST of new valid account JWTs (durable writes)\n\n" +
        "Every upload is a new account, signed by the operator's signing key. Ours answers 200 once the " +
        "change is durable in the store's write-ahead journal (one fdatasync shared by the uploads that " +
        "arrived together) and the file is in place; the files are fsynced by the next checkpoint. The " +
        "legacy-equivalent reference (bench/ref/legacy-ref.ts) does per upload what the Go server does: " +
        "decode the JWT, check the subject is the URL's key and an operator key issued it, verify the " +
        "Ed25519 signature (node:crypto), write the file (temp + rename, no fsync). The durable reference " +
        "(bench/ref/durable-ref.ts) checks nothing and fsyncs each file and its directory before answering. " +
        "CPU µs/upload is the server process's user+system time divided by the uploads (warm-up included): " +
        "the server is pinned to one CPU and CPU-bound, so this is the figure that explains the rate.\n\n" +
        p.markdown,
    );
  }
  if (args.only.has("notify")) {
    say("notification latency");
    const n = await notifySection(env, { iterations: args.quick ? 50 : 200 }, say);
    parts.push(
      "## Notification latency (one POST at a time)\n\n" +
        "Each iteration connects a new user of the account, then POSTs an account JWT revoking it. " +
        "Reference: the same JWT published directly on `$SYS.ACCOUNT.<key>.CLAIMS.UPDATE` by a system " +
        "account client (nats-server 2.9.10 with a URL resolver pointing at our server).\n\n" +
        n.markdown,
    );
  }
  if (args.only.has("startup")) {
    say("startup with large stores");
    const support = await storeCacheSupport(ROOT, work);
    say(
      support.flag || support.config
        ? `  the server takes a store cache size (${support.flag ?? "store.cache"}): ${args.storeCache ?? "its default"}`
        : "  the server has no store cache setting in its --help",
    );
    const s = (figures.startup = await startupSection(
      env,
      { sizes: args.accounts, storeCache: args.storeCache, cacheSupport: support, connections: 20 },
      say,
    ));
    parts.push(
      "## Startup and memory with a sharded directory store\n\n" +
        "Times are from spawning `node bin/nats-account-server.js` to the log line, or to the first " +
        "200 for the most recently written account. RSS ready is taken at that first 200; the cold GETs " +
        "ask for every account once (in the order written, 20 connections) after the index is complete. " +
        (support.flag || support.config
          ? `Store cache: ${args.storeCache ?? "the server's default"} (help: \`${support.helpLine ?? support.flag}\`).`
          : "The server under test has no store cache setting.") +
        "\n\n" +
        s.markdown,
    );
  }

  const header =
    `# Benchmark results\n\n${started.toISOString().slice(0, 10)}, ` +
    `${args.quick ? "quick run" : "full run"} in ${((performance.now() - t0) / 1000).toFixed(0)} s ` +
    `(\`node --import tsx bench/run.ts${process.argv.slice(2).map((a) => ` ${a}`).join("")}\`), ` +
    `server commit ${commitOf(ROOT)}\n\n` +
    machine(work) +
    "\n";
  const summary = targetsTable(figures);
  if (summary) parts.unshift("## Targets\n\n" + summary);
  const text = [header, ...parts].join("\n\n") + "\n";
  process.stdout.write("\n" + text);
  if (args.write) {
    writeFileSync(join(ROOT, "bench/RESULTS.md"), text);
    say("wrote bench/RESULTS.md");
  }
}

main().then(
  () => {
    cleanupAll();
    process.exit(0);
  },
  (err: unknown) => {
    process.stderr.write(`benchmark failed: ${(err as Error)?.stack ?? String(err)}\n`);
    cleanupAll();
    process.exit(1);
  },
);
