/**
 * `iat` order in a shared bucket under races: 100 versions of one account POSTed at once through
 * two instances, dozens of rounds, idle and with the CPU loaded; the bucket never goes backwards.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";
import { peekClaims } from "../../src/jwt/decode.js";
import { accountJwt, createAccount, makeOperator, nowSec } from "../helpers/fixtures.js";
import { startJetStreamCluster, type JetStreamCluster } from "../helpers/cluster.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { until } from "../nats/kit.js";

const VERSIONS = 100;
const ROUNDS = 24;

describe("kv store - 100-version races through two instances", () => {
  const op = makeOperator();
  let cluster: JetStreamCluster;
  const servers: TestServer[] = [];
  let nc: NatsConnection;
  let kv: KV;

  const start = (i: number): Promise<TestServer> =>
    startServer({
      operator: op,
      store: { type: "kv", bucket: "race", replicas: 3, history: 64, servers: [cluster.urls[i % 3]!, ...cluster.urls] },
    });

  before(async () => {
    cluster = await startJetStreamCluster(3);
    for (let i = 0; i < 2; i++) servers.push(await start(i));
    await until("instances ready", async () => {
      for (const s of servers) if ((await fetch(`${s.base}/readyz`)).status !== 200) return false;
      return true;
    }, 30_000);
    nc = await connect({ servers: cluster.urls[2]! });
    kv = await new Kvm(nc).open("race");
  });

  after(async () => {
    await nc?.close();
    for (const s of servers) await s.stop();
    await cluster?.close();
  });

  /** The `iat` of every bucket revision of `key`, oldest first. */
  const bucketIats = async (key: string): Promise<number[]> => {
    const out: number[] = [];
    for await (const e of await kv.history({ key })) if (e.operation === "PUT") out.push(peekClaims(e.string())!.iat);
    return out;
  };

  /** One round on a fresh account; returns the maximum `iat` and what the bucket recorded. */
  const round = async (n: number): Promise<{ key: string; max: number; iats: number[]; statuses: Map<number, number> }> => {
    const a = createAccount();
    const key = a.getPublicKey();
    const base = nowSec() - 1000;
    const jwts = Array.from({ length: VERSIONS }, (_, i) => accountJwt(a, op.signer, { iat: base + i, name: `r${n}v${i}` }));
    // Shuffled, so neither instance gets the versions in order.
    const order = jwts.map((_, i) => i).sort(() => Math.random() - 0.5);
    const statuses = new Map<number, number>();
    await Promise.all(
      order.map(async (i, j) => {
        const r = await fetch(`${servers[j % 2]!.base}/jwt/v1/accounts/${key}`, { method: "POST", body: jwts[i] });
        await r.text();
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      }),
    );
    return { key, max: base + VERSIONS - 1, iats: await bucketIats(key), statuses };
  };

  const check = (r: Awaited<ReturnType<typeof round>>, label: string): void => {
    const where = `${label}: bucket iat ranks ${r.iats.map((x) => x - r.max + VERSIONS - 1).join(",")} (statuses ${JSON.stringify([...r.statuses])})`;
    for (let i = 1; i < r.iats.length; i++) assert.ok(r.iats[i]! > r.iats[i - 1]!, where);
    assert.equal(r.iats.at(-1), r.max, where);
    // Every upload is answered: stored, identical or older (never a 5xx from lost races).
    for (const s of r.statuses.keys()) assert.ok(s === 200 || s === 409, where);
  };

  const keys: Array<{ key: string; max: number }> = [];

  it(`${ROUNDS} rounds idle: the bucket's revisions rise in iat and end with the newest`, async () => {
    for (let n = 0; n < ROUNDS; n++) {
      const r = await round(n);
      check(r, `idle round ${n}`);
      keys.push(r);
    }
  });

  it(`${ROUNDS} rounds with both cores busy: the same`, async () => {
    // Busy loops in other processes stretch the gaps between a watch delivery and its apply.
    const hogs: ChildProcess[] = Array.from({ length: 2 }, () =>
      // At the lowest priority, so test files running alongside keep their share.
      spawn("nice", ["-n", "19", process.execPath, "-e", "for(;;){}"], { stdio: "ignore" }),
    );
    try {
      for (let n = 0; n < ROUNDS; n++) {
        const r = await round(ROUNDS + n);
        check(r, `loaded round ${n}`);
        keys.push(r);
      }
    } finally {
      for (const h of hogs) h.kill("SIGKILL");
    }
  });

  it("every instance, and one started afterwards, serves the newest version of every account", async () => {
    const late = await start(2);
    servers.push(late);
    await until("late instance ready", async () => (await fetch(`${late.base}/readyz`)).status === 200, 30_000);
    for (const s of servers) {
      for (const { key, max } of keys) {
        await until(`${key} newest on ${s.base}`, async () => {
          const r = await fetch(`${s.base}/jwt/v1/accounts/${key}`);
          return r.status === 200 && peekClaims(await r.text())?.iat === max;
        });
      }
    }
  });
});
