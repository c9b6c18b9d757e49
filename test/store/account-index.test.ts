// The columnar account index against a plain Map model: random sets and deletes (past a chunk
// and several table growths), odd keys, the XOR hash, stamps and signature marks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { AccountIndex } from "../../src/store/account-index.js";
import { AccountEntry, digestOf, sameEntry } from "../../src/store/types.js";

/** A deterministic generator (xorshift), so a failure replays. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
function accountKey(n: number): string {
  let k = "A";
  let x = n * 2654435761;
  for (let i = 1; i < 56; i++) {
    k += B32[(x >>> 0) % 32];
    x = Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + i;
  }
  return k;
}

function entry(key: string, version: number, iss = "OPERATOR"): AccountEntry {
  const body = `${key}.${version}`;
  return new AccountEntry(key, digestOf(body), body.length, version % 7 === 0 ? undefined : 1_700_000_000 + version, version % 3 === 0 ? 0 : 2_000_000_000.5, iss);
}

function xorOf(entries: Iterable<AccountEntry>): Buffer {
  const acc = Buffer.alloc(32);
  for (const e of entries) for (let i = 0; i < 32; i++) acc[i]! ^= e.digest.charCodeAt(i);
  return acc;
}

function same(a: AccountEntry | undefined, b: AccountEntry | undefined): void {
  assert.equal(a === undefined, b === undefined);
  if (!a || !b) return;
  assert.deepEqual(
    [a.key, a.digest, a.size, a.iat, a.exp, a.iss, a.stamp],
    [b.key, b.digest, b.size, b.iat, b.exp, b.iss, b.stamp],
  );
}

test("random sets and deletes agree with a Map, across chunks and table growth", () => {
  const index = new AccountIndex();
  const model = new Map<string, AccountEntry>();
  const next = rng(42);
  const keys = Array.from({ length: 40_000 }, (_, i) => (i % 997 === 0 ? `odd-${i}` : accountKey(i)));
  for (let op = 0; op < 120_000; op++) {
    const key = keys[Math.floor(next() * keys.length)]!;
    if (next() < 0.3) {
      assert.equal(index.delete(key), model.delete(key));
    } else {
      const e = entry(key, op);
      index.set(e);
      model.set(key, e);
    }
    if (op % 20_000 === 0) assert.equal(index.size, model.size);
  }
  assert.equal(index.size, model.size);
  for (const key of keys) same(index.get(key), model.get(key));
  const listed = [...index.entries()];
  assert.equal(listed.length, model.size);
  for (const e of listed) same(e, model.get(e.key));
  assert.deepEqual(index.hash(), xorOf(model.values()));
  for (const key of keys) index.delete(key);
  assert.equal(index.size, 0);
  assert.deepEqual(index.hash(), Buffer.alloc(32));
  assert.deepEqual([...index.entries()], []);
});

test("every look-up is a new object; the stamp says whether it is the same version", () => {
  const index = new AccountIndex();
  const key = accountKey(1);
  const first = entry(key, 1);
  index.set(first);
  const a = index.get(key)!;
  const b = index.get(key)!;
  assert.notEqual(a, b);
  assert.ok(sameEntry(a, b) && sameEntry(a, first));
  index.set(entry(key, 1)); // the same bytes stored again: a new version
  assert.ok(!sameEntry(index.get(key), a));
  assert.ok(!sameEntry(new AccountEntry(key, a.digest, a.size, a.iat, a.exp, a.iss), new AccountEntry(key, a.digest, a.size, a.iat, a.exp, a.iss)));
  assert.ok(sameEntry(undefined, undefined));
});

test("a signature mark sticks to the version it was made for", () => {
  const index = new AccountIndex();
  const key = accountKey(2);
  index.set(entry(key, 1));
  const old = index.get(key)!;
  assert.equal(old.signature, "unchecked");
  index.mark(old, "bad");
  assert.equal(index.get(key)!.signature, "bad");
  index.set(entry(key, 2));
  index.mark(old, "good"); // too late: a new version is served
  assert.equal(index.get(key)!.signature, "unchecked");
  const signed = entry(key, 3);
  signed.signature = "good";
  index.set(signed);
  assert.equal(index.get(key)!.signature, "good");
  const stranger = entry(accountKey(99), 1);
  index.mark(stranger, "bad"); // not in the index: nothing happens
  assert.equal(index.get(stranger.key), undefined);
});

test("values the columns must keep exactly: odd times, sizes, undecodable entries, many issuers", () => {
  const index = new AccountIndex();
  const key = accountKey(3);
  const odd = new AccountEntry(key, createHash("sha256").update("x").digest().toString("latin1"), 4_000_000_000, -1.5, 1e300, "");
  index.set(odd);
  same(index.get(key), odd);
  const undecodable = new AccountEntry(key, odd.digest, 1, undefined, 0, "");
  index.set(undecodable);
  assert.equal(index.get(key)!.iat, undefined);
  // More issuers than the columns number: the rest are kept whole, and served the same.
  for (let i = 0; i < 5000; i++) index.set(entry(accountKey(10 + i), i, `ISSUER${i}`));
  for (let i = 0; i < 5000; i++) assert.equal(index.get(accountKey(10 + i))!.iss, `ISSUER${i}`);
  assert.equal(index.size, 5001);
  // A key moving between the two homes is counted once.
  index.set(entry(accountKey(10 + 4999), 1, "OPERATOR"));
  assert.equal(index.size, 5001);
  assert.equal(index.get(accountKey(10 + 4999))!.iss, "OPERATOR");
  assert.deepEqual(index.hash(), xorOf(index.entries()));
});
