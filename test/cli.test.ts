/**
 * The real CLI as a process: flags, exit codes, config errors, signals (SIGTERM, SIGINT, repeated
 * SIGHUP reloads), log levels, and the read-only store announcing dropped files to NATS.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import { VERSION } from "../src/version.js";
import { accountJwt, createAccount, createOperator, makeOperator, newJti, nowSec, signJwt, userCreds } from "./helpers/fixtures.js";
import { trackedCli, startNatsServer, tempDir, writeFile, type Proc } from "./helpers/processes.js";

const cli = trackedCli();

async function portOf(p: Proc): Promise<number> {
  const line = await p.waitFor(/listening on port \d+/);
  return Number(/port (\d+)/.exec(line)![1]);
}

describe("cli - flags and exit codes", () => {
  it("--help and -h print the usage and exit 0; --version prints the version", async () => {
    for (const f of ["--help", "-h"]) {
      const p = cli([f]);
      assert.equal(await p.exited, 0);
      assert.match(p.output, /Usage: nats-account-server/);
      assert.match(p.output, /-hp <host:port>/);
    }
    const v = cli(["--version"]);
    assert.equal(await v.exited, 0);
    assert.match(v.output, new RegExp(`version ${VERSION.replace(/\./g, "\\.")}`));
  });

  it("an unknown flag exits 2; a bad -hp exits 1 (a startup error, as in the Go server)", async () => {
    const p = cli(["-bogus"]);
    assert.equal(await p.exited, 2);
    assert.match(p.output, /flag provided but not defined: -bogus/);
    const hp = cli(["-hp", "localhost"]);
    assert.equal(await hp.exited, 1);
    assert.match(hp.output, /hostport/);
  });

  it("a config type error exits 1 naming the key and line; unknown keys are warned by name", async () => {
    const dir = tempDir();
    const bad = writeFile(dir, "bad.conf", "http {\n  port: 9090\n}\nstore {\n  shard: maybe\n}\n");
    const p = cli(["-c", bad]);
    assert.equal(await p.exited, 1);
    assert.match(p.output, /store\.shard.*line 5/);
    const typo = writeFile(dir, "typo.conf", "http { port: 0, host: 127.0.0.1 }\nhttpp { port: 1 }\n");
    const q = cli(["-c", typo]);
    await q.waitFor(/nats-account-server is running/);
    assert.match(q.output, /\[WRN\] unknown configuration key "httpp"/);
    assert.equal(await q.stop("SIGTERM"), 0);
  });

  it("a missing operator file or undecodable operator JWT exits 1 with the path", async () => {
    const dir = tempDir();
    const p = cli(["-hp", "127.0.0.1:0", "-operator", join(dir, "missing.jwt")]);
    assert.equal(await p.exited, 1);
    assert.match(p.output, /missing\.jwt/);
    const q = cli(["-hp", "127.0.0.1:0", "-operator", writeFile(dir, "bad.jwt", "nonsense")]);
    assert.equal(await q.exited, 1);
    assert.match(q.output, /error decoding operator JWT/);
  });

  it("a port in use exits 1", async () => {
    const first = cli(["-hp", "127.0.0.1:0"]);
    const port = await portOf(first);
    const second = cli(["-hp", `127.0.0.1:${port}`]);
    assert.equal(await second.exited, 1);
    assert.match(second.output, /error listening/);
    await first.stop();
  });
});

describe("cli - lifecycle", () => {
  it("starts on the embedded default (memory store) and exits 0 on SIGTERM and SIGINT", async () => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) {
      const p = cli(["-hp", "127.0.0.1:0"]);
      const port = await portOf(p);
      assert.match(p.output, /creating a memory store/);
      assert.match(p.output, /NATS is not configured/);
      assert.equal((await fetch(`http://127.0.0.1:${port}/jwt/v1/accounts/`)).status, 200);
      assert.equal(await p.stop(sig), 0);
      assert.match(p.output, sig === "SIGTERM" ? /received sig-term, shutting down/ : /received sig-interrupt, shutting down/);
      assert.match(p.output, /account server stopped/);
    }
  });

  it("SIGHUP reloads the operator as often as sent: a new signing key is trusted afterwards", async () => {
    const dir = tempDir();
    const op = makeOperator();
    const extra = createOperator();
    writeFile(dir, "op.jwt", op.operatorJwt);
    const conf = writeFile(dir, "nas.conf", `operatorjwtpath: "${dir}/op.jwt"\nhttp { host: 127.0.0.1, port: 0 }\n`);
    const p = cli(["-c", conf]);
    const port = await portOf(p);
    const acct = createAccount();
    const post = (jwt: string) => fetch(`http://127.0.0.1:${port}/jwt/v1/accounts/${acct.getPublicKey()}`, { method: "POST", body: jwt });
    assert.equal((await post(accountJwt(acct, extra))).status, 400);

    const opKey = op.operator.getPublicKey();
    const reissued = signJwt(
      {
        jti: newJti(),
        iat: nowSec(),
        iss: opKey,
        sub: opKey,
        name: "OP",
        nats: { signing_keys: [op.signer.getPublicKey(), extra.getPublicKey()], system_account: op.sys.getPublicKey(), type: "operator", version: 2 },
      },
      op.operator,
    );
    writeFileSync(join(dir, "op.jwt"), reissued);
    for (let i = 1; i <= 3; i++) {
      const from = p.lines.length;
      p.child.kill("SIGHUP");
      await p.waitFor(/configuration reloaded/, 5000, from);
    }
    const r = await post(accountJwt(acct, extra));
    assert.equal(r.status, 200, await r.text());
    const op2 = await fetch(`http://127.0.0.1:${port}/jwt/v1/operator`);
    assert.equal(await op2.text(), reissued);
    assert.equal(await p.stop("SIGTERM"), 0);
  });

  it("-DV enables debug and trace lines; -dump logs the effective configuration", async () => {
    const p = cli(["-hp", "127.0.0.1:0", "-DV", "-dump"]);
    const port = await portOf(p);
    await fetch(`http://127.0.0.1:${port}/healthz`);
    await p.waitFor(/\[TRC\] .*GET \/healthz/);
    await p.waitFor(/\[DBG\] store holds 0 account JWT/);
    await p.waitFor(/effective configuration/);
    assert.match(p.output, /"port": 0/);
    await p.stop();
  });

  it("-dir overrides only the directory: shard from the config file is kept", async () => {
    const dir = tempDir();
    const op = makeOperator();
    writeFile(dir, "op.jwt", op.operatorJwt);
    const conf = writeFile(
      dir,
      "nas.conf",
      `operatorjwtpath: "${dir}/op.jwt"\nhttp { host: 127.0.0.1, port: 0 }\nstore { dir: "${dir}/ignored", shard: true }\n`,
    );
    const p = cli(["-c", conf, "-dir", join(dir, "flagdir")]);
    const port = await portOf(p);
    const acct = createAccount();
    const k = acct.getPublicKey();
    const r = await fetch(`http://127.0.0.1:${port}/jwt/v1/accounts/${k}`, { method: "POST", body: accountJwt(acct, op.signer) });
    assert.equal(r.status, 200);
    assert.ok(existsSync(join(dir, "flagdir", k.slice(-2), `${k}.jwt`)));
    assert.ok(!existsSync(join(dir, "ignored")));
    await p.stop();
  });
});

describe("cli - read-only store with NATS", () => {
  it("refuses POST with 405 and announces a JWT dropped into the directory", async () => {
    const dir = tempDir();
    const op = makeOperator();
    writeFile(dir, "op.jwt", op.operatorJwt);
    writeFile(dir, "sys.creds", userCreds(op.sys).creds);
    const ns = await startNatsServer(
      `operator: ${dir}/op.jwt\nsystem_account: ${op.sys.getPublicKey()}\nresolver: MEMORY\nresolver_preload: { ${op.sys.getPublicKey()}: "${op.sysJwt}" }\n`,
    );
    try {
      const store = join(dir, "git-checkout");
      mkdirSync(store);
      const conf = writeFile(
        dir,
        "ro.conf",
        `operatorjwtpath: "${dir}/op.jwt"\nhttp { host: 127.0.0.1, port: 0 }\nstore { dir: "${store}", readonly: true }\n` +
          `nats { servers: ["${ns.url}"], usercredentials: "${dir}/sys.creds", reconnectwait: "200ms" }\n`,
      );
      const p = cli(["-c", conf]);
      const port = await portOf(p);
      assert.match(p.output, /creating a read-only store at/);
      await p.waitFor(/connected to NATS/);

      const sub = await connect({ servers: ns.url, authenticator: credsAuthenticator(new TextEncoder().encode(userCreds(op.sys).creds)) });
      const got: string[] = [];
      sub.subscribe("$SYS.ACCOUNT.*.CLAIMS.UPDATE", { callback: (_e, m) => void got.push(m.string()) });
      await sub.flush();

      const acct = createAccount();
      const k = acct.getPublicKey();
      const jwt = accountJwt(acct, op.signer);
      const r = await fetch(`http://127.0.0.1:${port}/jwt/v1/accounts/${k}`, { method: "POST", body: jwt });
      assert.equal(r.status, 405);
      assert.match(await r.text(), /read-only/);

      writeFileSync(join(store, `${k}.jwt`), jwt);
      await p.waitFor(new RegExp(`updated JWT for account - ${k.slice(0, 12)}`));
      while (got.length === 0) await sub.flush();
      assert.deepEqual(got, [jwt]);
      assert.equal(await (await fetch(`http://127.0.0.1:${port}/jwt/v1/accounts/${k}`)).text(), jwt);

      // An untrusted file is logged and not served.
      const rogue = createAccount();
      writeFileSync(join(store, `${rogue.getPublicKey()}.jwt`), accountJwt(rogue, createOperator()));
      await p.waitFor(/ignoring changed file .*untrusted issuer/);
      assert.equal((await fetch(`http://127.0.0.1:${port}/jwt/v1/accounts/${rogue.getPublicKey()}`)).status, 404);
      await sub.close();
      await p.stop();
    } finally {
      await ns.stop();
    }
  });
});

