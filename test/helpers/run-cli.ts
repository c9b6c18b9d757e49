/**
 * Runs the CLI from the TypeScript sources, so tests exercise the current code without a build.
 * Spawned as `node --import tsx test/helpers/run-cli.ts <flags>`.
 */
import { run } from "../../src/cli.js";

run(process.argv.slice(2));
