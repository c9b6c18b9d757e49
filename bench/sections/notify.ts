/**
 * Notification latency: from the POST being sent to (a) the update message reaching a system
 * account subscriber and (b) a real nats-server having applied it, seen as a user connection
 * being closed because the new account JWT revokes it. The reference publishes the same update
 * straight on NATS, which is what the nats-server side costs without us.
 */
import { request, Agent } from "node:http";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { accountJwt, newIdentity, nowSec, userCreds, type Identity } from "../lib/identity.js";
import { ms, table } from "../lib/report.js";
import { freePort } from "../lib/procs.js";
import { startNats, startOurs, trustFiles, type BenchEnv } from "../lib/servers.js";

export interface NotifyOptions {
  readonly iterations: number;
}

interface Sample {
  readonly subscriber: number;
  readonly applied: number;
  readonly response: number;
}

export interface NotifyFigures {
  readonly ours: Sample[];
  readonly reference: Sample[];
  readonly markdown: string;
}

const enc = new TextEncoder();

function post(agent: Agent, port: number, key: string, jwt: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, method: "POST", path: `/jwt/v1/accounts/${key}`, agent, headers: { "Content-Length": Buffer.byteLength(jwt) } },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end(jwt);
  });
}

function within<T>(p: Promise<T>, msLimit: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_r, rej) => {
      t = setTimeout(() => rej(new Error(`timed out waiting for ${what}`)), msLimit);
    }),
  ]);
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

export async function notifySection(env: BenchEnv, o: NotifyOptions, say: (s: string) => void): Promise<NotifyFigures> {
  const { opFile } = trustFiles(env);
  const sysCreds = join(env.work, "sys.creds");
  writeFileSync(sysCreds, userCreds(env.op.sys, nowSec() - 60).creds);

  const natsPort = await freePort();
  const ours2 = await startOurs(env, { nats: { url: `nats://127.0.0.1:${natsPort}`, credsFile: sysCreds } });
  const ns = await startNats(
    env,
    `operator: "${opFile}"\nsystem_account: ${env.op.sys.pub}\nresolver: URL(http://127.0.0.1:${ours2.port}/jwt/v1/accounts/)\n`,
    natsPort,
  );
  await ours2.proc.waitFor(/connected to NATS/, 30_000);

  const account: Identity = newIdentity("account");
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  let sys: NatsConnection | undefined;
  const users: NatsConnection[] = [];
  try {
    sys = await connect({ servers: ns.url, authenticator: credsAuthenticator(enc.encode(userCreds(env.op.sys).creds)) });
    const waiting = new Map<string, (t: number) => void>();
    sys.subscribe(`$SYS.ACCOUNT.${account.pub}.CLAIMS.UPDATE`, {
      callback: (_e, m) => {
        const t = performance.now();
        const done = waiting.get(m.string());
        if (done) {
          waiting.delete(m.string());
          done(t);
        }
      },
    });
    await sys.flush();
    const first = accountJwt(account.pub, env.op.signer, { name: "NOTIFY" });
    const seenFirst = new Promise<number>((r) => waiting.set(first, r));
    if ((await post(agent, ours2.port, account.pub, first)) !== 200) throw new Error("initial POST refused");
    await within(seenFirst, 5000, "the first notification");

    const run = async (via: "ours" | "reference"): Promise<Sample[]> => {
      const samples: Sample[] = [];
      for (let i = 0; i < o.iterations; i++) {
        const iat = nowSec();
        const { creds, user } = userCreds(account, iat - 1);
        const nc = await connect({ servers: ns.url, authenticator: credsAuthenticator(enc.encode(creds)), reconnect: false });
        users.push(nc);
        // The nats-server fetches the account on the first user connect; make sure it is there.
        await nc.flush();
        const jwt = accountJwt(account.pub, env.op.signer, { name: "NOTIFY", iat, revocations: { [user.pub]: iat } });
        const seen = new Promise<number>((r) => waiting.set(jwt, r));
        const closed = nc.closed().then(() => performance.now());
        const t0 = performance.now();
        let response = NaN;
        if (via === "ours") {
          const status = await post(agent, ours2.port, account.pub, jwt);
          response = performance.now() - t0;
          if (status !== 200) throw new Error(`POST answered ${status}`);
        } else {
          sys!.publish(`$SYS.ACCOUNT.${account.pub}.CLAIMS.UPDATE`, jwt);
        }
        const [tSeen, tClosed] = await within(Promise.all([seen, closed]), 5000, `notification ${i} (${via})`);
        samples.push({ subscriber: tSeen - t0, applied: tClosed - t0, response });
      }
      return samples;
    };
    say(`  ours: ${o.iterations} revoking POSTs`);
    const oursS = await run("ours");
    say(`  reference: ${o.iterations} updates published straight on NATS`);
    const refS = await run("reference");
    const row = (name: string, v: number[], refV: number[] | undefined): Array<string | number> => [
      name,
      v.length,
      ms(percentile(v, 50)),
      ms(percentile(v, 99)),
      ms(Math.max(...v)),
      refV ? ms(percentile(refV, 50)) : "–",
      refV ? ms(percentile(refV, 99)) : "–",
    ];
    const markdown = table(
      ["from POST sent to …", "n", "p50 ms", "p99 ms", "max ms", "ref p50 ms", "ref p99 ms"],
      [
        row("POST answered 200 (durable)", oursS.map((s) => s.response), undefined),
        row("update seen by a $SYS subscriber", oursS.map((s) => s.subscriber), refS.map((s) => s.subscriber)),
        row("nats-server applied it (revoked user disconnected)", oursS.map((s) => s.applied), refS.map((s) => s.applied)),
      ],
    );
    return { ours: oursS, reference: refS, markdown };
  } finally {
    agent.destroy();
    for (const u of users) await u.close().catch(() => {});
    await sys?.close().catch(() => {});
    await ours2.proc.stop();
    await ns.proc.stop();
  }
}
