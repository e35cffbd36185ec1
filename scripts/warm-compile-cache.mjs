// Fills Node's compile cache with Postern's sources, type-stripped and compiled, so that even
// the first `npm start` after `npm install` never loads the TypeScript stripper (about 20 MB
// resident for the life of the process) and starts faster. Run by `postinstall` with the V8
// flags of `npm start` (the cache is only used under the flags it was made with). Importing
// the modules runs no server: they have no side effects at load. Never fails an install.

try {
  const { enableCompileCache, flushCompileCache } = await import('node:module')
  enableCompileCache()
  await import('../src/cli/main.ts')
  await import('../src/store/dialect/postgres.ts') // loaded on demand at run time
  flushCompileCache()
} catch (err) {
  process.stderr.write(
    `postern: compile cache not warmed (${err?.message ?? err}); the first start is slower\n`,
  )
}
process.exit(0)
