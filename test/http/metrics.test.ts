/**
 * GET /metrics: valid Prometheus text (checked by promtool), counters that move with requests,
 * uploads, refusals, notifications and syncs against a real nats-server; off or bound elsewhere.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { accountJwt, createAccount, makeOperator } from "../helpers/fixtures.js";
import { startNatsServer, tempDir, writeFile, type NatsServer } from "../helpers/processes.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { loadConfigFile } from "../../src/config/schema.js";
import { connectSys, resolverConf, startPeer, until } from "../nats/kit.js";

const P = "nats_account_server_";

/** The value of one sample; labels must match exactly (order as written by prom-client). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(",");
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line === "") continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = (m[2] ?? "").split(/,(?=\w+=")/).filter((l) => l !== "").sort().join(",");
    if (got === want) return Number(m[3]);
  }
  return undefined;
}

async function scrape(base: string, path = "/metrics"): Promise<string> {
  const r = await fetch(`${base}${path}`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return r.text();
}

function promtool(text: string): void {
  const r = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  assert.equal(r.error, undefined, "promtool must be installed (Debian package prometheus)");
  assert.equal(r.status, 0, `promtool check metrics failed:\n${r.stdout}${r.stderr}`);
}

describe("metrics - counters move with a real nats-server", () => {
  const op = makeOperator();
  const dir = tempDir("nas-metrics-");
  let ns: NatsServer;
  let t: TestServer;

  before(async () => {
    ns = await startNatsServer(resolverConf(op, dir, { type: "full", jwtDir: join(dir, "jwt") }));
    t = await startPeer(op, ns.url, dir, { store: { dir: join(dir, "store") }, syncInterval: 100 });
  });
  after(async () => {
    await t?.stop();
    await ns?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("passes promtool check metrics, before and after traffic", async () => {
    promtool(await scrape(t.base));
    const a = createAccount();
    await fetch(`${t.base}/jwt/v1/accounts/${a.getPublicKey()}`, { method: "POST", body: accountJwt(a, op.signer) });
    promtool(await scrape(t.base));
  });

  it("requests, lookups, uploads, refusals, notifications, store size and journal timings", async () => {
    const before = await scrape(t.base);
    const a = createAccount();
    const key = a.getPublicKey();
    const route = "/jwt/v1/accounts/:key";
    const n = (text: string, name: string, labels?: Record<string, string>): number => sample(text, name, labels) ?? 0;

    assert.equal((await fetch(`${t.base}/jwt/v1/accounts/${key}`, { method: "POST", body: accountJwt(a, op.signer) })).status, 200);
    assert.equal((await fetch(`${t.base}/jwt/v1/accounts/${key}`)).status, 200);
    assert.equal((await fetch(`${t.base}/jwt/v1/accounts/${createAccount().getPublicKey()}`)).status, 404);
    const b = createAccount();
    const selfSigned = accountJwt(b, b);
    assert.equal((await fetch(`${t.base}/jwt/v1/accounts/${b.getPublicKey()}`, { method: "POST", body: selfSigned })).status, 400);
    assert.equal((await fetch(`${t.base}/jwt/v1/accounts/${b.getPublicKey()}`, { method: "POST", body: "garbage" })).status, 400);

    // The notification is confirmed by the nats-server (PING/PONG) shortly after the answer.
    const after = await until("the notification to be confirmed", async () => {
      const text = await scrape(t.base);
      return n(text, `${P}notifications_confirmed_total`) > n(before, `${P}notifications_confirmed_total`) ? text : undefined;
    });
    promtool(after);
    const d = (name: string, labels?: Record<string, string>): number => n(after, name, labels) - n(before, name, labels);
    assert.equal(d(`${P}http_requests_total`, { route, method: "POST", status: "200" }), 1);
    assert.equal(d(`${P}http_requests_total`, { route, method: "POST", status: "400" }), 2);
    assert.equal(d(`${P}http_requests_total`, { route, method: "GET", status: "404" }), 1);
    assert.equal(d(`${P}http_request_duration_seconds_count`, { route, method: "GET" }), 2);
    assert.equal(d(`${P}jwt_lookups_total`, { result: "hit" }), 1);
    assert.equal(d(`${P}jwt_lookups_total`, { result: "miss" }), 1);
    assert.equal(d(`${P}uploads_accepted_total`, { source: "http" }), 1);
    assert.equal(d(`${P}uploads_refused_total`, { source: "http", code: "SIGNING_NOT_ENABLED" }), 1);
    assert.equal(d(`${P}uploads_refused_total`, { source: "http", code: "BAD_JWT" }), 1);
    assert.ok(d(`${P}notifications_sent_total`) >= 1);
    assert.equal(n(after, `${P}nats_connected`), 1);
    assert.equal(n(after, `${P}store_accounts`), t.server.registry.store.size);
    assert.ok(d(`${P}store_operation_duration_seconds_count`, { operation: "journal_commit" }) >= 1);
    assert.ok(n(after, `${P}jwt_lookup_hit_ratio`) > 0 && n(after, `${P}jwt_lookup_hit_ratio`) < 1);
    // The scrapes themselves are requests too.
    assert.ok(d(`${P}http_requests_total`, { route: "/metrics", method: "GET", status: "200" }) >= 1);
  });

  it("pack sync rounds with the full resolver are counted", async () => {
    const text = await until("a sync round", async () => {
      const s = await scrape(t.base);
      return (sample(s, `${P}sync_rounds_total`, { outcome: "in-sync" }) ?? 0) +
        (sample(s, `${P}sync_rounds_total`, { outcome: "merged" }) ?? 0) > 0
        ? s
        : undefined;
    });
    promtool(text);
  });

  it("refusals over NATS are counted with their code", async () => {
    const before = await scrape(t.base);
    const nc = await connectSys(ns.url, op);
    try {
      const b = createAccount();
      await nc.request(`$SYS.REQ.ACCOUNT.${b.getPublicKey()}.CLAIMS.UPDATE`, accountJwt(b, b), { timeout: 2000 }).catch(() => undefined);
      const code = { source: "nats", code: "SIGNING_NOT_ENABLED" };
      await until("the NATS refusal to be counted", async () =>
        (sample(await scrape(t.base), `${P}uploads_refused_total`, code) ?? 0) > (sample(before, `${P}uploads_refused_total`, code) ?? 0),
      );
    } finally {
      await nc.close();
    }
  });
});

describe("metrics - configuration", () => {
  it("metrics.enabled false: no /metrics", async () => {
    const t = await startServer({ operator: makeOperator(), metrics: { enabled: false } });
    try {
      assert.equal((await fetch(`${t.base}/metrics`)).status, 404);
      assert.equal(t.server.metrics, undefined);
    } finally {
      await t.stop();
    }
  });

  it("metrics.port: served on a listener of its own at metrics.path, not on the main one", async () => {
    const t = await startServer({ operator: makeOperator(), metrics: { host: "127.0.0.1", port: 0, path: "/prom" } });
    try {
      const port = t.server.surfaces.portOf("metrics");
      assert.ok(port !== undefined && port !== t.server.port);
      assert.equal((await fetch(`${t.base}/prom`)).status, 404);
      assert.equal((await fetch(`${t.base}/metrics`)).status, 404);
      await fetch(`${t.base}/jwt/v1/accounts/`);
      const text = await scrape(`http://127.0.0.1:${port}`, "/prom");
      promtool(text);
      assert.equal(sample(text, `${P}http_requests_total`, { route: "/jwt/v1/accounts/", method: "GET", status: "200" }), 1);
      assert.ok(t.logs.some((l) => new RegExp(`metrics listening on port ${port}, /prom$`).test(l)), t.logs.join("\n"));
    } finally {
      await t.stop();
    }
  });

  it("metrics block in the config file", async () => {
    const dir = tempDir("nas-metrics-conf-");
    const file = writeFile(dir, "c.conf", "metrics { enabled: false, port: 9102, host: 0.0.0.0, path: /m }\n");
    const { config, warnings } = loadConfigFile(file);
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.metrics, { enabled: false, port: 9102, host: "0.0.0.0", path: "/m" });
    rmSync(dir, { recursive: true, force: true });
  });
});
