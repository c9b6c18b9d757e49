/**
 * The directory store's write-ahead journal: concurrent changes share fdatasyncs, a crash at any
 * point between the journal and the files is repaired by replay, and checkpoints drop the journal.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodePublicKey } from "../../src/jwt/index.js";
import { createLogger } from "../../src/log.js";
import { defaultConfig } from "../../src/config/types.js";
import { DirStore } from "../../src/store/dir.js";
import { Journal } from "../../src/store/journal.js";
import { tempDir } from "../helpers/processes.js";
import { storedJwt } from "../helpers/stored.js";

const newKey = (): string => encodePublicKey("account", randomBytes(32));
const journalFiles = (dir: string): string[] => readdirSync(dir).filter((n) => n.startsWith(".journal.")).sort();
const fileOf = (dir: string, key: string): string => join(dir, key.slice(-2), `${key}.jwt`);

function capture(): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const log = createLogger({ ...defaultConfig().logging, debug: true }, { write: (l) => void lines.push(l), isTTY: false });
  return { lines, log };
}

/** A store directory with journal records an interrupted run left (written with the journal itself). */
async function leaveJournal(dir: string, ops: Parameters<Journal["append"]>[0][]): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const j = new Journal(dir, capture().log);
  await j.recover();
  for (const op of ops) await j.append(op);
  await j.close();
}

describe("store - write-ahead journal", () => {
  it("appends that arrive during an fdatasync share the next one, and read back in order", async () => {
    const dir = tempDir();
    const j = new Journal(dir, capture().log);
    await j.recover();
    const keys = Array.from({ length: 200 }, newKey);
    await Promise.all(keys.map((key, i) => j.append({ op: "put", key, jwt: `jwt-${i}` })));
    assert.ok(j.syncs < keys.length / 4, `${j.syncs} fdatasyncs for ${keys.length} appends`);
    await j.close();
    const again = new Journal(dir, capture().log);
    const ops = await again.recover();
    assert.deepEqual(ops.map((o) => o.key), keys);
    // New appends go to a new generation, after what was recovered.
    await again.append({ op: "rm", key: keys[0]! });
    await again.close();
    assert.deepEqual(journalFiles(dir), [".journal.1", ".journal.2"]);
  });

  it("a torn last line was never acknowledged and is skipped; a damaged line is reported", async () => {
    const dir = tempDir();
    const [a, b, c] = [newKey(), newKey(), newKey()];
    await leaveJournal(dir, [
      { op: "put", key: a, jwt: "A1" },
      { op: "put", key: b, jwt: "B1" },
    ]);
    const file = join(dir, ".journal.1");
    const text = readFileSync(file, "utf8");
    // Flip one character of the second record's JWT: its checksum no longer matches.
    writeFileSync(file, text.replace('"B1"', '"B2"'));
    appendFileSync(file, `{"op":"put","key":"${c}","jwt":"C1"} 0000`);
    const { lines, log } = capture();
    const ops = await new Journal(dir, log).recover();
    assert.deepEqual(ops, [{ op: "put", key: a, jwt: "A1" }]);
    assert.equal(lines.filter((l) => l.includes("damaged record")).length, 1);
  });

  it("replay after a crash brings every file to the last journaled state, durably, and keeps the journal until a checkpoint", async () => {
    const dir = join(tempDir(), "store");
    const [a, b, c, d, e] = [newKey(), newKey(), newKey(), newKey(), newKey()];
    // What the files showed when the run was killed: the journal is ahead of them.
    mkdirSync(join(dir, b.slice(-2)), { recursive: true });
    writeFileSync(fileOf(dir, b), "B-old");
    mkdirSync(join(dir, c.slice(-2)), { recursive: true });
    writeFileSync(fileOf(dir, c), "C-old");
    mkdirSync(join(dir, d.slice(-2)), { recursive: true });
    writeFileSync(fileOf(dir, d), "D-old");
    writeFileSync(join(dir, d.slice(-2), `.${d}.jwt.0a0b0c0d0e0f.tmp`), "D-n");
    await leaveJournal(dir, [
      { op: "put", key: a, jwt: "A1" },
      { op: "put", key: a, jwt: "A2" },
      { op: "put", key: b, jwt: "B1" },
      { op: "tomb", key: c },
      { op: "rm", key: d },
      // Its shard directory never reached the disk.
      { op: "rm", key: e },
    ]);
    const { lines, log } = capture();
    const s = new DirStore({ dir, shard: true, readonly: false, log });
    await s.open();
    assert.equal(readFileSync(fileOf(dir, a), "utf8"), "A2");
    assert.equal(readFileSync(fileOf(dir, b), "utf8"), "B1");
    assert.equal(existsSync(fileOf(dir, c)), false);
    assert.equal(readFileSync(fileOf(dir, c) + ".deleted", "utf8"), "C-old");
    assert.equal(existsSync(fileOf(dir, d)), false);
    assert.deepEqual(readdirSync(join(dir, d.slice(-2))).filter((n) => n.endsWith(".tmp")), [], "leftover temp file removed");
    assert.equal(await storedJwt(s, a), "A2");
    assert.equal(s.get(c), undefined);
    assert.ok(s.isDeleted(c));
    assert.deepEqual([...s.journaled!.recovered].sort(), [a, b, c, d, e].sort());
    assert.ok(lines.some((l) => l.includes("replayed 6 journaled change(s) of 5 account(s)")));
    // The hooks learn of the recovered keys before the journal that holds them goes.
    let journalAtHook: string[] = [];
    s.journaled!.beforeCheckpoint(async () => void (journalAtHook = journalFiles(dir)));
    assert.deepEqual(journalFiles(dir), [".journal.1"]);
    await s.journaled!.checkpoint();
    assert.deepEqual(journalAtHook, [".journal.1"]);
    assert.deepEqual(journalFiles(dir), []);
    await s.close();
    const again = new DirStore({ dir, shard: true, readonly: false });
    await again.open();
    assert.deepEqual(again.journaled!.recovered, []);
    assert.equal(await storedJwt(again, b), "B1");
    await again.close();
  });

  it("acknowledged changes are in the journal until the checkpoint, which a clean close runs", async () => {
    const dir = join(tempDir(), "store");
    const s = new DirStore({ dir, shard: true, readonly: false, checkpointMs: 3_600_000 });
    await s.open();
    const keys = Array.from({ length: 100 }, newKey);
    await Promise.all(keys.map((k, i) => s.put(k, `jwt-${i}`)));
    assert.ok(s.journalSyncs < keys.length / 2, `${s.journalSyncs} journal fdatasyncs for ${keys.length} puts`);
    await s.tombstone(keys[0]!);
    await s.remove(keys[1]!);
    // What a kill -9 now would leave: every change is in the journal, whatever the files show.
    const ops = await new Journal(dir, capture().log).recover();
    assert.equal(ops.length, keys.length + 2);
    assert.deepEqual(ops.slice(-2), [{ op: "tomb", key: keys[0] }, { op: "rm", key: keys[1] }]);
    await s.close();
    for (const [i, k] of keys.entries()) {
      if (i > 1) assert.equal(readFileSync(fileOf(dir, k), "utf8"), `jwt-${i}`);
    }
    assert.ok(existsSync(fileOf(dir, keys[0]!) + ".deleted"));
    assert.equal(existsSync(fileOf(dir, keys[1]!)), false);
    assert.deepEqual(journalFiles(dir), []);
    const again = new DirStore({ dir, shard: true, readonly: false });
    await again.open();
    assert.equal(again.size, keys.length - 2);
    assert.ok(again.isDeleted(keys[0]!));
    await again.close();
  });

  it("a checkpoint runs by itself after the configured delay", async () => {
    const dir = join(tempDir(), "store");
    const s = new DirStore({ dir, shard: false, readonly: false, checkpointMs: 10 });
    await s.open();
    let hooks = 0;
    const checkpointed = new Promise<void>((resolve) =>
      s.journaled!.beforeCheckpoint(async () => {
        hooks++;
        resolve();
      }),
    );
    await s.put(newKey(), "x");
    assert.equal(journalFiles(dir).length, 1);
    // The store's timer does not hold the process open (a server's listener does): this does.
    const alive = setInterval(() => {}, 1000);
    await checkpointed;
    clearInterval(alive);
    await s.journaled!.checkpoint();
    assert.deepEqual(journalFiles(dir), []);
    assert.equal(hooks, 1, "an idle store runs no empty checkpoints");
    await s.close();
  });
});
