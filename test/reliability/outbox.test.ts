/**
 * The notification outbox on a real disk: intents are durable before a write proceeds, a late
 * confirmation never drops a newer change, notify-only marks cost no disk write, and a torn or
 * foreign file is reported instead of trusted.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Outbox, OUTBOX_FILE } from "../../src/nats/outbox.js";
import { silentLogger } from "../../src/log.js";
import { createAccount } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/processes.js";

const onDisk = (file: string): string[] => (JSON.parse(readFileSync(file, "utf8")) as { pending: string[] }).pending;

describe("reliability - notification outbox", () => {
  it("begin() resolves only once the key is in the file; confirm() removes it unless it changed again", async () => {
    const file = join(tempDir(), "state", OUTBOX_FILE);
    const box = new Outbox({ file, log: silentLogger });
    assert.equal(await box.open(), true);
    const [a, b] = [createAccount().getPublicKey(), createAccount().getPublicKey()];
    // Concurrent intents share writes (group commit) and are all on disk when they resolve.
    await Promise.all([box.begin(a), box.begin(b)]);
    assert.deepEqual(onDisk(file).sort(), [a, b].sort());
    box.end(a);
    box.end(b);

    const sentA = box.generation(a)!;
    await box.begin(a); // a changed again after the first announcement was sent
    box.end(a);
    box.confirm(a, sentA);
    assert.equal(box.size, 2, "a late confirmation of an older announcement keeps the newer change");
    box.confirm(a, box.generation(a)!);
    box.confirm(b, box.generation(b)!);
    await box.save();
    assert.deepEqual(onDisk(file), []);
  });

  it("a key being written is not confirmed away; notify-only marks never touch the disk", async () => {
    const file = join(tempDir(), OUTBOX_FILE);
    const box = new Outbox({ file, log: silentLogger });
    await box.open();
    const k = createAccount().getPublicKey();
    await box.begin(k);
    box.confirm(k, box.generation(k)!);
    assert.equal(box.size, 1, "still being written");
    box.end(k);
    box.confirm(k, box.generation(k)!);
    await box.save();
    const before = readFileSync(file, "utf8");
    const n = createAccount().getPublicKey();
    box.mark(n);
    await box.save();
    assert.equal(readFileSync(file, "utf8"), before);
    assert.deepEqual(box.keys(), [n]);
  });

  it("a write that stored nothing takes back its begin(): nothing already announced goes out again", async () => {
    const file = join(tempDir(), "state", OUTBOX_FILE);
    const box = new Outbox({ file, log: silentLogger });
    await box.open();
    const fresh = createAccount().getPublicKey();
    await box.begin(fresh);
    box.end(fresh, false);
    assert.equal(box.generation(fresh), undefined);
    await box.save();
    assert.deepEqual(onDisk(file), []);
    // An earlier change still unconfirmed: a refused write leaves it as it was, so its own
    // confirmation still clears it, also when that confirmation arrives during the write.
    const k = createAccount().getPublicKey();
    box.mark(k);
    const sent = box.generation(k)!;
    await box.begin(k);
    box.end(k, false);
    assert.equal(box.generation(k), sent);
    box.confirm(k, sent);
    assert.equal(box.generation(k), undefined);
    box.mark(k);
    const sent2 = box.generation(k)!;
    await box.begin(k);
    box.confirm(k, sent2);
    box.end(k, false);
    assert.equal(box.generation(k), undefined);
    // A write of unknown outcome keeps the key: a duplicate rather than a lost announcement.
    await box.begin(k);
    box.end(k, true);
    assert.notEqual(box.generation(k), undefined);
  });

  it("reloads pending keys, drops its temp files, and reports an unreadable file", async () => {
    const dir = tempDir();
    const file = join(dir, OUTBOX_FILE);
    const k = createAccount().getPublicKey();
    const first = new Outbox({ file, log: silentLogger });
    await first.open();
    await first.begin(k);
    writeFileSync(join(dir, `.${OUTBOX_FILE}.abc123.tmp`), "torn");
    const second = new Outbox({ file, log: silentLogger });
    assert.equal(await second.open(), true);
    assert.deepEqual(second.keys(), [k]);
    assert.deepEqual(readdirSync(dir), [OUTBOX_FILE]);
    writeFileSync(file, "{ not json");
    assert.equal(await new Outbox({ file, log: silentLogger }).open(), false);
    writeFileSync(file, JSON.stringify({ pending: ["../../etc/passwd", k, 7] }));
    const third = new Outbox({ file, log: silentLogger });
    assert.equal(await third.open(), true);
    assert.deepEqual(third.keys(), [k], "only account keys are taken from the file");
  });

  it("without a file it is a memory outbox", async () => {
    const box = new Outbox({ log: silentLogger });
    assert.equal(await box.open(), true);
    const k = createAccount().getPublicKey();
    await box.begin(k);
    box.end(k);
    assert.deepEqual(box.keys(), [k]);
    assert.equal(existsSync(OUTBOX_FILE), false);
  });
});
