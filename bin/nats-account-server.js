#!/usr/bin/env node
// Launcher for the compiled CLI; `npm ci` builds dist/ through the `prepare` script.
import { run } from "../dist/cli.js";

run(process.argv.slice(2));
