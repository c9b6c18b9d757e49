/**
 * Tests for Go-style command-line flags: the accepted spellings, errors for bad command lines,
 * `-hp` parsing and that each flag overrides only the setting it names.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { applyFlags, FlagError, parseFlags, parseHostPort, USAGE } from "../../src/config/flags.js";
import type { Flags } from "../../src/config/flags.js";
import { parseConf } from "../../src/config/parser.js";
import { configFromConf } from "../../src/config/schema.js";
import { defaultConfig } from "../../src/config/types.js";

describe("parseFlags: accepted command lines", () => {
  const CASES: ReadonlyArray<{ argv: string[]; want: Flags }> = [
    { argv: [], want: {} },
    { argv: ["-c", "/etc/nas.conf"], want: { configFile: "/etc/nas.conf" } },
    { argv: ["--c", "/etc/nas.conf"], want: { configFile: "/etc/nas.conf" } },
    { argv: ["-c=/etc/nas.conf"], want: { configFile: "/etc/nas.conf" } },
    { argv: ["--c=/etc/nas.conf"], want: { configFile: "/etc/nas.conf" } },
    { argv: ["-c", "nas.conf"], want: { configFile: resolve("nas.conf") } },
    { argv: ["-c", "~/nas.conf"], want: { configFile: join(homedir(), "nas.conf") } },
    { argv: ["-dir", "jwts"], want: { dir: resolve("jwts") } },
    { argv: ["-operator", "./op.jwt"], want: { operator: resolve("op.jwt") } },
    { argv: ["-creds", "~/sys.creds"], want: { creds: join(homedir(), "sys.creds") } },
    { argv: ["-nsc", "/nsc/op"], want: { nsc: "/nsc/op" } },
    { argv: ["-nats", "nats://a:4222"], want: { nats: "nats://a:4222" } },
    { argv: ["-primary", "http://p:9090"], want: { primary: "http://p:9090" } },
    { argv: ["-hp", "127.0.0.1:9191"], want: { hostPort: "127.0.0.1:9191" } },
    { argv: ["-ro"], want: { readOnly: true } },
    { argv: ["-maxclockskew", "90s"], want: { maxClockSkew: 90_000 } },
    { argv: ["-maxclockskew=0"], want: { maxClockSkew: 0 } },
    { argv: ["-D"], want: { debug: true } },
    { argv: ["-V"], want: { trace: true } },
    { argv: ["-DV"], want: { debug: true, trace: true } },
    { argv: ["-D=false"], want: { debug: false } },
    { argv: ["--D=true", "-V=0"], want: { debug: true, trace: false } },
    { argv: ["-dump"], want: { dump: true } },
    { argv: ["-h"], want: { help: true } },
    { argv: ["-help"], want: { help: true } },
    { argv: ["--help"], want: { help: true } },
    { argv: ["--version"], want: { version: true } },
    { argv: ["-version"], want: { version: true } },
    { argv: ["-D", "--"], want: { debug: true } },
    {
      argv: ["-c", "/a.conf", "-D", "-dir=/jwts", "--hp", ":9090"],
      want: { configFile: "/a.conf", debug: true, dir: "/jwts", hostPort: ":9090" },
    },
    // A value may itself start with '-' once the flag has asked for one.
    { argv: ["-primary", "-weird"], want: { primary: "-weird" } },
  ];
  for (const tc of CASES) {
    it(tc.argv.join(" ") || "(none)", () => {
      assert.deepStrictEqual(parseFlags(tc.argv), tc.want);
    });
  }
});

describe("parseFlags: rejected command lines", () => {
  const CASES: ReadonlyArray<{ argv: string[]; message: RegExp }> = [
    { argv: ["-x"], message: /flag provided but not defined: -x/ },
    { argv: ["--port", "1"], message: /flag provided but not defined: -port/ },
    { argv: ["-d"], message: /not defined: -d/ },
    { argv: ["-c"], message: /flag needs an argument: -c/ },
    { argv: ["-D", "-dir"], message: /flag needs an argument: -dir/ },
    { argv: ["-D=maybe"], message: /invalid boolean value "maybe" for -D/ },
    { argv: ["---c", "x"], message: /bad flag syntax/ },
    { argv: ["-=x"], message: /bad flag syntax/ },
    { argv: ["nas.conf"], message: /unexpected argument "nas.conf"/ },
    { argv: ["-D", "--", "x"], message: /unexpected argument "x"/ },
    { argv: ["-hp", "localhost"], message: /error parsing hostport: missing port/ },
    { argv: ["-hp", "localhost:http"], message: /error parsing hostport: invalid port "http"/ },
  ];
  for (const tc of CASES) {
    it(tc.argv.join(" "), () => {
      assert.throws(() => parseFlags(tc.argv), (e: unknown) => e instanceof FlagError && tc.message.test(e.message));
    });
  }
});

describe("parseHostPort", () => {
  const GOOD: ReadonlyArray<[string, string, number]> = [
    ["localhost:9090", "localhost", 9090],
    ["0.0.0.0:80", "0.0.0.0", 80],
    [":9090", "", 9090],
    ["[::1]:9090", "::1", 9090],
    ["[::]:0", "::", 0],
    ["host:65535", "host", 65535],
  ];
  for (const [hp, host, port] of GOOD) {
    it(`${hp} → ${JSON.stringify(host)} ${port}`, () => {
      assert.deepStrictEqual(parseHostPort(hp), { host, port });
    });
  }
  const BAD: ReadonlyArray<[string, RegExp]> = [
    ["", /missing port/],
    ["localhost", /missing port/],
    ["localhost:", /invalid port ""/],
    ["h:x1", /invalid port "x1"/],
    ["h:-1", /invalid port "-1"/],
    ["h:70000", /out of range/],
    ["::1:9090", /too many colons/],
    ["[::1]9090", /missing port/],
    ["[::1:9090", /missing '\]'/],
  ];
  for (const [hp, re] of BAD) {
    it(`rejects ${JSON.stringify(hp)}`, () => {
      assert.throws(
        () => parseHostPort(hp),
        (e: unknown) => e instanceof Error && e.message.startsWith("error parsing hostport: ") && re.test(e.message),
      );
    });
  }
});

describe("applyFlags", () => {
  const fromFile = configFromConf(
    parseConf(
      "http { host: filehost, port: 1 }\nstore { dir: /file/dir, shard: true, cleanupinterval: 5s }\nnats { servers: [nats://f:1, nats://g:2], usercredentials: /f.creds }\nlogging { debug: true }",
      { env: {} },
    ),
  ).config;

  it("changes nothing without flags", () => {
    assert.deepStrictEqual(applyFlags(fromFile, {}), fromFile);
  });

  it("-dir replaces only store.dir and keeps shard and cleanupinterval", () => {
    const c = applyFlags(fromFile, parseFlags(["-dir", "/flag/dir"]));
    assert.deepStrictEqual(c.store, { ...fromFile.store, dir: "/flag/dir" });
    assert.equal(c.store.shard, true);
    assert.equal(c.store.cleanupInterval, 5000);
  });

  it("-hp sets host and port", () => {
    assert.deepStrictEqual(applyFlags(fromFile, parseFlags(["-hp", ":9191"])).http, {
      ...fromFile.http,
      host: "",
      port: 9191,
    });
    const v6 = applyFlags(fromFile, { hostPort: "[::1]:8080" }).http;
    assert.equal(v6.host, "::1");
    assert.equal(v6.port, 8080);
  });

  it("-hp built by hand is still checked", () => {
    assert.throws(() => applyFlags(fromFile, { hostPort: "nope" }), /error parsing hostport/);
  });

  it("-nats replaces the server list (one URL or a comma-separated list)", () => {
    assert.deepStrictEqual(applyFlags(fromFile, { nats: "nats://x:4222" }).nats.servers, ["nats://x:4222"]);
    assert.deepStrictEqual(applyFlags(fromFile, { nats: "nats://x:1, nats://y:2," }).nats.servers, [
      "nats://x:1",
      "nats://y:2",
    ]);
    assert.equal(applyFlags(fromFile, { nats: "nats://x:4222" }).nats.userCredentials, "/f.creds");
  });

  it("maps every other flag onto its one setting", () => {
    const c = applyFlags(
      fromFile,
      parseFlags(["-operator", "/op.jwt", "-creds", "/c.creds", "-primary", "http://p", "-nsc", "/nsc", "-ro", "-V"]),
    );
    assert.deepStrictEqual(c, {
      ...fromFile,
      operatorJwtPath: "/op.jwt",
      primary: "http://p",
      nats: { ...fromFile.nats, userCredentials: "/c.creds" },
      store: { ...fromFile.store, nsc: "/nsc", readonly: true },
      logging: { ...fromFile.logging, trace: true },
    });
  });

  it("-D=false turns debug off, absent -D leaves the file's value", () => {
    assert.equal(applyFlags(fromFile, parseFlags(["-D=false"])).logging.debug, false);
    assert.equal(applyFlags(fromFile, parseFlags(["-V"])).logging.debug, true);
  });

  it("does not modify its input", () => {
    const before = structuredClone(fromFile);
    applyFlags(fromFile, parseFlags(["-dir", "/x", "-hp", ":1", "-nats", "n", "-D"]));
    assert.deepStrictEqual(fromFile, before);
  });

  it("-maxclockskew sets maxclockskew", () => {
    assert.equal(applyFlags(defaultConfig(), parseFlags(["-maxclockskew", "1h"])).maxClockSkew, 3_600_000);
    assert.throws(() => parseFlags(["-maxclockskew", "soon"]), (e: unknown) => e instanceof FlagError && /-maxclockskew: expected a duration/.test(e.message));
  });

  it("works on defaults", () => {
    const c = applyFlags(defaultConfig(), parseFlags(["-dir", "/jwts"]));
    assert.deepStrictEqual(c.store, { ...defaultConfig().store, dir: "/jwts" });
  });
});

describe("USAGE", () => {
  it("lists every flag on its own line", () => {
    for (const f of ["c", "dir", "operator", "nats", "creds", "hp", "primary", "nsc", "ro", "maxclockskew", "D", "V", "DV", "dump", "h", "help", "version"]) {
      assert.match(USAGE, new RegExp(`^  -${f}\\b`, "m"), f);
    }
  });
});
