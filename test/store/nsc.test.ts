/**
 * The nsc store over a folder laid out exactly as nsc writes it: served read-only with the
 * operator JWT taken from the folder, edits detected live and delivered to a real nats-server.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { NscStore, nscOperatorJwtPath } from "../../src/store/nsc.js";
import type { ExternalChange } from "../../src/store/types.js";
import { accountJwt, createAccount, makeOperator, nowSec, userCreds, userJwt, createUser, type OperatorSetup, type KeyPair } from "../helpers/fixtures.js";
import { freePort, spawnCli, startNatsServer, tempDir, writeFile, type NatsServer, type Proc } from "../helpers/processes.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { storedJwt } from "../helpers/stored.js";

/** An nsc operator folder: `.nsc`, `<OP>.jwt`, `accounts/<Name>/<Name>.jwt`, users beside them. */
function nscFolder(op: OperatorSetup, name = "OP"): string {
  const folder = join(tempDir("nsc-"), name);
  mkdirSync(join(folder, "accounts"), { recursive: true, mode: 0o700 });
  writeFileSync(join(folder, ".nsc"), JSON.stringify({ managed: false, name, kind: "operator", version: "1" }));
  writeFileSync(join(folder, `${name}.jwt`), op.operatorJwt, { mode: 0o600 });
  writeAccount(folder, "SYS", op.sysJwt);
  return folder;
}

/** Write an account as nsc does: `accounts/<Name>/<Name>.jwt`, in place. */
function writeAccount(folder: string, name: string, jwt: string): void {
  mkdirSync(join(folder, "accounts", name, "users"), { recursive: true, mode: 0o700 });
  writeFileSync(join(folder, "accounts", name, `${name}.jwt`), jwt, { mode: 0o600 });
}

async function eventually(what: string, check: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("nsc store - layout and index", () => {
  it("finds the operator JWT by the .nsc name, else by the folder name", () => {
    const op = makeOperator();
    const folder = nscFolder(op, "MyOp");
    assert.equal(nscOperatorJwtPath(folder), join(folder, "MyOp.jwt"));
    rmSync(join(folder, ".nsc"));
    assert.equal(nscOperatorJwtPath(folder), join(folder, "MyOp.jwt"));
  });

  it("indexes account JWTs by key, ignores users and stray files, accepts decorated files", async () => {
    const op = makeOperator();
    const folder = nscFolder(op);
    const a = createAccount();
    const b = createAccount();
    const jwtA = accountJwt(a, op.signer, { name: "A" });
    const jwtB = accountJwt(b, op.signer, { name: "B" });
    writeAccount(folder, "A", jwtA);
    writeFileSync(join(folder, "accounts", "A", "users", "u.jwt"), userJwt(createUser(), a));
    writeAccount(folder, "B", `-----BEGIN NATS ACCOUNT JWT-----\n${jwtB}\n------END NATS ACCOUNT JWT------\n`);
    writeFileSync(join(folder, "accounts", "A", "notes.jwt"), jwtB);
    mkdirSync(join(folder, "accounts", "Empty"));
    const store = new NscStore({ folder });
    await store.open();
    assert.equal(store.writable, false);
    assert.equal(store.size, 3);
    assert.equal(await storedJwt(store, a.getPublicKey()), jwtA);
    assert.equal(await storedJwt(store, b.getPublicKey()), jwtB);
    assert.equal(await storedJwt(store, op.sys.getPublicKey()), op.sysJwt);
    await store.close();
  });

  it("reports edits, new accounts and removals; a renamed account folder is no change", async () => {
    const op = makeOperator();
    const folder = nscFolder(op);
    const a = createAccount();
    writeAccount(folder, "A", accountJwt(a, op.signer, { name: "A", iat: nowSec() - 10 }));
    const store = new NscStore({ folder });
    await store.open();
    const changes: ExternalChange[] = [];
    // Apply each report as the registry would, so later comparisons see the served state.
    store.watch((c) => {
      changes.push(c);
      void (c.jwt === undefined ? store.remove(c.key) : store.put(c.key, c.jwt));
    });
    try {
      const edited = accountJwt(a, op.signer, { name: "A" });
      writeAccount(folder, "A", edited);
      await eventually("edit reported", () => changes.some((c) => c.jwt === edited));

      const b = createAccount();
      const jwtB = accountJwt(b, op.signer, { name: "B" });
      writeAccount(folder, "B", jwtB);
      await eventually("new account reported", () => changes.some((c) => c.jwt === jwtB));

      const before = changes.length;
      renameSync(join(folder, "accounts", "B"), join(folder, "accounts", "Bee"));
      renameSync(join(folder, "accounts", "Bee", "B.jwt"), join(folder, "accounts", "Bee", "Bee.jwt"));
      // Edit another account afterwards: once that is reported, the rename has been processed.
      const edited2 = accountJwt(a, op.signer, { name: "A2" });
      writeAccount(folder, "A", edited2);
      await eventually("second edit reported", () => changes.some((c) => c.jwt === edited2));
      assert.ok(store.get(b.getPublicKey()), "renamed account still served");
      const sinceRename = changes.slice(before);
      assert.ok(
        sinceRename.every((c) => c.key !== b.getPublicKey() || c.jwt === jwtB),
        `rename reported as a change: ${JSON.stringify(sinceRename)}`,
      );

      rmSync(join(folder, "accounts", "Bee"), { recursive: true });
      await eventually("removal reported", () => changes.some((c) => c.key === b.getPublicKey() && c.jwt === undefined));
      assert.equal(store.get(b.getPublicKey()), undefined);
    } finally {
      await store.close();
    }
  });
});

describe("nsc store - served over HTTP", () => {
  let t: TestServer;
  const op = makeOperator();
  const a = createAccount();
  let folder: string;

  after(async () => {
    await t?.stop();
  });

  it("serves accounts and the folder's operator JWT without operatorjwtpath", async () => {
    folder = nscFolder(op);
    writeAccount(folder, "A", accountJwt(a, op.signer, { name: "A", iat: nowSec() - 10 }));
    t = await startServer({ operator: null, store: { nsc: folder } });
    assert.ok(t.logs.some((l) => l.includes(`loading operator from ${join(folder, "OP.jwt")}`)));
    const opRes = await fetch(`${t.base}/jwt/v1/operator`);
    assert.equal(opRes.status, 200);
    assert.equal(await opRes.text(), op.operatorJwt);
    for (const key of [a.getPublicKey(), op.sys.getPublicKey()]) {
      const r = await fetch(`${t.base}/jwt/v1/accounts/${key}`);
      assert.equal(r.status, 200, key);
      assert.equal(r.headers.get("content-type"), "application/jwt");
    }
    const health = (await (await fetch(`${t.base}/healthz`)).json()) as { store: { type: string; writable: boolean } };
    assert.deepEqual([health.store.type, health.store.writable], ["nsc", false]);
  });

  it("POST answers 405 telling the user to run nsc push against a writable server", async () => {
    const r = await fetch(`${t.base}/jwt/v1/accounts/${a.getPublicKey()}`, {
      method: "POST",
      body: accountJwt(a, op.signer),
    });
    assert.equal(r.status, 405);
    assert.match(await r.text(), /nsc folder read-only.*nsc push.*writable account server/);
  });

  it("an edited account file is served after the edit; an untrusted one is refused and logged", async () => {
    const edited = accountJwt(a, op.signer, { name: "A-edited" });
    writeAccount(folder, "A", edited);
    await eventually("edited JWT served", async () => (await (await fetch(`${t.base}/jwt/v1/accounts/${a.getPublicKey()}`)).text()) === edited);
    const intruder = createAccount();
    writeAccount(folder, "X", accountJwt(intruder, intruder));
    await eventually("refusal logged", () => t.logs.some((l) => l.includes(`ignoring changed file for ${intruder.getPublicKey().slice(0, 12)}`)));
    assert.equal((await fetch(`${t.base}/jwt/v1/accounts/${intruder.getPublicKey()}`)).status, 404);
  });
});

describe("nsc store - live update to a real nats-server", () => {
  const op = makeOperator();
  const a = createAccount();
  let cli: Proc | undefined;
  let ns: NatsServer | undefined;
  let user: NatsConnection | undefined;

  after(async () => {
    await user?.close().catch(() => {});
    await cli?.stop();
    await ns?.stop();
  });

  it("a revocation written into the nsc folder disconnects the user", async () => {
    const folder = nscFolder(op);
    writeAccount(folder, "A", accountJwt(a, op.signer, { name: "A", iat: nowSec() - 10 }));
    const dir = tempDir();
    const creds = writeFile(dir, "sys.creds", userCreds(op.sys).creds);
    const asPort = await freePort();
    const natsPort = await freePort();
    cli = spawnCli(["-nsc", folder, "-hp", `127.0.0.1:${asPort}`, "-nats", `nats://127.0.0.1:${natsPort}`, "-creds", creds]);
    await cli.waitFor(/nats-account-server is running/);
    const from = cli.lines.length;
    ns = await startNatsServer(
      `operator: ${join(folder, "OP.jwt")}\nresolver: URL(http://127.0.0.1:${asPort}/jwt/v1/accounts/)\nsystem_account: ${op.sys.getPublicKey()}\n`,
      { port: natsPort },
    );
    await cli.waitFor(/connected to NATS/, 10_000, from);

    const u: KeyPair = createUser();
    const { creds: userCredsText } = userCreds(a, { user: u, iat: nowSec() - 60 });
    user = await connect({
      servers: `127.0.0.1:${natsPort}`,
      authenticator: credsAuthenticator(new TextEncoder().encode(userCredsText)),
      reconnect: false,
    });
    const closed = user.closed();

    writeAccount(folder, "A", accountJwt(a, op.signer, { name: "A", revocations: { [u.getPublicKey()]: nowSec() } }));
    const err = await Promise.race([
      closed,
      new Promise((_r, rej) => setTimeout(() => rej(new Error(`user was not disconnected:\n${cli!.output}`)), 5000)),
    ]);
    assert.match(String(err), /revoked/i);
    assert.match(cli.output, new RegExp(`updated JWT for account - ${a.getPublicKey().slice(0, 12)}`));
  });
});
