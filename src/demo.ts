/**
 * `nats-account-server demo`: the whole job on a fresh machine, in a temporary directory: a
 * throwaway operator and accounts, this server, a nats-server, a push, a live revocation.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { defaultConfig, type Config } from "./config/types.js";
import { errorText } from "./errors.js";
import { formatCreds, mintKey, signClaims, type SigningKey } from "./jwt/index.js";

type MintedKey = SigningKey & { readonly seed: string };
import { silentLogger } from "./log.js";
import { AccountServer } from "./server.js";

export const DEMO_USAGE = `Usage: nats-account-server demo [--keep] [--nats-server <path>]

Shows the whole job on this machine, printing each step: makes a throwaway operator (with a
signing key), a system account and accounts A and B in a temporary directory, starts this
account server and a nats-server using it as resolver, pushes the accounts, connects a user of
A, revokes the user and shows that the nats-server disconnected it. Everything is removed on
exit or Ctrl-C. Without nats-server installed it says how to install it and shows the HTTP half.

Options:
  --keep                 leave the temporary directory (its path is printed)
  --nats-server <path>   the nats-server binary (default: nats-server on PATH)
`;

export interface DemoIO {
  readonly out: (line: string) => void;
}

interface DemoOptions {
  readonly keep: boolean;
  readonly natsServer: string | undefined;
}

/** The nats-server binary named, or the one on PATH; undefined when there is none. */
function findNatsServer(named: string | undefined): string | undefined {
  const candidates = named !== undefined ? [named] : (process.env["PATH"] ?? "").split(delimiter).map((d) => join(d, "nats-server"));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not this one
    }
  }
  return undefined;
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const nowSec = (): number => Math.floor(Date.now() / 1000);

const UNLIMITED = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };

function accountJwt(account: MintedKey, name: string, signer: MintedKey, iat: number, revocations?: Record<string, number>): string {
  return signClaims(
    {
      name,
      sub: account.publicKey,
      nats: {
        limits: UNLIMITED,
        default_permissions: { pub: {}, sub: {} },
        ...(revocations ? { revocations } : {}),
        type: "account",
        version: 2,
      },
    },
    signer,
    iat,
  );
}

function userCreds(user: MintedKey, account: MintedKey, iat: number): string {
  const jwt = signClaims(
    { name: "demo-user", sub: user.publicKey, nats: { pub: {}, sub: {}, subs: -1, data: -1, payload: -1, type: "user", version: 2 } },
    account,
    iat,
  );
  return formatCreds(jwt, user.seed);
}

/** Everything the demo started, stopped in reverse order whatever step it reached. */
class Resources {
  dir: string | undefined;
  keep = false;
  server: AccountServer | undefined;
  nats: ChildProcess | undefined;
  natsExited: Promise<void> | undefined;
  clients: NatsConnection[] = [];
  private done: Promise<void> | undefined;

  cleanup(out: (l: string) => void): Promise<void> {
    this.done ??= (async () => {
      for (const c of this.clients) await c.close().catch(() => {});
      if (this.nats && this.nats.exitCode === null && this.nats.signalCode === null) {
        this.nats.kill("SIGTERM");
        await this.natsExited;
      }
      await this.server?.stop(500);
      if (this.dir !== undefined) {
        if (this.keep) out(`kept ${this.dir}`);
        else rmSync(this.dir, { recursive: true, force: true });
      }
    })();
    return this.done;
  }
}

function parseDemoArgs(argv: readonly string[]): DemoOptions | string {
  let keep = false;
  let natsServer: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--keep" || a === "-keep") keep = true;
    else if (a === "--nats-server" || a === "-nats-server") {
      natsServer = argv[++i];
      if (natsServer === undefined) return "flag needs an argument: --nats-server";
    } else return `unexpected argument "${a}"`;
  }
  return { keep, natsServer };
}

/** Run the demo; resolves with the exit code (0 done, 1 a step failed, 2 bad arguments, 130 Ctrl-C). */
export async function runDemo(argv: readonly string[], io: DemoIO): Promise<number> {
  if (argv.includes("-h") || argv.includes("--help")) {
    io.out(DEMO_USAGE.trimEnd());
    return 0;
  }
  const opts = parseDemoArgs(argv);
  if (typeof opts === "string") {
    io.out(`${opts}\n${DEMO_USAGE.trimEnd()}`);
    return 2;
  }
  const res = new Resources();
  res.keep = opts.keep;
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
    io.out("\ninterrupted, cleaning up");
    void res.cleanup(io.out).then(() => process.exit(130));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    await steps(opts, res, io.out);
    return 0;
  } catch (err) {
    if (interrupted) return 130;
    io.out(`demo failed: ${errorText(err)}`);
    return 1;
  } finally {
    await res.cleanup(io.out);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

async function steps(opts: DemoOptions, res: Resources, out: (l: string) => void): Promise<void> {
  let n = 0;
  const step = (text: string): void => out(`${++n}. ${text}`);
  const dir = mkdtempSync(join(tmpdir(), "nas-demo-"));
  res.dir = dir;

  const operator = mintKey("operator");
  const signer = mintKey("operator");
  const sys = mintKey("account");
  const a = mintKey("account");
  const b = mintKey("account");
  const iat = nowSec();
  const operatorJwt = signClaims(
    {
      name: "DEMO",
      sub: operator.publicKey,
      nats: { signing_keys: [signer.publicKey], system_account: sys.publicKey, type: "operator", version: 2 },
    },
    operator,
    iat,
  );
  const sysJwt = accountJwt(sys, "SYS", signer, iat);
  const jwtA = accountJwt(a, "A", signer, iat);
  const jwtB = accountJwt(b, "B", signer, iat);
  writeFileSync(join(dir, "DEMO.jwt"), operatorJwt);
  writeFileSync(join(dir, "SYS.jwt"), sysJwt);
  writeFileSync(join(dir, "sys.creds"), userCreds(mintKey("user"), sys, iat), { mode: 0o600 });
  step(`made a throwaway operator DEMO in ${dir}`);
  out(`   operator     ${operator.publicKey}`);
  out(`   signing key  ${signer.publicKey}`);
  out(`   SYS          ${sys.publicKey}`);
  out(`   A            ${a.publicKey}`);
  out(`   B            ${b.publicKey}`);

  const natsServer = findNatsServer(opts.natsServer);
  const natsPort = await freeLoopbackPort();
  const d = defaultConfig();
  const config: Config = {
    ...d,
    operatorJwtPath: join(dir, "DEMO.jwt"),
    systemAccountJwtPath: join(dir, "SYS.jwt"),
    http: { ...d.http, host: "127.0.0.1", port: 0 },
    store: { ...d.store, dir: join(dir, "store"), shard: true },
    nats: natsServer
      ? { ...d.nats, servers: [`nats://127.0.0.1:${natsPort}`], userCredentials: join(dir, "sys.creds"), reconnectWait: 200 }
      : d.nats,
  };
  const server = await AccountServer.start({ config, log: silentLogger });
  res.server = server;
  const base = `http://127.0.0.1:${server.port}`;
  step(`started the account server: ${base}, directory store ${join(dir, "store")}`);

  if (!natsServer) {
    out("");
    out("   nats-server is not installed, so this demo shows the HTTP half only. To see the rest:");
    out("     Debian/Ubuntu: sudo apt-get install nats-server");
    out("     other systems: https://github.com/nats-io/nats-server/releases (or `go install github.com/nats-io/nats-server/v2@latest`)");
    out("   then run `nats-account-server demo` again (or pass --nats-server <path>).");
    out("");
    await push(base, [["SYS", sys, sysJwt], ["A", a, jwtA], ["B", b, jwtB]], step);
    const r = await fetch(`${base}/jwt/v1/accounts/${a.publicKey}?decode=true`);
    const decoded = await r.text();
    step(`GET ${base}/jwt/v1/accounts/${a.publicKey.slice(0, 12)}…?decode=true → ${r.status}, claims of A:`);
    for (const line of decoded.split("\n").filter((l) => /"(name|iss|sub|type)"/.test(l))) out(`   ${line.trim()}`);
    step("done (HTTP half); cleaning up");
    return;
  }

  const conf = join(dir, "nats-server.conf");
  writeFileSync(
    conf,
    [
      `listen: 127.0.0.1:${natsPort}`,
      `operator: ${JSON.stringify(join(dir, "DEMO.jwt"))}`,
      `system_account: ${sys.publicKey}`,
      `resolver: URL(${server.resolverUrl})`,
      "",
    ].join("\n"),
  );
  const child = spawn(natsServer, ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
  res.nats = child;
  res.natsExited = new Promise((r) => child.once("exit", () => r()));
  await new Promise<void>((resolve, reject) => {
    let log = "";
    const timer = setTimeout(() => reject(new Error(`nats-server did not start within 15 s:\n${log}`)), 15_000);
    child.stderr!.on("data", (c: Buffer) => {
      log += c.toString();
      if (log.includes("Server is ready")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited with ${code}:\n${log}`));
    });
  });
  step(`started nats-server (${natsServer}) on nats://127.0.0.1:${natsPort} with resolver: URL(${server.resolverUrl})`);
  await until("the account server to connect to NATS", () => server.notifier.connected, 10_000);
  step("the account server connected to NATS as a SYS user, for notifications");

  await push(base, [["A", a, jwtA], ["B", b, jwtB]], step);

  const user = mintKey("user");
  const userIat = nowSec() - 1;
  const nc = await connect({
    servers: `127.0.0.1:${natsPort}`,
    authenticator: credsAuthenticator(new TextEncoder().encode(userCreds(user, a, userIat))),
    reconnect: false,
    name: "demo-user",
  });
  res.clients.push(nc);
  const sub = nc.subscribe("demo.greeting", { max: 1 });
  nc.publish("demo.greeting", "hello from A");
  for await (const m of sub) step(`user ${user.publicKey.slice(0, 12)}… of A connected and received "${m.string()}"`);

  const closed = nc.closed();
  const revoked = accountJwt(a, "A", signer, Math.max(nowSec(), iat), { [user.publicKey]: nowSec() });
  const r = await fetch(`${base}/jwt/v1/accounts/${a.publicKey}`, { method: "POST", body: revoked });
  if (r.status !== 200) throw new Error(`the revoking update was refused: ${r.status} ${await r.text()}`);
  step("revoked the user: pushed a new JWT of A listing it in revocations (200); the account server announced it");
  const err = await Promise.race([
    closed,
    new Promise<never>((_r, reject) => setTimeout(() => reject(new Error("the user was not disconnected within 10 s")), 10_000)),
  ]);
  step(`the nats-server disconnected the user: ${err ? err.message : "connection closed"}`);
  step("done; stopping nats-server and the account server, removing the directory");
}

async function push(base: string, accounts: Array<[string, MintedKey, string]>, step: (t: string) => void): Promise<void> {
  for (const [name, key, jwt] of accounts) {
    const r = await fetch(`${base}/jwt/v1/accounts/${key.publicKey}`, { method: "POST", body: jwt });
    const body = await r.text();
    if (r.status !== 200) throw new Error(`pushing ${name} was refused: ${r.status} ${body}`);
    step(`pushed account ${name} (POST /jwt/v1/accounts/${key.publicKey.slice(0, 12)}…) → 200`);
  }
}

async function until(what: string, cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
