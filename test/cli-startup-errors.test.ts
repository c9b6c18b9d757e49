/**
 * Every startup error of the legacy catalogue (spec §8.4) through the real CLI: exit code 1 and a
 * message naming the problem. An unreachable primary is not one of them.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { createAccount, makeOperator } from "./helpers/fixtures.js";
import { freePort, trackedCli, tempDir, writeFile } from "./helpers/processes.js";

const cli = trackedCli();

/** Run the CLI and expect exit code 1 with `message` in its output. */
async function fails(args: string[], message: RegExp): Promise<void> {
  const p = cli(args);
  const code = await p.exited;
  assert.equal(code, 1, `exit code ${code}:\n${p.output}`);
  assert.match(p.output, message);
  assert.doesNotMatch(p.output, /nats-account-server is running/);
}

const dir = tempDir("nas-startup-");
const op = makeOperator();
const other = makeOperator();
const opJwt = writeFile(dir, "op.jwt", op.operatorJwt);
const otherSysJwt = writeFile(dir, "other-sys.jwt", other.sysJwt);
const garbage = writeFile(dir, "garbage.jwt", "this is not a JWT\n");
const HP = ["-hp", "127.0.0.1:0"];
/** A config file with the given body plus a loopback listener on a free port. */
const conf = (name: string, body: string): string => writeFile(dir, name, `http { host: 127.0.0.1, port: 0 }\n${body}\n`);

// A few at a time: each is a node process compiling the sources.
describe("cli - startup errors exit 1 with a clear message", { concurrency: 4 }, () => {
  it("configuration file unreadable", () =>
    fails(["-c", join(dir, "missing.conf")], /cannot read configuration file: ENOENT.*missing\.conf/));

  it("configuration syntax error", () =>
    fails(["-c", writeFile(dir, "syntax.conf", "http {\n  port: 1\n")], /syntax\.conf:\d+: map opened on line 1 is missing its closing '}'/));

  it("configuration type error names the key and line", () =>
    fails(["-c", writeFile(dir, "type.conf", 'operatorjwtpath: "x"\nhttp { port: "abc" }\n')], /http\.port: expected an integer, got "abc" \(type\.conf line 2\)/));

  it("bad -hp", () => fails(["-hp", "localhost"], /error parsing hostport: missing port in address \(in "localhost"\)/));

  it("empty store directory", () => fails(["-c", conf("empty-dir.conf", 'store { dir: "" }')], /store\.dir: store directory is required \(empty-dir\.conf line 2\)/));

  it("store directory not creatable", () => {
    const file = writeFile(dir, "a-file", "");
    return fails([...HP, "-dir", join(file, "store")], /\[ERR\] error opening store .*a-file\/store: ENOTDIR/);
  });

  it("operator JWT unreadable", () => fails([...HP, "-operator", join(dir, "nope.jwt")], /\[ERR\] error reading operator JWT from .*nope\.jwt: ENOENT/));

  it("operator JWT not decodable", () => fails([...HP, "-operator", garbage], /\[ERR\] error decoding operator JWT .*garbage\.jwt/));

  it("system account JWT unreadable", () =>
    fails(["-c", conf("sys-missing.conf", `systemaccountjwtpath: "${join(dir, "nope-sys.jwt")}"`)], /\[ERR\] error reading system account JWT from .*nope-sys\.jwt: ENOENT/));

  it("system account JWT not decodable", () =>
    fails(["-c", conf("sys-garbage.conf", `systemaccountjwtpath: "${garbage}"`)], /\[ERR\] error decoding system account JWT .*garbage\.jwt/));

  it("operator and system account do not match", () =>
    fails(
      ["-c", conf("mismatch.conf", `operatorjwtpath: "${opJwt}"\nsystemaccountjwtpath: "${otherSysJwt}"`)],
      new RegExp(`\\[ERR\\] operator declares system account ${op.sys.getPublicKey()} but .*other-sys\\.jwt holds ${other.sys.getPublicKey()}`),
    ));

  it("TLS key pair unloadable", () =>
    fails(["-c", conf("tls.conf", `http { tls { cert: "${garbage}", key: "${garbage}" } }`)], /\[ERR\] error loading X509 certificate\/key pair: /));

  it("listen failure: unknown host", () => fails(["-hp", "abc:0"], /\[ERR\] error listening on abc:0: getaddrinfo/));

  it("listen failure: port in use", async () => {
    const port = await freePort();
    const holder: Server = createServer();
    await new Promise<void>((r) => holder.listen(port, "127.0.0.1", r));
    try {
      await fails(["-hp", `127.0.0.1:${port}`], new RegExp(`\\[ERR\\] error listening on 127\\.0\\.0\\.1:${port}: listen EADDRINUSE`));
    } finally {
      holder.close();
    }
  });

  it("nsc folder missing", () => fails([...HP, "-nsc", join(dir, "no-such-operator")], /\[ERR\] nsc folder .*no-such-operator is not a directory/));

  it("nsc folder without its operator JWT", () => {
    const folder = join(dir, "OP");
    mkdirSync(join(folder, "accounts"), { recursive: true });
    return fails([...HP, "-nsc", folder], /\[ERR\] error reading operator JWT from .*OP\/OP\.jwt: ENOENT/);
  });

  it("a replica cannot serve an nsc folder or a read-only directory", async () => {
    const folder = join(dir, "OP2");
    mkdirSync(folder, { recursive: true });
    await fails([...HP, "-nsc", folder, "-primary", "http://127.0.0.1:1"], /\[ERR\] a replica \(primary\) needs a writable store/);
    await fails([...HP, "-ro", "-dir", join(dir, "ro"), "-primary", "http://127.0.0.1:1"], /\[ERR\] a replica \(primary\) needs a writable store/);
  });

  it("a store type without what it needs", async () => {
    await fails(["-c", conf("type-dir.conf", "store { type: dir }")], /\[ERR\] store type dir needs store\.dir/);
    await fails(["-c", conf("type-kv.conf", "store { type: kv }")], /\[ERR\] store type kv needs store\.servers or nats\.servers/);
    await fails(["-c", conf("type-bad.conf", "store { type: sql }")], /store\.type: expected one of memory, dir, nsc, kv, got "sql"/);
  });

  it("a primary that is not an http(s) URL", () => fails([...HP, "-primary", "primary:9090"], /\[ERR\] primary: "primary:9090" must be an http:\/\/ or https:\/\/ URL/));
});

describe("cli - not startup errors", () => {
  it("an unreachable primary: the replica starts with what is on disk and serves it", async () => {
    const port = await freePort();
    const p = cli([...HP, "-operator", opJwt, "-primary", `http://127.0.0.1:${port}`]);
    const line = await p.waitFor(/http listening on port \d+/);
    await p.waitFor(/nats-account-server is running/);
    assert.match(p.output, /\[WRN\] will use what is on disk/);
    const asPort = Number(/port (\d+)/.exec(line)![1]);
    assert.equal((await fetch(`http://127.0.0.1:${asPort}/jwt/v1/accounts/${createAccount().getPublicKey()}`)).status, 404);
    assert.equal(await p.stop("SIGTERM"), 0);
  });
});
