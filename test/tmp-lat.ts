import { DirStore } from "../src/store/dir.js";
import { encodePublicKey } from "../src/jwt/nkey.js";
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { open } from "node:fs/promises";
const dir = mkdtempSync("/tmp/prof/lat-");
const s = new DirStore({ dir: dir + "/store", shard: true, readonly: false });
await s.open();
const keys = Array.from({ length: 200 }, () => encodePublicKey("account", randomBytes(32)));
for (const k of keys) await s.put(k, "y".repeat(700));
const times: number[] = [];
for (let i = 0; i < 200; i++) {
  const k = process.env.UPD ? keys[i]! : encodePublicKey("account", randomBytes(32));
  const t0 = performance.now();
  await s.put(k, "x".repeat(700));
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
console.log("put p50", times[100]!.toFixed(2), "p99", times[198]!.toFixed(2));
const fh = await open(dir + "/j", "a");
const t2: number[] = [];
for (let i = 0; i < 200; i++) { const t0 = performance.now(); await fh.write(Buffer.alloc(800, 65)); await fh.datasync(); t2.push(performance.now() - t0); }
t2.sort((a, b) => a - b);
console.log("append+fdatasync p50", t2[100]!.toFixed(2), "p99", t2[198]!.toFixed(2));
await s.close();
