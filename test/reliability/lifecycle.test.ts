/**
 * Lifecycle under load, on the real CLI: SIGTERM lets in-flight requests finish, refuses new ones
 * cleanly and exits 0; SIGHUP with a new operator JWT trusts its new key without failing a request.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { Agent } from "node:http";
import { join } from "node:path";
import { accountJwt, createAccount, createOperator, makeOperator, newJti, nowSec, signJwt, type KeyPair } from "../helpers/fixtures.js";
import { spawnCli, tempDir, writeFile, type Proc } from "../helpers/processes.js";
import { eventually, httpCall, portOf, rawConnection } from "../helpers/reliability.js";

const running: Proc[] = [];
after(async () => {
  await Promise.all(running.map((p) => p.stop("SIGKILL")));
});

async function cli(args: string[]): Promise<Proc> {
  const p = spawnCli(args);
  running.push(p);
  return p;
}

/** Errors a client may see when a server that is shutting down closes or refuses its connection. */
const CLEAN_REFUSAL = /ECONNREFUSED|ECONNRESET|socket hang up|EPIPE/;

interface LoadStats {
  ok: number;
  refused: number;
  failures: string[];
  acked: Map<string, string>;
}

/**
 * GET/POST mix on keep-alive connections until `stop.now`: each worker owns one account and
 * uploads newer versions of it (so a 409 is a failure), reading the accounts back in between.
 */
async function load(
  port: number,
  signer: KeyPair,
  workers: number,
  stop: { now: boolean },
  o: { allowRefusal: () => boolean },
): Promise<LoadStats> {
  const stats: LoadStats = { ok: 0, refused: 0, failures: [], acked: new Map() };
  const agent = new Agent({ keepAlive: true, maxSockets: workers });
  let iat = nowSec() - 100_000;
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      const key = createAccount().getPublicKey();
      let last: string | undefined;
      for (let n = 0; !stop.now; n++) {
        const post = n % 3 !== 2 || last === undefined;
        const jwt = post ? accountJwt(key, signer, { iat: ++iat, name: `w${w}-${n}` }) : undefined;
        try {
          const r = post
            ? await httpCall(port, "POST", `/jwt/v1/accounts/${key}`, { body: jwt!, agent })
            : await httpCall(port, "GET", `/jwt/v1/accounts/${key}`, { agent });
          if (r.status === 503 && o.allowRefusal()) {
            stats.refused++;
            continue;
          }
          if (r.status !== 200 || (!post && r.body !== last)) {
            stats.failures.push(`${post ? "POST" : "GET"} ${r.status} ${r.body.slice(0, 100)}`);
            continue;
          }
          stats.ok++;
          if (post) {
            last = jwt;
            stats.acked.set(key, jwt!);
          }
        } catch (err) {
          const msg = `${(err as Error).message} ${(err as { code?: string }).code ?? ""}`;
          if (o.allowRefusal() && CLEAN_REFUSAL.test(msg)) {
            stats.refused++;
            if (/ECONNREFUSED/.test(msg)) return; // the listener is gone: this worker is done
            continue;
          }
          stats.failures.push(msg);
        }
      }
    }),
  );
  agent.destroy();
  return stats;
}

describe("reliability - lifecycle under load", () => {
  it("SIGTERM under load: in-flight requests complete, later ones are refused cleanly, exit 0", async () => {
    const op = makeOperator();
    const signer = op.signer;
    const dir = tempDir("nas-term-");
    const conf = writeFile(
      dir,
      "nas.conf",
      `operatorjwtpath: "${writeFile(dir, "op.jwt", op.operatorJwt)}"\nhttp { host: 127.0.0.1, port: 0 }\n` +
        `store { dir: "${dir}/store" }\nlogging { colors: false, trace: true }\n`,
    );
    const p = await cli(["-c", conf]);
    const port = await portOf(p);

    let terminated = false;
    const stop = { now: false };
    const loading = load(port, signer, 8, stop, { allowRefusal: () => terminated });
    await eventually("load running", async () => (p.lines.filter((l) => l.includes("updated JWT")).length > 20 ? true : undefined));

    // Uploads caught mid-body by the signal: headers and half the body sent, seen by the server.
    const slow = Array.from({ length: 4 }, () => {
      const key = createAccount().getPublicKey();
      return { key, jwt: accountJwt(key, signer) };
    });
    const conns = await Promise.all(slow.map(() => rawConnection(port)));
    slow.forEach(({ key, jwt }, i) =>
      conns[i]!.write(`POST /jwt/v1/accounts/${key} HTTP/1.1\r\nHost: x\r\nContent-Length: ${jwt.length}\r\n\r\n${jwt.slice(0, 40)}`),
    );
    for (const { key } of slow) await p.waitFor(new RegExp(`POST /jwt/v1/accounts/${key}`));

    const from = p.lines.length;
    // Refusals are fine from the moment the signal is sent: the server may close an idle
    // keep-alive connection before its log line reaches us.
    terminated = true;
    p.child.kill("SIGTERM");
    await p.waitFor(/received sig-term, shutting down/, 5000, from);
    slow.forEach(({ jwt }, i) => conns[i]!.write(jwt.slice(40)));
    const answers = await Promise.all(conns.map((c) => c.answer));
    for (const a of answers) {
      assert.equal(a.status, 200, a.text);
      assert.match(a.text, /Connection: close/i);
    }
    assert.equal(await p.exited, 0);
    stop.now = true;
    const stats = await loading;
    assert.deepEqual(stats.failures, []);
    assert.ok(stats.ok > 0);
    assert.match(p.output, /account server stopped/);
    // New connections are refused once the listener is closed.
    await assert.rejects(httpCall(port, "GET", "/healthz"), /ECONNREFUSED/);

    // Everything answered 200 survived, the slow uploads included.
    const q = await cli(["-c", conf]);
    const port2 = await portOf(q);
    for (const [key, jwt] of [...stats.acked, ...slow.map((s) => [s.key, s.jwt] as const)]) {
      assert.equal((await httpCall(port2, "GET", `/jwt/v1/accounts/${key}`)).body, jwt);
    }
    assert.equal(await q.stop("SIGTERM"), 0);
  });

  it("SIGHUP under load with a new operator JWT: the added signing key is trusted, no request fails", async () => {
    const op = makeOperator();
    const signer = op.signer;
    const added = createOperator();
    const dir = tempDir("nas-hup-");
    const opFile = writeFile(dir, "op.jwt", op.operatorJwt);
    const conf = writeFile(
      dir,
      "nas.conf",
      `operatorjwtpath: "${opFile}"\nhttp { host: 127.0.0.1, port: 0 }\nstore { dir: "${dir}/store" }\nlogging { colors: false }\n`,
    );
    const p = await cli(["-c", conf]);
    const port = await portOf(p);
    const byAdded = createAccount().getPublicKey();
    const refused = await httpCall(port, "POST", `/jwt/v1/accounts/${byAdded}`, { body: accountJwt(byAdded, added) });
    assert.equal(refused.status, 400);

    const stop = { now: false };
    const loading = load(port, signer, 6, stop, { allowRefusal: () => false });
    await eventually("load running", async () => (p.lines.filter((l) => l.includes("updated JWT")).length > 20 ? true : undefined));

    const claims = JSON.parse(Buffer.from(op.operatorJwt.split(".")[1]!, "base64url").toString()) as Record<string, unknown>;
    const nats = claims["nats"] as Record<string, unknown>;
    const reissued = signJwt(
      { ...claims, jti: newJti(), iat: nowSec(), nats: { ...nats, signing_keys: [op.signer.getPublicKey(), added.getPublicKey()] } },
      op.operator,
    );
    writeFileSync(join(dir, "op.jwt.new"), reissued);
    renameSync(join(dir, "op.jwt.new"), opFile);
    const addedSigner = added;
    for (let i = 0; i < 5; i++) {
      const from = p.lines.length;
      p.child.kill("SIGHUP");
      await p.waitFor(/configuration reloaded/, 5000, from);
      const r = await httpCall(port, "POST", `/jwt/v1/accounts/${byAdded}`, {
        body: accountJwt(byAdded, addedSigner, { iat: nowSec() - 100 + i }),
      });
      assert.equal(r.status, 200, r.body);
    }
    stop.now = true;
    const stats = await loading;
    assert.deepEqual(stats.failures, []);
    assert.ok(stats.ok > 0);
    assert.equal(readFileSync(opFile, "utf8"), reissued);
    assert.equal((await httpCall(port, "GET", "/jwt/v1/operator")).body, reissued);
    assert.equal(await p.stop("SIGTERM"), 0);
  });
});
