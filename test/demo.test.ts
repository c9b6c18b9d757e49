/**
 * `nats-account-server demo` through the real CLI: to the end against the real nats-server,
 * the HTTP half without one, and cleanup on Ctrl-C.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { dirname } from "node:path";
import { spawnCli } from "./helpers/processes.js";

function demoDir(lines: readonly string[]): string {
  const m = /^1\. made a throwaway operator DEMO in (\S+)$/.exec(lines[0] ?? "");
  assert.ok(m, `first line names the directory: ${lines.join("\n")}`);
  return m[1]!;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

describe("demo - the whole job in one command", () => {
  it("runs to the end against the real nats-server, exits 0 within a minute and removes its directory", async () => {
    const t0 = Date.now();
    const p = spawnCli(["demo"]);
    const code = await p.exited;
    assert.equal(code, 0, p.output);
    assert.ok(Date.now() - t0 < 60_000);
    const expected = [
      /^1\. made a throwaway operator DEMO in /,
      /^   signing key  O[A-Z2-7]{55}$/,
      /^2\. started the account server: http:\/\/127\.0\.0\.1:\d+/,
      /^3\. started nats-server .* with resolver: URL\(http:\/\/127\.0\.0\.1:\d+\/jwt\/v1\/accounts\/\)$/,
      /^4\. the account server connected to NATS/,
      /^5\. pushed account A .* → 200$/,
      /^6\. pushed account B .* → 200$/,
      /^7\. user U[A-Z2-7]{11}… of A connected and received "hello from A"$/,
      /^8\. revoked the user/,
      /^9\. the nats-server disconnected the user: .*revoked/i,
      /^10\. done/,
    ];
    let i = 0;
    for (const line of p.lines) if (i < expected.length && expected[i]!.test(line)) i++;
    assert.equal(i, expected.length, `only ${i} steps in order:\n${p.output}`);
    assert.equal(existsSync(demoDir(p.lines)), false, "the temporary directory is removed");
  });

  it("without nats-server it says how to install it and shows the HTTP half", async () => {
    // Only node's own directory on PATH: no nats-server to be found.
    const p = spawnCli(["demo"], { PATH: dirname(process.execPath) });
    assert.equal(await p.exited, 0, p.output);
    assert.match(p.output, /nats-server is not installed/);
    assert.match(p.output, /apt-get install nats-server/);
    assert.match(p.output, /pushed account A .* → 200/);
    assert.match(p.output, /"name": "A"/);
    assert.equal(existsSync(demoDir(p.lines)), false);
  });

  it("Ctrl-C stops the nats-server and the account server and removes the directory", async () => {
    const p = spawnCli(["demo"]);
    const line = await p.waitFor(/^3\. started nats-server .* on nats:\/\/127\.0\.0\.1:(\d+)/, 30_000);
    const natsPort = Number(/127\.0\.0\.1:(\d+) with/.exec(line)![1]);
    const http = Number(/127\.0\.0\.1:(\d+)/.exec(p.lines.find((l) => l.startsWith("2. "))!)![1]);
    p.child.kill("SIGINT");
    assert.equal(await p.exited, 130, p.output);
    assert.match(p.output, /interrupted, cleaning up/);
    assert.equal(existsSync(demoDir(p.lines)), false);
    assert.equal(await portOpen(natsPort), false, "nats-server stopped");
    assert.equal(await portOpen(http), false, "account server stopped");
  });

  it("-h prints its usage", async () => {
    const p = spawnCli(["demo", "-h"]);
    assert.equal(await p.exited, 0);
    assert.match(p.output, /^Usage: nats-account-server demo/);
  });
});
