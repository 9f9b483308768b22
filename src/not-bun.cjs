// Entry point for every runtime that is not Bun (package.json "exports": "node" and "default").
// unix-ancillary calls libc through bun:ffi and ships TypeScript that Bun runs directly; elsewhere
// the real entry would fail with an unrelated error (ERR_UNKNOWN_FILE_EXTENSION ".ts", a syntax
// error, a missing bun:ffi), so say what is needed instead. Works for require() and import().
"use strict";
const runtime =
  typeof Deno !== "undefined" ? `Deno ${Deno.version.deno}`
  : typeof process !== "undefined" && process.versions && process.versions.node ? `Node.js ${process.versions.node}`
  : "this runtime";
const error = new Error(
  `unix-ancillary needs Bun >= 1.4.5: it passes file descriptors by calling libc through bun:ffi, ` +
    `which ${runtime} does not have. Run your program with \`bun\` (https://bun.sh).`,
);
error.code = "ERR_UA_NEEDS_BUN";
throw error;
