/**
 * The layers of src/ as the README's architecture section draws them: a module imports only from
 * its own layer or below, and from outside jwt/, store/ and nats/ only through their faces.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { ROOT } from "./helpers/processes.js";

const SRC = join(ROOT, "src");

/** Bottom up; the first matching prefix names a file's layer. */
const LAYERS: ReadonlyArray<readonly string[]> = [
  ["config/", "errors.ts", "log.ts", "durable.ts", "keyed-queue.ts", "version.ts", "workers.ts"],
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

  it("outside jwt/, store/ and nats/ their modules are reached through their faces", () => {
    const faces: Record<string, readonly string[]> = {
      "jwt/": ["jwt/index.ts"],
      "store/": ["store/index.ts"],
      // The connection sits below the store (the KV backend uses it); the services above it.
      "nats/": ["nats/index.ts", "nats/connection.ts"],
    };
    const around = imports
      .filter(({ from, to }) => Object.entries(faces).some(([p, ok]) => to.startsWith(p) && !from.startsWith(p) && !ok.includes(to)))
      .map(({ from, to }) => `${from} -> ${to}`);
    assert.deepEqual(around, []);
  });
});
