/**
 * No lost notifications: updates accepted while NATS is unreachable, while a nats-server restarts,
 * or before our own server is killed (even with a torn outbox) reach NATS, newest JWT winning.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { accountJwt, createAccount, makeOperator, nowSec, userCreds, type KeyPair } from "../helpers/fixtures.js";
import { freePort, spawnCli, startNatsServer, tempDir, writeFile, type NatsServer, type Proc } from "../helpers/processes.js";
import { durablyPending, eventually, Gate, httpCall, outboxKeys, portOf } from "../helpers/reliability.js";
import { startServer } from "../helpers/server.js";

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

const creds = (kp: KeyPair): Uint8Array => new TextEncoder().encode(userCreds(kp).creds);

interface AccountDetail {
  jwt?: string;
  client_connections?: number;
}

/** What a nats-server holds for an account (monitoring endpoint); undefined when not loaded. */
/** A nats-server (MEMORY resolver) on `port` and a system-account client of it, both stopped after the tests. */
async function systemSubscriber(op: ReturnType<typeof makeOperator>, dir: string, port: number): Promise<NatsConnection> {
  const ns = await startNatsServer(
    `operator: "${writeFile(dir, "op-ns.jwt", op.operatorJwt)}"\nsystem_account: ${op.sys.getPublicKey()}\n` +
      `resolver: MEMORY\nresolver_preload: { ${op.sys.getPublicKey()}: "${op.sysJwt}" }\n`,
    { port },
  );
  cleanups.push(() => ns.stop());
  const sub = await connect({ servers: ns.url, authenticator: credsAuthenticator(creds(op.sys)) });
  cleanups.push(() => sub.close());
  return sub;
}

async function accountAt(monitorPort: number, key: string): Promise<AccountDetail | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${monitorPort}/accountz?acc=${key}`)).text();
  try {
    return (JSON.parse(text) as { account_detail?: AccountDetail }).account_detail;
  } catch {
    return undefined; // "Account ... does not exist" while it is not loaded
  }
}

async function appliedJwt(monitorPort: number, key: string): Promise<string | undefined> {
  return (await accountAt(monitorPort, key))?.jwt;
}

async function clientsOf(monitorPort: number, key: string): Promise<number> {
  return (await accountAt(monitorPort, key))?.client_connections ?? 0;
}

describe("reliability - no lost notifications", () => {
  it("a nats-server restarted in the middle of a stream of updates ends with the newest JWT of every account", async () => {
    const op = makeOperator();
    const signer = op.signer;
    const dir = tempDir("nas-outage-");
    const natsPort = await freePort();
    const monitorPort = await freePort();
    const gate = new Gate(await freePort(), natsPort);
    cleanups.push(() => gate.close());
    const conf = writeFile(
      dir,
      "nas.conf",
      `operatorjwtpath: "${writeFile(dir, "op.jwt", op.operatorJwt)}"\n` +
        `systemaccountjwtpath: "${writeFile(dir, "sys.jwt", op.sysJwt)}"\n` +
        `http { host: 127.0.0.1, port: 0 }\nstore { dir: "${dir}/store" }\n` +
        `nats { servers: ["nats://127.0.0.1:${gate.port}"], reconnectwait: "100ms", usercredentials: "${writeFile(dir, "sys.creds", userCreds(op.sys).creds)}" }\n` +
        `logging { colors: false }\n`,
    );
    const cli = spawnCli(["-c", conf]);
    cleanups.push(() => cli.stop("SIGKILL"));
    const port = await portOf(cli);

    const accounts = Array.from({ length: 4 }, () => createAccount());
    const keys = accounts.map((a) => a.getPublicKey());
    const newest = new Map<string, string>();
    let iat = nowSec() - 10_000;
    const post = async (i: number, o: { limits?: Record<string, unknown> } = {}): Promise<void> => {
      const jwt = accountJwt(keys[i]!, signer, { iat: ++iat, name: `v${iat}`, ...o });
      const r = await httpCall(port, "POST", `/jwt/v1/accounts/${keys[i]}`, { body: jwt });
      assert.equal(r.status, 200, r.body);
      newest.set(keys[i]!, jwt);
    };
    for (let i = 0; i < keys.length; i++) await post(i);

    const natsConf =
      `operator: "${writeFile(dir, "op-ns.jwt", op.operatorJwt)}"\nsystem_account: ${op.sys.getPublicKey()}\n` +
      `resolver: URL(http://127.0.0.1:${port}/jwt/v1/accounts/)\nhttp: 127.0.0.1:${monitorPort}\n`;
    const nsDir = tempDir("nats-outage-");
    let ns: NatsServer = await startNatsServer(natsConf, { port: natsPort, dir: nsDir });
    cleanups.push(() => ns.stop());
    await gate.open();
    await cli.waitFor(/connected to NATS/);

    // One user per account keeps the account loaded in the nats-server (and reconnects fast).
    const users: NatsConnection[] = [];
    for (const a of accounts) {
      const nc = await connect({
        servers: `nats://127.0.0.1:${natsPort}`,
        authenticator: credsAuthenticator(creds(a)),
        reconnectTimeWait: 50,
        maxReconnectAttempts: -1,
      });
      users.push(nc);
      cleanups.push(() => nc.close());
    }

    // A stream of updates, round robin, while the test cuts and restarts things underneath.
    let streaming = true;
    let posted = 0;
    const stream = (async () => {
      for (let n = 0; streaming; n++) {
        await post(n % keys.length);
        posted++;
      }
    })();
    const afterMore = async (count: number): Promise<void> => {
      const target = posted + count;
      await eventually(`${count} more updates`, async () => (posted >= target ? true : undefined));
    };

    await afterMore(8);
    // Our link loses NATS (gate closed) and the nats-server dies, mid-stream.
    await gate.close();
    await ns.proc.stop("SIGKILL");
    await afterMore(8);
    ns = await startNatsServer(natsConf, { port: natsPort, dir: nsDir });
    // The users come back and their accounts load again; our link is still cut off.
    for (const k of keys) await eventually(`a user of ${k} back`, async () => ((await clientsOf(monitorPort, k)) > 0 ? true : undefined));
    await afterMore(8);
    streaming = false;
    await stream;
    // The last version of each account lowers the connection limit: checkable by a user.
    for (let i = 0; i < keys.length; i++) await post(i, { limits: { conn: 1 } });
    const health = (await httpCall(port, "GET", "/healthz")).body;
    assert.match(health, /"connected":false/);
    let stale = 0;
    for (const k of keys) if ((await appliedJwt(monitorPort, k)) !== newest.get(k)) stale++;
    assert.equal(stale, keys.length, "the nats-server must not have the newest JWTs before our link is back");

    await gate.open();
    await cli.waitFor(/sending \d+ notification\(s\) deferred/);
    for (const k of keys) {
      await eventually(`newest JWT of ${k} applied`, async () =>
        (await appliedJwt(monitorPort, k)) === newest.get(k) ? true : undefined,
      );
    }
    // Through a user: the account's new limit refuses a second connection.
    for (const a of accounts) {
      const from = ns.proc.lines.length;
      await assert.rejects(
        connect({ servers: `nats://127.0.0.1:${natsPort}`, authenticator: credsAuthenticator(creds(a)), reconnect: false }),
      );
      await ns.proc.waitFor(/maximum account active connections exceeded/, 5000, from);
    }
    // Nothing stays unconfirmed once the link is up.
    await eventually("outbox drained", async () =>
      /"unconfirmed_notifications":0/.test((await httpCall(port, "GET", "/healthz")).body) ? true : undefined,
    );
    for (const nc of users) await nc.close();
    assert.equal(await cli.stop("SIGTERM"), 0);
  });

  it("changes accepted while NATS is down survive a kill -9 of our server and are announced after its restart", async () => {
    const op = makeOperator();
    const signer = op.signer;
    const dir = tempDir("nas-outbox-");
    const natsPort = await freePort();
    const storeDir = `${dir}/store`;
    const conf = writeFile(
      dir,
      "nas.conf",
      `operatorjwtpath: "${writeFile(dir, "op.jwt", op.operatorJwt)}"\n` +
        `http { host: 127.0.0.1, port: 0 }\nstore { dir: "${storeDir}" }\n` +
        `nats { servers: ["nats://127.0.0.1:${natsPort}"], reconnectwait: "100ms", usercredentials: "${writeFile(dir, "sys.creds", userCreds(op.sys).creds)}" }\n` +
        `logging { colors: false }\n`,
    );
    const first: Proc = spawnCli(["-c", conf]);
    cleanups.push(() => first.stop("SIGKILL"));
    const port = await portOf(first);
    const newest = new Map<string, string>();
    const a = createAccount().getPublicKey();
    const b = createAccount().getPublicKey();
    let iat = nowSec() - 100;
    for (const k of [a, b, a]) {
      const jwt = accountJwt(k, signer, { iat: ++iat });
      const r = await httpCall(port, "POST", `/jwt/v1/accounts/${k}`, { body: jwt });
      assert.equal(r.status, 200, r.body);
      newest.set(k, jwt);
    }
    // Recorded durably before each 200: NATS never confirmed them.
    assert.deepEqual([...durablyPending(storeDir)].sort(), [a, b].sort());
    first.child.kill("SIGKILL");
    await first.exited;

    const sub = await systemSubscriber(op, dir, natsPort);
    const got: Array<[string, string]> = [];
    sub.subscribe("$SYS.ACCOUNT.*.CLAIMS.UPDATE", { callback: (_e, m) => void got.push([m.subject.split(".")[2]!, m.string()]) });
    await sub.flush();

    const second = spawnCli(["-c", conf]);
    cleanups.push(() => second.stop("SIGKILL"));
    const port2 = await portOf(second);
    await second.waitFor(/2 notification\(s\) from before the restart/);
    await eventually("both announcements", async () => {
      await sub.flush();
      return got.length >= 2 ? true : undefined;
    });
    // Exactly the newest JWT of each changed account, once.
    assert.deepEqual(new Map(got), newest);
    assert.equal(got.length, 2);
    await eventually("outbox emptied", async () => (outboxKeys(`${storeDir}.state`).length === 0 ? true : undefined));

    // Connected again: every further change is announced once, and nothing lingers.
    const c = createAccount().getPublicKey();
    const jwt = accountJwt(c, signer);
    assert.equal((await httpCall(port2, "POST", `/jwt/v1/accounts/${c}`, { body: jwt })).status, 200);
    await eventually("the new announcement", async () => {
      await sub.flush();
      return got.length >= 3 ? true : undefined;
    });
    assert.deepEqual(got[2], [c, jwt]);
    assert.equal(await second.stop("SIGTERM"), 0);
    assert.deepEqual(outboxKeys(`${storeDir}.state`), []);
    await sub.flush();
    assert.equal(got.length, 3);
  });

  it("an unreadable outbox file makes the restarted server announce every stored account", async () => {
    const op = makeOperator();
    const dir = tempDir("nas-torn-outbox-");
    const natsPort = await freePort();
    const sysCreds = writeFile(dir, "sys.creds", userCreds(op.sys).creds);
    const store = { dir: `${dir}/store` };
    const nats = { servers: [`nats://127.0.0.1:${natsPort}`], reconnectWait: 100, userCredentials: sysCreds };
    const first = await startServer({ operator: op, dir, store, nats });
    const keys = [createAccount(), createAccount(), createAccount()].map((a) => a.getPublicKey());
    const jwts = new Map(keys.map((k) => [k, accountJwt(k, op.signer)]));
    for (const [k, jwt] of jwts) assert.equal((await httpCall(first.server.port, "POST", `/jwt/v1/accounts/${k}`, { body: jwt })).status, 200);
    await first.stop();
    writeFileSync(`${dir}/store.state/notify-outbox.json`, '{"version":1,"pend');

    const sub = await systemSubscriber(op, dir, natsPort);
    const got = new Map<string, string>();
    sub.subscribe("$SYS.ACCOUNT.*.CLAIMS.UPDATE", { callback: (_e, m) => void got.set(m.subject.split(".")[2]!, m.string()) });
    await sub.flush();
    const second = await startServer({ operator: op, dir, store, nats });
    cleanups.push(() => second.stop());
    assert.ok(second.logs.some((l) => /outbox .* is unreadable/.test(l)));
    await eventually("every account announced", async () => {
      await sub.flush();
      return got.size >= keys.length ? true : undefined;
    });
    assert.deepEqual(got, jwts);
    await eventually("outbox rewritten and drained", async () => (outboxKeys(`${dir}/store.state`).length === 0 ? true : undefined));
  });
});
