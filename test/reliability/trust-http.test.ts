/**
 * Trust on the HTTP write path: every refused case of the shared table is refused with its status
 * and phrase and leaves nothing behind (memory, disk); every accepted case is stored and served.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { accountJwt, createAccount, type KeyPair } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/processes.js";
import { startServer, type TestServer } from "../helpers/server.js";
import {
  ACCEPTED_CASES,
  REFUSED_CASES,
  makeTrustWorld,
  refusal,
  type TrustMode,
  type UploadCase,
} from "../helpers/trust-cases.js";

describe("reliability - trust on the HTTP write path", () => {
  const w = makeTrustWorld();
  const servers = new Map<TrustMode, TestServer>();

  before(async () => {
    for (const mode of ["normal", "strict"] as const) {
      const dir = tempDir();
      const t = await startServer({
        // "normal" starts with the operator JWT that still lists the soon-removed signing key.
        operator: mode === "strict" ? w.strict : { ...w.op, operatorJwt: w.previousOperatorJwt },
        store: { dir: join(dir, "store") },
        dir,
      });
      servers.set(mode, t);
    }
    // The removed key is trusted before the reload and refused after it (a case below).
    const t = servers.get("normal")!;
    const acct = createAccount();
    const r = await post(t, acct.getPublicKey(), accountJwt(acct, w.removedSigner));
    assert.equal(r.status, 200, r.body);
    writeFileSync(t.server.config.operatorJwtPath!, w.op.operatorJwt);
    await t.server.reload(t.server.config);
  });

  after(async () => {
    for (const t of servers.values()) await t.stop();
  });

  async function post(t: TestServer, key: string, body: string): Promise<{ status: number; body: string }> {
    const r = await fetch(`${t.base}/jwt/v1/accounts/${key}`, { method: "POST", body });
    return { status: r.status, body: await r.text() };
  }

  function onDisk(t: TestServer, key: string): string | undefined {
    const file = join(t.server.config.store.dir!, `${key}.jwt`);
    return existsSync(file) ? readFileSync(file, "utf8") : undefined;
  }

  async function prepare(c: UploadCase, acct: KeyPair): Promise<{ t: TestServer; last: string | undefined }> {
    const t = servers.get(c.mode)!;
    let last: string | undefined;
    for (const jwt of c.before?.(w, acct) ?? []) {
      const r = await post(t, acct.getPublicKey(), jwt);
      assert.equal(r.status, 200, r.body);
      last = jwt;
    }
    return { t, last };
  }

  for (const c of REFUSED_CASES) {
    it(`refused: ${c.name}`, async () => {
      const acct = createAccount();
      const key = acct.getPublicKey();
      const { t, last } = await prepare(c, acct);
      const r = await post(t, c.address?.(w, acct) ?? key, c.jwt(w, acct));
      const want = refusal(c.code);
      assert.equal(r.status, want.status, r.body);
      assert.ok(r.body.startsWith(want.phrase), `${r.body} should start with ${want.phrase}`);
      // Nothing changed: what was stored before is still served and on disk, byte for byte.
      const g = await fetch(`${t.base}/jwt/v1/accounts/${key}`);
      if (last === undefined) {
        assert.equal(g.status, 404);
        assert.equal(onDisk(t, key), undefined);
      } else {
        assert.equal(await g.text(), last);
        assert.equal(onDisk(t, key), last);
      }
    });
  }

  for (const c of ACCEPTED_CASES) {
    it(`accepted: ${c.name}`, async () => {
      const acct = createAccount();
      const key = acct.getPublicKey();
      const { t } = await prepare(c, acct);
      const jwt = c.jwt(w, acct);
      const r = await post(t, c.address?.(w, acct) ?? key, jwt);
      assert.equal(r.status, 200, r.body);
      assert.equal(await (await fetch(`${t.base}/jwt/v1/accounts/${key}`)).text(), jwt);
      assert.equal(onDisk(t, key), jwt);
    });
  }
});
