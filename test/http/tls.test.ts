/**
 * HTTPS: `http.tls.cert`/`key` switch the listener to TLS (1.2 or newer) and the resolver URL the
 * server prints to https; an unloadable key pair stops startup with a clear error.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { tempDir, writeFile } from "../helpers/processes.js";
import { startServer, type TestServer } from "../helpers/server.js";

function get(url: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { ca }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
    })
      .on("error", reject)
      .end();
  });
}

describe("http - TLS", () => {
  const dir = tempDir("tls-");
  let t: TestServer;
  before(async () => {
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
      "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ], { stdio: "ignore" });
    t = await startServer({ http: { tls: { cert: join(dir, "cert.pem"), key: join(dir, "key.pem") } } });
  });
  after(() => t.stop());

  it("serves the API over https and prints an https resolver URL", async () => {
    const r = await get(`https://127.0.0.1:${t.server.port}/jwt/v1/accounts/`, readFileSync(join(dir, "cert.pem")));
    assert.equal(r.status, 200);
    assert.match(t.server.resolverUrl, /^https:\/\/127\.0\.0\.1:\d+\/jwt\/v1\/accounts\/$/);
    assert.ok(t.logs.some((l) => /\[INF\] https listening on port \d+$/.test(l)));
  });

  it("a bad key pair stops startup with the legacy error", async () => {
    const bad = writeFile(dir, "bad.pem", "not a key");
    await assert.rejects(
      startServer({ http: { tls: { cert: join(dir, "cert.pem"), key: bad } } }),
      /error loading X509 certificate\/key pair/,
    );
  });
});
