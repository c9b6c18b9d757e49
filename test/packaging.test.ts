/**
 * The package as a user gets it: `npm pack` from a clean copy of the checkout (no dist/), a
 * global install of the tarball with production dependencies only, then the seed's first steps.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { accountJwt, createAccount, makeOperator, userCreds } from "./helpers/fixtures.js";
import { freePort, Proc, ROOT, tempDir, writeFile } from "./helpers/processes.js";

const run = promisify(execFile);
const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;

/** Tracked and new (not ignored) files: what a fresh clone with the working tree's edits holds. */
function checkoutFiles(): string[] {
  const out = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: ROOT, encoding: "utf8" });
  return out.split("\0").filter((f) => f !== "" && existsSync(join(ROOT, f)));
}

describe("packaging - npm pack, global install with --omit=dev, seed first steps", () => {
  const work = tempDir("nas-pack-");
  const checkout = join(work, "checkout");
  const prefix = join(work, "prefix");
  let tarball: string;
  let packed: string[];
  let installLog: string;
  let bin: string;

  before(async () => {
    for (const f of checkoutFiles()) cpSync(join(ROOT, f), join(checkout, f), { recursive: true });
    assert.equal(existsSync(join(checkout, "dist")), false, "the copy must start without a build");
    // The dev tools `prepack` needs; the copy's own build goes to its own dist/.
    symlinkSync(join(ROOT, "node_modules"), join(checkout, "node_modules"), "dir");
    const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", work], { cwd: checkout, maxBuffer: 16 << 20 });
    const info = (JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>)[0]!;
    tarball = join(work, info.filename);
    packed = info.files.map((f) => f.path);
    mkdirSync(prefix);
    const inst = await run("npm", ["install", "-g", "--prefix", prefix, "--omit=dev", "--no-audit", "--no-fund", tarball], {
      cwd: work,
      maxBuffer: 16 << 20,
    });
    installLog = inst.stdout + inst.stderr;
    bin = join(prefix, "bin", "nats-account-server");
  });

  after(() => rmSync(work, { recursive: true, force: true }));

  it("ships the compiled code and the launcher, no sources, tests or maps", () => {
    for (const f of ["bin/nats-account-server.js", "dist/cli.js", "dist/server.js", "package.json", "README.md"]) {
      assert.ok(packed.includes(f), `${f} missing from the tarball: ${packed.join(", ")}`);
    }
    const extra = packed.filter((f) => /^(src|test|bench|\.ci)\/|\.map$|\.ts$|^tsconfig/.test(f));
    assert.deepEqual(extra, []);
  });

  it("installs with production dependencies only and no install script to approve", () => {
    const pkgDir = join(prefix, "lib", "node_modules", "nats-account-server");
    const deps = readdirSync(join(pkgDir, "node_modules"));
    for (const dev of ["typescript", "tsx", "autocannon", "fast-check"]) assert.ok(!deps.includes(dev), `${dev} installed`);
    assert.ok(existsSync(join(pkgDir, "node_modules", "@nats-io", "transport-node")));
    const scripts = (JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as { scripts?: Record<string, string> }).scripts ?? {};
    for (const s of ["preinstall", "install", "postinstall", "prepare"]) assert.equal(scripts[s], undefined, `${s} script shipped`);
    assert.doesNotMatch(installLog, /install-scripts|ERR!/);
  });

  it("the installed binary prints its version", async () => {
    const { stdout } = await run(bin, ["--version"]);
    assert.equal(stdout, `nats-account-server version ${VERSION}\n`);
  });

  it("the installed binary starts on the seed configuration, answers the probe 200 and takes an upload", async () => {
    const dir = tempDir("nas-pack-seed-");
    const op = makeOperator();
    const port = await freePort();
    const natsPort = await freePort();
    writeFile(dir, "AAA.jwt", op.operatorJwt);
    writeFile(dir, "SYS.jwt", op.sysJwt);
    writeFile(dir, "sys.creds", userCreds(op.sys).creds);
    const conf = writeFile(
      dir,
      "nas_not.conf",
      `operatorjwtpath: "${dir}/AAA.jwt",\nsystemaccountjwtpath: "${dir}/SYS.jwt"\nhttp {\nport: ${port}\n},\n` +
        `store {\ndir: "${dir}/as_store",\nreadonly: false,\nshard: true\n}\n` +
        `nats {\nservers: [nats://localhost:${natsPort}]\nusercredentials: "${dir}/sys.creds"\n}\n`,
    );
    // Run from elsewhere than the checkout, so nothing can resolve from the repository.
    const proc = new Proc(spawn(bin, ["-c", conf], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] }));
    try {
      await proc.waitFor(/nats-account-server is running/, 15_000);
      const probe = await fetch(`http://127.0.0.1:${port}/jwt/v1/accounts/`);
      assert.equal(probe.status, 200);
      const a = createAccount();
      const jwt = accountJwt(a, op.signer, { name: "A" });
      const up = await fetch(`http://127.0.0.1:${port}/jwt/v1/accounts/${a.getPublicKey()}`, { method: "POST", body: jwt });
      assert.equal(up.status, 200, await up.text());
      assert.equal(await (await fetch(`http://127.0.0.1:${port}/jwt/v1/accounts/${a.getPublicKey()}`)).text(), jwt);
    } finally {
      assert.equal(await proc.stop("SIGTERM"), 0, proc.output);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the installed binary runs the demo to the end with production dependencies only", async () => {
    const proc = new Proc(spawn(bin, ["demo"], { cwd: work, stdio: ["ignore", "pipe", "pipe"] }));
    assert.equal(await proc.exited, 0, proc.output);
    assert.match(proc.output, /the nats-server disconnected the user: .*revoked/i);
  });

  it("runs through npx from the tarball", async () => {
    const { stdout } = await run("npm", ["exec", "--yes", `--package=${tarball}`, "--", "nats-account-server", "--version"], {
      cwd: work,
      env: { ...process.env, npm_config_update_notifier: "false" },
    });
    assert.equal(stdout.trim().split("\n").pop(), `nats-account-server version ${VERSION}`);
  });
});
