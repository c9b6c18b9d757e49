/**
 * Tests for mapping parsed conf files onto `Config`: the user's document, case-insensitive keys,
 * warnings for unknown keys, type errors naming key and line, durations and path resolution.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseConf } from "../../src/config/parser.js";
import { ConfigError, configFromConf, loadConfigFile, parseDuration } from "../../src/config/schema.js";
import { defaultConfig } from "../../src/config/types.js";
import type { Config } from "../../src/config/types.js";
import { SEED_CONF } from "../helpers/seed.js";


const FILE = "/etc/nas/conf.conf";

function load(text: string, base?: Config): { config: Config; warnings: string[] } {
  return configFromConf(parseConf(text, { file: FILE, env: {} }), base);
}

describe("configFromConf: the user's document", () => {
  it("loads unchanged into the expected Config", () => {
    const { config, warnings } = load(SEED_CONF);
    const d = defaultConfig();
    assert.deepStrictEqual(warnings, []);
    assert.deepStrictEqual(config, {
      ...d,
      operatorJwtPath: "/users/synadia/.nsc/nats/AAA/AAA.jwt",
      systemAccountJwtPath: "/users/synadia/.nsc/nats/AAA/accounts/SYS/SYS.jwt",
      http: { ...d.http, port: 9090 },
      store: { ...d.store, dir: "/tmp/as_store", shard: true, readonly: false },
      nats: {
        ...d.nats,
        servers: ["nats://localhost:4222"],
        userCredentials: "/Users/synadia/.nkeys/AAA/accounts/SYS/users/sys.creds",
      },
    });
  });

  it("loads from a file on disk", () => {
    const dir = mkdtempSync(join(tmpdir(), "conf-schema-"));
    const file = join(dir, "nas_not.conf");
    writeFileSync(file, SEED_CONF);
    const { config } = loadConfigFile(file, {});
    assert.equal(config.http.port, 9090);
    assert.equal(config.store.dir, "/tmp/as_store");
    assert.equal(config.store.shard, true);
    assert.deepStrictEqual(config.nats.servers, ["nats://localhost:4222"]);
  });
});

describe("configFromConf: mapping", () => {
  it("keeps defaults for missing keys", () => {
    assert.deepStrictEqual(load("").config, defaultConfig());
  });

  it("matches keys case-insensitively at every level", () => {
    const { config, warnings } = load(
      "OperatorJWTPath: /op.jwt\nHTTP { Port: 1234, HOST: 0.0.0.0, TLS { Cert: /c.pem } }\nNats { UserCredentials: /u.creds }",
    );
    assert.deepStrictEqual(warnings, []);
    assert.equal(config.operatorJwtPath, "/op.jwt");
    assert.equal(config.http.port, 1234);
    assert.equal(config.http.host, "0.0.0.0");
    assert.deepStrictEqual(config.http.tls, { cert: "/c.pem" });
    assert.equal(config.nats.userCredentials, "/u.creds");
  });

  it("a present section only overrides the keys it contains", () => {
    const base: Config = { ...defaultConfig(), http: { ...defaultConfig().http, host: "base-host", port: 1 } };
    const { config } = load("http { port: 2 }", base);
    assert.equal(config.http.host, "base-host");
    assert.equal(config.http.port, 2);
    assert.equal(config.http.readTimeout, 5000);
  });

  it("does not modify the base object", () => {
    const base = defaultConfig();
    load("http { port: 2 }\nnats { servers: [a] }", base);
    assert.deepStrictEqual(base, defaultConfig());
  });

  it("maps every key", () => {
    const text = `
      operatorjwtpath: /o.jwt
      systemaccountjwtpath: /s.jwt
      signrequestsubject: sign.req
      signrequesttimeout: "2s"
      primary: "http://primary:9090"
      replicationtimeout: 7000
      replicationinterval: 45s
      maxreplicationpack: 50
      maxclockskew: 10m
      logging { time: false, debug: true, trace: true, colors: false, pid: true, json: true }
      http {
        host: "::"
        port: 0
        readtimeout: 1500ms
        writetimeout: "3s"
        maxbodybytes: 2MB
        tls { cert: /c, key: /k, root: /r }
      }
      nats {
        servers: [nats://a:4222, "nats://b:4222"]
        connecttimeout: 1s
        reconnectwait: 250
        maxreconnects: 3
        tls { root: /ca, cert: /nc, key: /nk }
        usercredentials: /sys.creds
      }
      store { dir: /data, shard: true, readonly: true, cleanupinterval: 1m, nsc: /nsc, allowdelete: false, statedir: /state,
              type: KV, bucket: b1, replicas: 3, history: 4, cache: 8MB, servers: [nats://kv:4222], usercredentials: /kv.creds }
      metrics { enabled: false, path: /m, host: "0.0.0.0", port: 9102 }
      ui { enabled: true, host: "127.0.0.1", port: 9103, user: u, password: p, token: t, expirywarningdays: 7 }
    `;
    const { config, warnings } = load(text);
    assert.deepStrictEqual(warnings, []);
    assert.deepStrictEqual(config, {
      operatorJwtPath: "/o.jwt",
      systemAccountJwtPath: "/s.jwt",
      signRequestSubject: "sign.req",
      signRequestTimeout: 2000,
      primary: "http://primary:9090",
      replicationTimeout: 7000,
      replicationInterval: 45000,
      maxReplicationPack: 50,
      maxClockSkew: 600000,
      logging: { time: false, debug: true, trace: true, colors: false, pid: true, json: true },
      http: {
        host: "::",
        port: 0,
        readTimeout: 1500,
        writeTimeout: 3000,
        maxBodyBytes: 2 * 1024 * 1024,
        tls: { cert: "/c", key: "/k", root: "/r" },
      },
      nats: {
        servers: ["nats://a:4222", "nats://b:4222"],
        connectTimeout: 1000,
        reconnectWait: 250,
        maxReconnects: 3,
        tls: { root: "/ca", cert: "/nc", key: "/nk" },
        userCredentials: "/sys.creds",
        syncInterval: 60000,
        maxLookups: 64,
        lookupMissTtl: 5000,
        lookupMissKeys: 10_000,
      },
      store: {
        dir: "/data",
        shard: true,
        readonly: true,
        cleanupInterval: 60000,
        nsc: "/nsc",
        allowDelete: false,
        stateDir: "/state",
        type: "kv",
        bucket: "b1",
        replicas: 3,
        history: 4,
        cache: 8 * 1024 * 1024,
        servers: ["nats://kv:4222"],
        userCredentials: "/kv.creds",
      },
      metrics: { enabled: false, path: "/m", host: "0.0.0.0", port: 9102 },
      ui: { enabled: true, host: "127.0.0.1", port: 9103, user: "u", password: "p", token: "t", expiryWarningDays: 7 },
    });
  });

  const ACCEPTED: ReadonlyArray<{ name: string; text: string; check: (c: Config) => unknown; want: unknown }> = [
    { name: "integer from numeric string", text: 'http { port: "8080" }', check: (c) => c.http.port, want: 8080 },
    { name: "size suffix", text: "http { maxbodybytes: 64k }", check: (c) => c.http.maxBodyBytes, want: 64000 },
    { name: "quoted size", text: 'http { maxbodybytes: "1MiB" }', check: (c) => c.http.maxBodyBytes, want: 1048576 },
    { name: "boolean from string", text: 'store { shard: "TRUE" }', check: (c) => c.store.shard, want: true },
    { name: "boolean yes", text: "store { shard: yes }", check: (c) => c.store.shard, want: true },
    { name: "false from string", text: 'logging { time: "False" }', check: (c) => c.logging.time, want: false },
    { name: "single server string", text: "nats { servers: nats://x:1 }", check: (c) => c.nats.servers, want: ["nats://x:1"] },
    { name: "empty server list", text: "nats { servers: [] }", check: (c) => c.nats.servers, want: [] },
    { name: "legacy integer ms", text: "signrequesttimeout: 250", check: (c) => c.signRequestTimeout, want: 250 },
    { name: "size-style 5k ms", text: "http { readtimeout: 5k }", check: (c) => c.http.readTimeout, want: 5000 },
    { name: "unquoted 2m is minutes", text: "replicationtimeout: 2m", check: (c) => c.replicationTimeout, want: 120000 },
    { name: "maxreconnects -1", text: "nats { maxreconnects: -1 }", check: (c) => c.nats.maxReconnects, want: -1 },
    { name: "pack sync interval", text: "nats { syncinterval: 30s }", check: (c) => c.nats.syncInterval, want: 30000 },
    { name: "server name in replies", text: "nats { name: as-1 }", check: (c) => c.nats.name, want: "as-1" },
    {
      name: "lookup bounds",
      text: "nats { maxlookups: 8, lookupmissttl: 2s, lookupmisskeys: 100 }",
      check: (c) => [c.nats.maxLookups, c.nats.lookupMissTtl, c.nats.lookupMissKeys],
      want: [8, 2000, 100],
    },
    { name: "later duplicate wins", text: "http { Port: 1 }\nhttp { port: 2 }", check: (c) => c.http.port, want: 2 },
    { name: "empty path unsets", text: "operatorjwtpath: \"\"", check: (c) => c.operatorJwtPath, want: undefined },
    { name: "empty host = all interfaces", text: 'http { host: "" }', check: (c) => c.http.host, want: "" },
    { name: "empty subject unsets", text: 'signrequestsubject: ""', check: (c) => c.signRequestSubject, want: undefined },
    { name: "variables", text: "P: 7777\nhttp { port: $P }", check: (c) => c.http.port, want: 7777 },
  ];
  for (const tc of ACCEPTED) {
    it(`accepts ${tc.name}`, () => {
      assert.deepStrictEqual(tc.check(load(tc.text).config), tc.want);
    });
  }
});

describe("configFromConf: unknown keys are warnings", () => {
  it("names the full dotted key and its line", () => {
    const text = "# top\nhttp {\n  port: 1\n  tls { crt: x }\n}\nhtttp { port: 2 }\nstore {\n  dir: /d\n  sahrd: true\n}";
    const { config, warnings } = load(text);
    assert.equal(config.http.port, 1);
    assert.equal(config.store.dir, "/d");
    assert.deepStrictEqual(warnings, [
      'unknown configuration key "http.tls.crt" (conf.conf line 4)',
      'unknown configuration key "htttp" (conf.conf line 6)',
      'unknown configuration key "store.sahrd" (conf.conf line 9)',
    ]);
  });

  it("warns about legacy keys that are gone and about variable holders", () => {
    const { warnings } = configFromConf(parseConf("hostport: 1\nMYVAR: 2", { env: {} }));
    assert.deepStrictEqual(warnings, [
      'unknown configuration key "hostport" (line 1)',
      'unknown configuration key "MYVAR" (line 2)',
    ]);
  });
});

describe("configFromConf: type errors name key and line", () => {
  const CASES: ReadonlyArray<{ text: string; message: string }> = [
    { text: 'a: 1\nhttp {\n\n  port: "abc"\n}', message: 'http.port: expected an integer, got "abc" (conf.conf line 4)' },
    { text: "http { port: 70000 }", message: "http.port: expected a port number between 0 and 65535, got 70000 (conf.conf line 1)" },
    { text: "http { port: -1 }", message: "http.port: expected a port number between 0 and 65535, got -1" },
    { text: "http { port: 1.5 }", message: "http.port: expected an integer, got 1.5" },
    { text: "http { port: true }", message: "http.port: expected an integer, got true" },
    { text: "\noperatorjwtpath: 42", message: "operatorjwtpath: expected a path string, got 42 (conf.conf line 2)" },
    { text: "SignRequestSubject: [a]", message: "signrequestsubject: expected a string, got a list (conf.conf line 1)" },
    { text: "store {\n  shard: maybe\n}", message: 'store.shard: expected a boolean (true or false), got "maybe" (conf.conf line 2)' },
    { text: "logging { debug: 1 }", message: "logging.debug: expected a boolean (true or false), got 1" },
    { text: "http: 5", message: "http: expected a map (section), got 5 (conf.conf line 1)" },
    { text: "nats: [x]", message: "nats: expected a map (section), got a list" },
    { text: "http { tls: /x }", message: 'http.tls: expected a map (section), got "/x"' },
    { text: "nats {\n  servers: [\n    nats://a\n    42\n  ]\n}", message: "nats.servers[1]: expected a string, got 42 (conf.conf line 4)" },
    { text: "nats { servers: 5 }", message: "nats.servers: expected a list of strings, got 5" },
    { text: "store {\n  dir: \"\"\n}", message: "store.dir: store directory is required (conf.conf line 2)" },
    { text: "signrequesttimeout: soon", message: 'signrequesttimeout: expected a duration (e.g. "500ms", "5s", "2m" or integer milliseconds), got "soon" (conf.conf line 1)' },
    { text: "nats { reconnectwait: -5 }", message: "nats.reconnectwait: expected a duration" },
    { text: "nats { maxreconnects: -2 }", message: "nats.maxreconnects: expected an integer >= -1, got -2" },
    { text: "http { maxbodybytes: 0 }", message: "http.maxbodybytes: expected an integer >= 1, got 0" },
    { text: "http { maxbodybytes: lots }", message: 'http.maxbodybytes: expected a size in bytes, got "lots"' },
    { text: "maxreplicationpack: 2019-01-01T00:00:00Z", message: "maxreplicationpack: expected an integer, got the datetime 2019-01-01T00:00:00.000Z" },
  ];
  for (const tc of CASES) {
    it(tc.message, () => {
      assert.throws(
        () => load(tc.text),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.ok(err.message.startsWith(tc.message), err.message);
          assert.match(err.message, /\(conf\.conf line \d+\)$/);
          return true;
        },
      );
    });
  }
});

describe("configFromConf: paths", () => {
  it("resolves relative paths against the config file's directory", () => {
    const { config } = load("operatorjwtpath: op.jwt\nstore { dir: ./jwts }\nnats { usercredentials: ../creds/sys.creds }");
    assert.equal(config.operatorJwtPath, "/etc/nas/op.jwt");
    assert.equal(config.store.dir, "/etc/nas/jwts");
    assert.equal(config.nats.userCredentials, "/etc/creds/sys.creds");
  });

  it("expands a leading ~", () => {
    const { config } = load("store { dir: ~/jwts }\noperatorjwtpath: ~");
    assert.equal(config.store.dir, join(homedir(), "jwts"));
    assert.equal(config.operatorJwtPath, homedir());
  });

  it("resolves against the working directory for plain text", () => {
    const { config } = configFromConf(parseConf("store { dir: jwts }", { env: {} }));
    assert.equal(config.store.dir, resolve("jwts"));
  });

  it("resolves a path from an included file against that file's directory", () => {
    const dir = mkdtempSync(join(tmpdir(), "conf-schema-inc-"));
    writeFileSync(join(dir, "main.conf"), "include sub/store.conf\n");
    const sub = join(dir, "sub");
    mkdirSync(sub);
    writeFileSync(join(sub, "store.conf"), "store { dir: data }\n");
    assert.equal(loadConfigFile(join(dir, "main.conf"), {}).config.store.dir, join(sub, "data"));
  });

  it("loadConfigFile takes variables from the given environment", () => {
    const dir = mkdtempSync(join(tmpdir(), "conf-schema-env-"));
    writeFileSync(join(dir, "c.conf"), "http { port: $NAS_TEST_PORT }\n");
    assert.equal(loadConfigFile(join(dir, "c.conf"), { NAS_TEST_PORT: "9191" }).config.http.port, 9191);
  });
});

describe("parseDuration", () => {
  const GOOD: ReadonlyArray<[unknown, number]> = [
    [0, 0],
    [500, 500],
    ["250", 250],
    ["500ms", 500],
    ["5s", 5000],
    ["1.5s", 1500],
    ["2m", 120000],
    ["1h", 3600000],
    ["1h30m", 5400000],
    [" 10s ", 10000],
    ["1500us", 2],
  ];
  for (const [input, want] of GOOD) {
    it(`${JSON.stringify(input)} → ${want} ms`, () => {
      assert.equal(parseDuration(input as string | number, "k"), want);
    });
  }
  const BAD: readonly unknown[] = ["", "abc", "5x", "-5s", -5, 1.5, true, "5 s", ["1s"]];
  for (const input of BAD) {
    it(`rejects ${JSON.stringify(input)}`, () => {
      assert.throws(() => parseDuration(input as string, "http.readtimeout"), (e: unknown) => {
        return e instanceof ConfigError && e.message.startsWith("http.readtimeout: expected a duration");
      });
    });
  }
});
