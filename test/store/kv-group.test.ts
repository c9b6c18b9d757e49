/**
 * Three instances sharing a bucket on a three-node operator-mode JetStream cluster, each on its
 * own node: GET misses answer at once (no lookup waits), and node kills announce nothing twice.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { accountJwt, createAccount, makeOperator, userCreds } from "../helpers/fixtures.js";
import { startJetStreamCluster, type JetStreamCluster } from "../helpers/cluster.js";
import { tempDir, writeFile } from "../helpers/processes.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { until } from "../nats/kit.js";

/** Limits that enable JetStream for an account on nats-server 2.9. */
const JETSTREAM = { mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 };

interface LookupHealth {
  asked: number;
  waited_out: number;
}
const natsHealth = (t: TestServer): { connected: boolean; lookups: LookupHealth; notifications_resent: number } =>
  t.server.health()["nats"] as { connected: boolean; lookups: LookupHealth; notifications_resent: number };

const percentile = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;

describe("kv group - misses and announcements on an operator-mode JetStream cluster", () => {
  const op = makeOperator();
  const jsAccount = createAccount();
  const jsCreds = userCreds(jsAccount).creds;
  let cluster: JetStreamCluster;
  const servers: TestServer[] = [];
  /** One system-account subscriber per node: announcements seen, by "key jti". */
  const subs: Array<{ nc: NatsConnection; seen: Map<string, number> }> = [];

  before(async () => {
    const dir = tempDir("kv-group-");
    const opFile = writeFile(dir, "op.jwt", op.operatorJwt);
    const jsJwt = accountJwt(jsAccount, op.signer, { name: "JS", limits: JETSTREAM });
    cluster = await startJetStreamCluster(3, {
      extra:
        `operator: ${JSON.stringify(opFile)}\nsystem_account: ${op.sys.getPublicKey()}\nresolver: MEMORY\n` +
        `resolver_preload { ${op.sys.getPublicKey()}: ${JSON.stringify(op.sysJwt)}, ${jsAccount.getPublicKey()}: ${JSON.stringify(jsJwt)} }\n`,
      creds: jsCreds,
    });
    const sysFile = writeFile(dir, "sys.creds", userCreds(op.sys).creds);
    const jsFile = writeFile(dir, "js.creds", jsCreds);
    for (let i = 0; i < 3; i++) {
      const mine = [cluster.urls[i]!, ...cluster.urls.filter((_, j) => j !== i)];
      servers.push(
        await startServer({
          operator: op,
          systemAccount: true,
          store: { type: "kv", bucket: "group", replicas: 3, history: 5, servers: mine, userCredentials: jsFile },
          nats: { servers: mine, userCredentials: sysFile, reconnectWait: 100, syncInterval: 0 },
        }),
      );
    }
    await until("instances ready and connected", async () => {
      for (const s of servers) if ((await fetch(`${s.base}/readyz`)).status !== 200 || !natsHealth(s).connected) return false;
      return true;
    }, 30_000);
    for (let i = 0; i < 3; i++) {
      const seen = new Map<string, number>();
      // Pinned to its node: a subscriber elsewhere would hide what that node delivered.
      const nc = await connect({
        servers: cluster.urls[i]!,
        authenticator: credsAuthenticator(new TextEncoder().encode(userCreds(op.sys).creds)),
        maxReconnectAttempts: -1,
        reconnectTimeWait: 50,
      });
      nc.subscribe("$SYS.ACCOUNT.*.CLAIMS.UPDATE", {
        callback: (_e, m) => {
          const id = `${m.subject.split(".")[2]} ${JSON.parse(Buffer.from(m.string().split(".")[1]!, "base64url").toString()).jti}`;
          seen.set(id, (seen.get(id) ?? 0) + 1);
        },
      });
      await nc.flush();
      subs.push({ nc, seen });
    }
  });

  after(async () => {
    for (const s of subs) await s.nc.close().catch(() => {});
    for (const s of servers) await s.stop();
    await cluster?.close();
  });

  /** 404 latencies of `n` unknown keys asked one at a time on each instance. */
  const misses = async (label: string, n = 40): Promise<void> => {
    for (const [i, s] of servers.entries()) {
      const before = natsHealth(s).lookups;
      const ms: number[] = [];
      for (let k = 0; k < n; k++) {
        const t0 = performance.now();
        const r = await fetch(`${s.base}/jwt/v1/accounts/${createAccount().getPublicKey()}`);
        await r.text();
        ms.push(performance.now() - t0);
        assert.equal(r.status, 404);
      }
      const after = natsHealth(s).lookups;
      console.log(`# ${label}: instance ${i} 404 p50 ${percentile(ms, 0.5).toFixed(1)} ms, max ${Math.max(...ms).toFixed(1)} ms`);
      assert.equal(after.asked - before.asked, n, "every miss asked the group");
      assert.equal(after.waited_out, before.waited_out, `${label}: a lookup on instance ${i} waited out its timeout`);
    }
  };

  it("unknown keys answer 404 on every instance without waiting for a lookup", async () => {
    await misses("steady state");
  });

  it("the same after a node is SIGKILLed and restarted", async () => {
    await cluster.stop(1);
    await cluster.restart(1);
    await until("instances ready and connected again", async () => {
      for (const s of servers) if ((await fetch(`${s.base}/readyz`)).status !== 200 || !natsHealth(s).connected) return false;
      return true;
    }, 30_000);
    // The restarted node's routes and the instances' reconnects settle on their own schedule.
    await until("every instance answers its group's lookups again", async () => {
      for (const s of servers) {
        const r = await s.server.responder!.lookups.lookup(createAccount().getPublicKey());
        if (r) return false;
      }
      const before = servers.map((s) => natsHealth(s).lookups.waited_out);
      for (const s of servers) await s.server.responder!.lookups.lookup(createAccount().getPublicKey());
      return servers.every((s, i) => natsHealth(s).lookups.waited_out === before[i]);
    }, 30_000);
    await misses("after a node kill");
  });
});
