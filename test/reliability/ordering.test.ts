/**
 * Ordering under concurrency: hundreds of concurrent HTTP uploads of different versions of the
 * same accounts; the stored and announced JWT is always the newest iat, every loser gets its 409.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { peekClaims } from "../../src/jwt/index.js";
import { ERROR_TABLE } from "../../src/errors.js";
import { accountJwt, createAccount, makeOperator, nowSec, userCreds } from "../helpers/fixtures.js";
import { startNatsServer, tempDir, writeFile, type NatsServer } from "../helpers/processes.js";
import { eventually, httpCall, prng } from "../helpers/reliability.js";
import { startServer, type TestServer } from "../helpers/server.js";

const SEED = Number(process.env["RELIABILITY_SEED"] ?? 0x0de7);
const ACCOUNTS = 4;
const VERSIONS = 100;

describe("reliability - ordering under concurrency", () => {
  const op = makeOperator();
  const signer = op.signer;
  let ns: NatsServer;
  let t: TestServer;
  let sub: NatsConnection;
  const announced: Array<[string, string]> = [];

  before(async () => {
    const dir = tempDir();
    ns = await startNatsServer(
      `operator: ${JSON.stringify(writeFile(dir, "op-ns.jwt", op.operatorJwt))}\n` +
        `system_account: ${op.sys.getPublicKey()}\nresolver: MEMORY\nresolver_preload: { ${op.sys.getPublicKey()}: "${op.sysJwt}" }\n`,
    );
    const creds = userCreds(op.sys).creds;
    t = await startServer({
      operator: op,
      dir,
      store: { dir: join(dir, "store") },
      nats: { servers: [ns.url], reconnectWait: 100, userCredentials: writeFile(dir, "sys.creds", creds) },
    });
    sub = await connect({ servers: ns.url, authenticator: credsAuthenticator(new TextEncoder().encode(creds)) });
    sub.subscribe("$SYS.ACCOUNT.*.CLAIMS.UPDATE", {
      callback: (_e, m) => void announced.push([m.subject.split(".")[2]!, m.string()]),
    });
    await sub.flush();
    await eventually("our server connected to NATS", async () => (t.server.notifier.connected ? true : undefined));
  });

  after(async () => {
    await sub?.close();
    await t?.stop();
    await ns?.stop();
  });

  it(`${ACCOUNTS * VERSIONS} concurrent uploads in random order: newest iat wins everywhere (seed ${SEED})`, async (tc) => {
    const rnd = prng(SEED);
    const base = nowSec() - 10_000;
    const keys = Array.from({ length: ACCOUNTS }, () => createAccount().getPublicKey());
    const uploads = keys.flatMap((key) =>
      Array.from({ length: VERSIONS }, (_, v) => ({ key, iat: base + v, jwt: accountJwt(key, signer, { iat: base + v, name: `v${v}` }) })),
    );
    for (let i = uploads.length - 1; i > 0; i--) {
      const j = rnd.int(0, i);
      [uploads[i], uploads[j]] = [uploads[j]!, uploads[i]!];
    }
    // Each on its own connection: all of them are in flight together.
    const answers = await Promise.all(
      uploads.map((u) => httpCall(t.server.port, "POST", `/jwt/v1/accounts/${u.key}`, { body: u.jwt })),
    );
    const accepted = new Map<string, number[]>();
    answers.forEach((a, i) => {
      const u = uploads[i]!;
      if (a.status === 200) accepted.set(u.key, [...(accepted.get(u.key) ?? []), u.iat]);
      else {
        assert.equal(a.status, 409, a.body);
        assert.equal(a.body, `${ERROR_TABLE.OLDER_JWT.phrase}\n`);
      }
    });

    const newest = base + VERSIONS - 1;
    for (const key of keys) {
      const wins = accepted.get(key) ?? [];
      assert.ok(wins.includes(newest), "the newest version is never refused");
      const want = uploads.find((u) => u.key === key && u.iat === newest)!.jwt;
      assert.equal((await httpCall(t.server.port, "GET", `/jwt/v1/accounts/${key}`)).body, want);
      assert.equal(readFileSync(join(t.server.config.store.dir!, `${key}.jwt`), "utf8"), want);
    }

    // One announcement per accepted upload, in strictly increasing iat per account, newest last.
    const total = [...accepted.values()].reduce((n, w) => n + w.length, 0);
    await eventually("every announcement", async () => {
      await sub.flush();
      return announced.length >= total ? true : undefined;
    });
    await eventually("every announcement confirmed", async () => (t.server.notifier.unconfirmed === 0 ? true : undefined));
    await sub.flush();
    assert.equal(announced.length, total);
    tc.diagnostic(`${total} accepted and announced, ${uploads.length - total} refused with 409`);
    for (const key of keys) {
      const seq = announced.filter(([k]) => k === key).map(([, jwt]) => peekClaims(jwt)!.iat);
      assert.deepEqual(seq, [...(accepted.get(key) ?? [])].sort((a, b) => a - b), `announcements of ${key}`);
      assert.equal(seq.at(-1), newest);
    }
  });
});
