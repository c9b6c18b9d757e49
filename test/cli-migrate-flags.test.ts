/**
 * The migrate subcommand's flags go through the same Go-style parser as the server's: unknown
 * flags, missing arguments and bad numbers exit 2 with the usage, and change nothing.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { main } from "../src/cli.js";

async function migrate(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(["migrate", ...argv], { stdout: (s) => (out += s), stderr: (s) => (err += s) });
  return { code, out, err };
}

describe("cli - migrate flags", () => {
  it("-h prints the usage with every flag and exits 0", async () => {
    const r = await migrate("-h");
    assert.equal(r.code, 0);
    for (const f of ["-from <store>", "-to <store>", "-nats <url>", "-creds <file>", "-replicas <n>", "-history <n>"]) assert.ok(r.out.includes(f), f);
  });

  for (const [argv, message] of [
    [["-bogus"], /^flag provided but not defined: -bogus\n/],
    [["-from"], /^flag needs an argument: -from\n/],
    [["-replicas", "x"], /^invalid value "x" for flag -replicas: a whole number of at least 1\n/],
    [["--history=0"], /^invalid value "0" for flag -history/],
    [["stray"], /^unexpected argument "stray"\n/],
  ] as const) {
    it(`${argv.join(" ")}: exit 2 with the usage`, async () => {
      const r = await migrate(...argv);
      assert.equal(r.code, 2);
      assert.match(r.err, message);
      assert.ok(r.err.includes("Usage: nats-account-server migrate"));
    });
  }
});
