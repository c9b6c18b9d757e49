/**
 * Soak run, by hand (not part of npm test): a GET/POST/notify mix against the real CLI and a real
 * nats-server for a set time; prints requests served, errors (must be 0), RSS and open fds.
 *
 *   node --import tsx bench/soak.ts --minutes 10 [--concurrency 16] [--accounts 200] [--seed 1]
 */
import { readdirSync, readFileSync } from "node:fs";
import { Agent } from "node:http";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import { accountJwt, createAccount, makeOperator, nowSec, userCreds } from "../test/helpers/fixtures.js";
import { freePort, spawnCli, startNatsServer, tempDir, writeFile } from "../test/helpers/processes.js";
import { eventually, httpCall, portOf, prng } from "../test/helpers/reliability.js";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}

const MINUTES = arg("minutes", 10);
const CONCURRENCY = arg("concurrency", 16);
const ACCOUNTS = arg("accounts", 200);
const SEED = arg("seed", 1);

/** Resident set size (kB) and open file descriptors of a process, from /proc. */
function usage(pid: number): { rssKb: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return { rssKb, fds: readdirSync(`/proc/${pid}/fd`).length };
}

const mb = (kb: number): string => `${(kb / 1024).toFixed(1)} MB`;

async function main(): Promise<number> {
  const rnd = prng(SEED);
  const op = makeOperator();
  const dir = tempDir("nas-soak-");
  const sysCreds = writeFile(dir, "sys.creds", userCreds(op.sys).creds);
  const natsPort = await freePort();
  const conf = writeFile(
    dir,
    "nas.conf",
    `operatorjwtpath: "${writeFile(dir, "op.jwt", op.operatorJwt)}"\n` +
      `systemaccountjwtpath: "${writeFile(dir, "sys.jwt", op.sysJwt)}"\n` +
      `http { host: 127.0.0.1, port: 0 }\nstore { dir: "${dir}/store", shard: true }\n` +
      `nats { servers: ["nats://127.0.0.1:${natsPort}"], reconnectwait: "250ms", usercredentials: "${sysCreds}" }\n` +
      `logging { colors: false }\n`,
  );
  const cli = spawnCli(["-c", conf]);
  const port = await portOf(cli);
  const ns = await startNatsServer(
    `operator: "${writeFile(dir, "op-ns.jwt", op.operatorJwt)}"\nsystem_account: ${op.sys.getPublicKey()}\n` +
      `resolver: URL(http://127.0.0.1:${port}/jwt/v1/accounts/)\n`,
    { port: natsPort },
  );
  await cli.waitFor(/connected to NATS/, 20_000);
  const sub = await connect({ servers: ns.url, authenticator: credsAuthenticator(new TextEncoder().encode(userCreds(op.sys).creds)) });
  let announcements = 0;
  sub.subscribe("$SYS.ACCOUNT.*.CLAIMS.UPDATE", { callback: () => void announcements++ });
  await sub.flush();

  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const keys = Array.from({ length: ACCOUNTS }, () => createAccount().getPublicKey());
  const latest = new Map<string, { jwt: string; etag: string }>();
  const busy = new Set<string>();
  let iat = nowSec() - 1_000_000;
  let served = 0;
  let posts = 0;
  let notifies = 0;
  const errors: string[] = [];
  const failed = (what: string): void => {
    if (errors.length < 20) console.log(`error: ${what}`);
    errors.push(what);
  };

  const upload = async (key: string): Promise<void> => {
    const jwt = accountJwt(key, op.signer, { iat: ++iat, name: `soak-${iat}` });
    const r = await httpCall(port, "POST", `/jwt/v1/accounts/${key}`, { body: jwt, agent });
    if (r.status !== 200) return failed(`POST ${r.status} ${r.body.trim()}`);
    const jti = JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString()).jti as string;
    latest.set(key, { jwt, etag: `"${jti}"` });
    posts++;
  };
  for (const k of keys) await upload(k);

  const before = usage(cli.child.pid!);
  const t0 = Date.now();
  const deadline = t0 + MINUTES * 60_000;
  console.log(`soak: ${MINUTES} min, ${CONCURRENCY} clients, ${ACCOUNTS} accounts, seed ${SEED}`);
  console.log(`start: RSS ${mb(before.rssKb)}, open fds ${before.fds}`);
  let nextReport = t0 + 30_000;

  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < deadline) {
        const key = rnd.pick(keys);
        const roll = rnd.next();
        try {
          if (roll < 0.25 && !busy.has(key)) {
            // One writer per account at a time: every upload is newer, so any 409 is an error.
            busy.add(key);
            try {
              await upload(key);
            } finally {
              busy.delete(key);
            }
          } else if (roll < 0.3) {
            const r = await httpCall(port, "GET", `/jwt/v1/accounts/${key}?notify=true`, { agent });
            if (r.status !== 200) failed(`GET notify ${r.status}`);
            else notifies++;
          } else if (roll < 0.4) {
            const want = latest.get(key)!;
            const r = await httpCall(port, "GET", `/jwt/v1/accounts/${key}`, { agent, headers: { "If-None-Match": want.etag } });
            // A concurrent upload may have replaced it: 200 with a newer JWT is fine too.
            if (r.status !== 304 && r.status !== 200) failed(`GET If-None-Match ${r.status}`);
          } else {
            const r = await httpCall(port, "GET", `/jwt/v1/accounts/${key}`, { agent });
            if (r.status !== 200) failed(`GET ${r.status}`);
          }
          served++;
        } catch (err) {
          failed(`${(err as Error).message}`);
        }
        if (Date.now() >= nextReport) {
          nextReport += 30_000;
          const u = usage(cli.child.pid!);
          console.log(`${Math.round((Date.now() - t0) / 1000)} s: ${served} requests, ${errors.length} errors, RSS ${mb(u.rssKb)}, fds ${u.fds}`);
        }
      }
    }),
  );
  const seconds = (Date.now() - t0) / 1000;
  agent.destroy();
  // Every accepted change and every notify=true is announced exactly once.
  const expected = posts + notifies;
  try {
    await eventually("announcements", async () => {
      await sub.flush();
      return announcements >= expected ? true : undefined;
    }, 30_000);
  } catch {
    failed(`announced ${announcements} of ${expected}`);
  }
  if (announcements > expected) failed(`announced ${announcements}, more than the ${expected} changes and notifies`);
  // Let the server see the clients' connections close before counting its descriptors.
  const after = await eventually("connections closed", async () => {
    const u = usage(cli.child.pid!);
    return u.fds <= before.fds ? u : undefined;
  }, 5_000).catch(() => usage(cli.child.pid!));
  await sub.close();
  const code = await cli.stop("SIGTERM");
  if (code !== 0) failed(`CLI exited with ${code}`);
  await ns.stop();

  console.log(`requests served: ${served} (${Math.round(served / seconds)}/s; ${posts} uploads incl. ${ACCOUNTS} initial, ${notifies} notify=true)`);
  console.log(`announcements:   ${announcements}`);
  console.log(`errors:          ${errors.length}`);
  console.log(`RSS:             start ${mb(before.rssKb)}, end ${mb(after.rssKb)}`);
  console.log(`open fds:        start ${before.fds}, end ${after.fds}`);
  console.log(JSON.stringify({ minutes: MINUTES, served, errors: errors.length, rssKb: [before.rssKb, after.rssKb], fds: [before.fds, after.fds] }));
  return errors.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
