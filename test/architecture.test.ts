/**
 * The layers of src/ as the README's architecture section draws them: a module imports only from
 * its own layer or below, and from outside jwt/ and store/ only through their index.ts.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { ROOT } from "./helpers/processes.js";

const SRC = join(ROOT, "src");

/** Bottom up; the first matching prefix names a file's layer. */
const LAYERS: ReadonlyArray<readonly string[]> = [
  ["config/", "errors.ts", "log.ts", "durable.ts", "keyed-queue.ts", "version.ts"],
  ["jwt/"],
  ["nats/connection.ts"],
  ["store/"],
  ["accounts.ts", "activations.ts"],
  ["expiry.ts", "replica.ts", "nats/", "http/", "signer/", "migrate.ts"],
  ["server.ts", "cli.ts", "demo.ts"],
];

function layerOf(file: string): number {
  let best = -1;
  let bestLen = -1;
  LAYERS.forEach((prefixes, i) => {
    for (const p of prefixes) {
      if ((file === p || file.startsWith(p)) && p.length > bestLen) {
        best = i;
        bestLen = p.length;
      }
    }
  });
  if (best < 0) throw new Error(`${file} is in no layer: add it to LAYERS and to the README's architecture section`);
  return best;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sources(join(dir, d.name)) : d.name.endsWith(".ts") ? [join(dir, d.name)] : [],
  );
}

const imports = sources(SRC).flatMap((path) => {
  const from = relative(SRC, path);
  return [...readFileSync(path, "utf8").matchAll(/from "(\.[^"]+)\.js"/g)].map((m) => ({
    from,
    to: normalize(join(dirname(from), m[1]! + ".ts")),
  }));
});

describe("architecture - src/ layers", () => {
  it("every module imports from its own layer or below", () => {
    const up = imports.filter(({ from, to }) => layerOf(to) > layerOf(from)).map(({ from, to }) => `${from} -> ${to}`);
    assert.deepEqual(up, []);
  });

  it("outside jwt/ and store/ their modules are reached through index.ts", () => {
    const around = imports
      .filter(({ from, to }) => ["jwt/", "store/"].some((p) => to.startsWith(p) && !from.startsWith(p) && to !== `${p}index.ts`))
      .map(({ from, to }) => `${from} -> ${to}`);
    assert.deepEqual(around, []);
  });
});
