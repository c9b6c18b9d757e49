/**
 * Crash safety: the real CLI takes concurrent uploads and is killed with SIGKILL at seeded random
 * moments (under load and during startup), then restarted; after every restart nothing is lost.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Agent } from "node:http";
import { basename, dirname, join } from "node:path";
import { peekClaims } from "../../src/jwt/index.js";
import { accountJwt, createAccount, makeOperator, nowSec } from "../helpers/fixtures.js";
import { freePort, spawnCli, tempDir, writeFile, type Proc } from "../helpers/processes.js";
import { filesBelow, httpCall, durablyPending, portOf, prng } from "../helpers/reliability.js";

const SEED = Number(process.env["RELIABILITY_SEED"] ?? 0x5eed01);
const KILLS = 22;
const WORKERS = 6;
const ACCOUNTS_PER_WORKER = 5;

interface Account {
  readonly key: string;
  version: number;
  /** Newest version answered 200. */
  acked: string | undefined;
  /** The upload in flight when the server died (its fate is unknown until the restart). */
  inflight: string | undefined;
}

const running: Proc[] = [];
after(async () => {
  await Promise.all(running.map((p) => p.stop("SIGKILL")));
});

describe("reliability - crash safety under kill -9", () => {
  it(`no acknowledged upload is lost, torn or left as a temp file (seed ${SEED})`, async (t) => {
    // Kill points come from their own stream: how much load a window sees must not shift them.
    const kill = prng(SEED);
    const workload = prng(SEED ^ 0x9e3779b9);
    const op = makeOperator();
    const signer = op.signer;
    const dir = tempDir("nas-crash-");
    const storeDir = join(dir, "store");
    const stateDir = `${storeDir}.state`;
    // NATS stays unreachable: every accepted change must stay in the durable outbox.
    const deadNats = await freePort();
    const conf = writeFile(
      dir,
      "nas.conf",
      `operatorjwtpath: "${writeFile(dir, "op.jwt", op.operatorJwt)}"\n` +
        `http { host: 127.0.0.1, port: 0 }\n` +
        `store { dir: "${storeDir}", shard: true }\n` +
        `nats { servers: ["nats://127.0.0.1:${deadNats}"], reconnectwait: "1h" }\n` +
        `logging { colors: false, debug: true }\n`,
    );
    const base = nowSec() - 100_000;
    const sent = new Set<string>();
    const accounts: Account[] = [];
    const owned: Account[][] = Array.from({ length: WORKERS }, () => []);

    const start = async (): Promise<Proc> => {
      const p = spawnCli(["-c", conf]);
      running.push(p);
      return p;
    };

    /** Everything a restart must show: served and stored exactly what was acknowledged. */
    const verify = async (p: Proc, port: number): Promise<void> => {
      const ctx = `after restart (seed ${SEED})`;
      const errors = p.lines.filter((l) => l.includes("[ERR]") && !/NATS|connect again/i.test(l));
      assert.deepEqual(errors, [], `${ctx}: clean start`);
      const onDisk = new Map<string, string>();
      for (const f of filesBelow(storeDir)) {
        const name = basename(f);
        assert.ok(!name.endsWith(".tmp"), `${ctx}: temp file survived: ${f}`);
        // The write-ahead journal (replayed at the restart, then dropped by its first checkpoint).
        if (/^\.journal\.\d+$/.test(name)) continue;
        assert.match(name, /^A[A-Z2-7]{55}\.jwt$/, `${ctx}: unexpected file ${f}`);
        const key = name.slice(0, -4);
        assert.equal(basename(dirname(f)), key.slice(-2), `${ctx}: ${f} is outside the shard layout`);
        const text = readFileSync(f, "utf8");
        assert.ok(text.length > 0, `${ctx}: empty file ${f}`);
        assert.ok(sent.has(text), `${ctx}: torn or foreign content in ${f}`);
        assert.equal(peekClaims(text)?.sub, key);
        onDisk.set(key, text);
      }
      for (const f of filesBelow(stateDir)) {
        assert.ok(!basename(f).endsWith(".tmp"), `${ctx}: temp file survived: ${f}`);
        if (!/[/\\]history[/\\]\d+\.log$/.test(f)) continue;
        // Append-only history segments: only a last line without its newline may be torn.
        const lines = readFileSync(f, "utf8").split("\n").slice(0, -1);
        for (const l of lines) {
          assert.match(l, /^A[A-Z2-7]{55} \d+ \{/, `${ctx}: damaged line inside ${f}`);
          assert.doesNotThrow(() => JSON.parse(l.slice(l.indexOf(" ", 57) + 1)), `${ctx}: torn line inside ${f}`);
        }
      }
      const outbox = durablyPending(storeDir, stateDir);
      for (const a of accounts) {
        const r = await httpCall(port, "GET", `/jwt/v1/accounts/${a.key}`);
        if (a.acked === undefined && r.status === 404) {
          assert.equal(onDisk.get(a.key), undefined);
          a.inflight = undefined;
          continue;
        }
        assert.equal(r.status, 200, `${ctx}: ${a.key} acknowledged but not served`);
        const allowed = [a.acked, a.inflight].filter((x) => x !== undefined);
        assert.ok(allowed.includes(r.body), `${ctx}: ${a.key} serves something other than its newest upload`);
        assert.equal(onDisk.get(a.key), r.body, `${ctx}: ${a.key} served and stored differ`);
        a.acked = r.body;
        a.inflight = undefined;
        assert.ok(outbox.has(a.key), `${ctx}: ${a.key} changed while NATS was down but is not in the outbox`);
      }
    };

    /** Upload until `stop` says so; each worker owns its accounts, so its uploads are sequential. */
    const worker = async (w: number, port: number, agent: Agent, stop: { now: boolean }): Promise<void> => {
      while (!stop.now) {
        const mine = owned[w]!;
        let a: Account;
        if (mine.length < ACCOUNTS_PER_WORKER && workload.next() < 0.3) {
          a = { key: createAccount().getPublicKey(), version: 0, acked: undefined, inflight: undefined };
          mine.push(a);
          accounts.push(a);
        } else if (mine.length > 0) {
          a = workload.pick(mine);
        } else {
          continue;
        }
        a.version++;
        const jwt = accountJwt(a.key, signer, { iat: base + a.version, name: `v${a.version}` });
        sent.add(jwt);
        a.inflight = jwt;
        try {
          const r = await httpCall(port, "POST", `/jwt/v1/accounts/${a.key}`, { body: jwt, agent });
          assert.equal(r.status, 200, r.body);
          a.acked = jwt;
          a.inflight = undefined;
        } catch (err) {
          if (err instanceof assert.AssertionError) throw err;
          return; // the server died under this request; its fate is checked after the restart
        }
      }
    };

    let kills = 0;
    let loadKills = 0;
    let uploads = 0;
    while (kills < KILLS) {
      const p = await start();
      const port = await portOf(p);
      await verify(p, port);
      if (kill.next() < 0.2) {
        // Kill the next start at a random point between opening the store and listening.
        p.child.kill("SIGKILL");
        await p.exited;
        kills++;
        const q = await start();
        await q.waitFor(/creating a store at/);
        await new Promise((r) => setTimeout(r, kill.int(0, 40)));
        q.child.kill("SIGKILL");
        await q.exited;
        kills++;
        continue;
      }
      const agent = new Agent({ keepAlive: true, maxSockets: WORKERS });
      const stop = { now: false };
      const before = sent.size;
      const load = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w, port, agent, stop)));
      await new Promise((r) => setTimeout(r, kill.int(30, 350)));
      p.child.kill("SIGKILL");
      stop.now = true;
      await load;
      await p.exited;
      agent.destroy();
      uploads += sent.size - before;
      kills++;
      loadKills++;
    }
    const last = await start();
    await verify(last, await portOf(last));
    assert.equal(await last.stop("SIGTERM"), 0);
    assert.ok(loadKills >= 10, `only ${loadKills} kills under load`);
    assert.ok(uploads > 0 && accounts.length > 0);
    t.diagnostic(`${kills} kills (${loadKills} under load), ${uploads} uploads, ${accounts.length} accounts`);
  });
});
