/**
 * GET-miss (404) latency in each deployment shape: a directory store alone, one connected to a
 * URL-resolver nats-server, and three instances sharing a bucket on a 3-node JetStream cluster.
 *
 *   node --import tsx bench/misses.ts [--n=200]
 *
 * Misses are asked one at a time (unknown, valid account keys); p50/p99/max in ms per instance.
 */
import { join } from "node:path";
import { accountJwt, createAccount, makeOperator, userCreds } from "../test/helpers/fixtures.js";
import { startJetStreamCluster } from "../test/helpers/cluster.js";
import { freePort, startNatsServer, tempDir, writeFile } from "../test/helpers/processes.js";
import { startServer, type TestServer } from "../test/helpers/server.js";

const N = Number(process.argv.find((a) => a.startsWith("--n="))?.slice(4) ?? 200);
const op = makeOperator();

const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;

async function misses(label: string, t: TestServer): Promise<void> {
  const ms: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    const r = await fetch(`${t.base}/jwt/v1/accounts/${createAccount().getPublicKey()}`);
    await r.text();
    if (r.status !== 404) throw new Error(`${label}: expected 404, got ${r.status}`);
    ms.push(performance.now() - t0);
  }
  const f = (x: number): string => x.toFixed(1).padStart(8);
  console.log(`${label.padEnd(44)} ${f(pct(ms, 0.5))} ${f(pct(ms, 0.99))} ${f(Math.max(...ms))}`);
}

async function main(): Promise<void> {
  console.log(`${N} sequential GETs of unknown accounts, ms`);
  console.log(`${"shape".padEnd(44)} ${"p50".padStart(8)} ${"p99".padStart(8)} ${"max".padStart(8)}`);
  const dir = tempDir("bench-misses-");
  const sysFile = writeFile(dir, "sys.creds", userCreds(op.sys).creds);

  const alone = await startServer({ operator: op, store: { dir: join(dir, "alone") } });
  await misses("dir store, no NATS", alone);
  await alone.stop();

  const port = await freePort();
  const linked = await startServer({
    operator: op,
    store: { dir: join(dir, "linked") },
    nats: { servers: [`nats://127.0.0.1:${port}`], userCredentials: sysFile, syncInterval: 0, reconnectWait: 100 },
  });
  const url = await startNatsServer(
    `operator: ${JSON.stringify(writeFile(dir, "op.jwt", op.operatorJwt))}\nsystem_account: ${op.sys.getPublicKey()}\n` +
      `resolver: URL(${linked.server.resolverUrl})\n`,
    { port },
  );
  await waitConnected(linked);
  await misses("dir store + URL-resolver nats-server", linked);
  await linked.stop();
  await url.stop();

  const js = createAccount();
  const jsCreds = userCreds(js).creds;
  const cluster = await startJetStreamCluster(3, {
    extra:
      `operator: ${JSON.stringify(writeFile(dir, "op2.jwt", op.operatorJwt))}\nsystem_account: ${op.sys.getPublicKey()}\nresolver: MEMORY\n` +
      `resolver_preload { ${op.sys.getPublicKey()}: ${JSON.stringify(op.sysJwt)}, ${js.getPublicKey()}: ${JSON.stringify(
        accountJwt(js, op.signer, { limits: { mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 } }),
      )} }\n`,
    creds: jsCreds,
  });
  const jsFile = writeFile(dir, "js.creds", jsCreds);
  const group: TestServer[] = [];
  for (let i = 0; i < 3; i++) {
    const mine = [cluster.urls[i]!, ...cluster.urls.filter((_, j) => j !== i)];
    group.push(
      await startServer({
        operator: op,
        store: { type: "kv", bucket: "bench", replicas: 3, servers: mine, userCredentials: jsFile },
        nats: { servers: mine, userCredentials: sysFile, syncInterval: 0 },
      }),
    );
  }
  for (const g of group) await waitConnected(g);
  for (const [i, g] of group.entries()) await misses(`kv group of 3, instance ${i}`, g);
  await cluster.stop(1);
  await cluster.restart(1);
  for (const g of group) await waitConnected(g);
  for (const [i, g] of group.entries()) await misses(`kv group, node 1 killed+restarted, inst. ${i}`, g);
  for (const g of group) await g.stop();
  await cluster.close();
}

async function waitConnected(t: TestServer): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const h = t.server.health() as { store: { ready: boolean }; nats: { connected: boolean } };
    if (h.store.ready && h.nats.connected) return;
    if (Date.now() > deadline) throw new Error("instance never became ready");
    await new Promise((r) => setTimeout(r, 50));
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
