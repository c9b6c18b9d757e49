/**
 * The HTTP (pack included) and LOOKUP suites again, with store.cache 0: nothing is ever cached,
 * so every answer is read from the store the way an evicted account's is.
 */
import { it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "../helpers/processes.js";

/** The suites about what a GET, HEAD, pack or LOOKUP answers (the console, TLS and metrics suites are not). */
const SUITES = [
  ...["app", "fastpath", "pack", "decoded", "delete", "future-iat", "validation"].map((f) => join("test/http", `${f}.test.ts`)),
  "test/nats/lookup.test.ts",
];

it("the HTTP, pack and LOOKUP suites pass with a cache that holds nothing", { timeout: 600_000 }, () => {
  // Without NODE_TEST_CONTEXT: set by our own runner, it would make the child a silent subtest.
  const env: NodeJS.ProcessEnv = { ...process.env, NAS_TEST_STORE_CACHE: "0" };
  delete env["NODE_TEST_CONTEXT"];
  const r = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=2", "--test-reporter=tap", ...SUITES], {
    cwd: ROOT,
    env,
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  // What failed, with its context: the lines from each "not ok" up to its end marker.
  const lines = r.stdout.split("\n");
  const failed = lines.flatMap((l, i) => (/^\s*not ok/.test(l) ? lines.slice(i, i + 30) : []));
  const tail = `${failed.join("\n")}\n${lines.slice(-12).join("\n")}\n${r.stderr}`;
  assert.equal(r.status, 0, tail);
  const passed = Number(/^# pass (\d+)$/m.exec(r.stdout)?.[1] ?? 0);
  assert.ok(passed >= 50, `only ${passed} tests ran:\n${tail}`);
});
