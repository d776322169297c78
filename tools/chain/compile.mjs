#!/usr/bin/env node
// Compiles contracts/Eip3009Token.sol with solc-js (pinned in package.json)
// and writes build/Eip3009Token.json = { abi, bytecode } (bytecode is the
// 0x-prefixed creation code). Offline: solc-js carries its own compiler.
//
//   node tools/chain/compile.mjs          (or: npm run --prefix tools/chain compile)
//
// Progress and errors go to stderr; exits non-zero on any compiler error.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const here = dirname(fileURLToPath(import.meta.url));
const contract = "Eip3009Token";
const sourceName = `contracts/${contract}.sol`;
const outDir = join(here, "build");
const outFile = join(outDir, `${contract}.json`);

const input = {
  language: "Solidity",
  sources: { [sourceName]: { content: readFileSync(join(here, sourceName), "utf8") } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    // Cancun runs on plain anvil (default hardfork is newer) and needs no
    // newer opcodes; pinned so the output does not depend on solc's default.
    evmVersion: "cancun",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input)));
const diagnostics = output.errors ?? [];
for (const d of diagnostics) {
  console.error(d.formattedMessage ?? d.message);
}
if (diagnostics.some((d) => d.severity === "error")) {
  console.error(`compile.mjs: ${sourceName} failed to compile (solc ${solc.version()})`);
  process.exit(1);
}

const compiled = output.contracts?.[sourceName]?.[contract];
const object = compiled?.evm?.bytecode?.object;
if (!compiled || !object) {
  console.error(`compile.mjs: no bytecode for ${contract} in solc output`);
  process.exit(1);
}

mkdirSync(outDir, { recursive: true });
// Write then rename, so a concurrent reader never sees half a file.
const tmp = `${outFile}.${process.pid}.tmp`;
writeFileSync(tmp, JSON.stringify({ abi: compiled.abi, bytecode: `0x${object}` }, null, 2) + "\n");
renameSync(tmp, outFile);
console.error(`compile.mjs: wrote ${outFile} (solc ${solc.version()}, ${object.length / 2} bytes)`);
