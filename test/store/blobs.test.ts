import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { describe, it } from 'node:test'
import { BlobCorruptError, BlobNotFoundError, createBlobStore } from '../../src/store/blobs/blob-store.ts'
import { type FileOps, nodeFileOps } from '../../src/store/blobs/file-ops.ts'
import { manualClock } from '../../src/time/clock.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { openTestStore } from '../helpers/store.ts'

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex')
const NS = 'org_test'

for (const dialect of DIALECTS) {
  for (const backend of ['fs', 'database'] as const) {
    if (backend === 'database' && dialect === 'sqlite') continue // the database backend is for shared PostgreSQL
    describe(`blob store (${backend} on ${dialect})`, () => {
      it('round-trips bytes from a buffer and from a stream, addressed by sha256', async () => {
        const t = await openTestStore(dialect)
        try {
          const clock = manualClock()
          const blobs = createBlobStore({
            store: t.store,
            backend,
            dir: t.config.blobs.dir as string,
            now: clock.now,
          })
          const body = Buffer.from('Subject: hi\r\n\r\nhello\r\n')
          const a = await blobs.put(NS, body)
          assert.deepEqual(a, { sha256: sha(body), size: body.length })
          assert.deepEqual(await blobs.get(NS, a.sha256), body)
          const big = Buffer.alloc(3 * 1024 * 1024 + 7, 'x')
          const b = await blobs.put(NS, Readable.from([big.subarray(0, 1000), big.subarray(1000)]))
          assert.equal(b.sha256, sha(big))
          assert.equal((await blobs.get(NS, b.sha256)).length, big.length)
          // Same bytes again: same address, stored once.
          assert.deepEqual(await blobs.put(NS, body), a)
          assert.equal(await blobs.exists(NS, a.sha256), true)
          // Another namespace does not see it.
          assert.equal(await blobs.exists('org_other', a.sha256), false)
          await assert.rejects(blobs.get('org_other', a.sha256), BlobNotFoundError)
        } finally {
          await t.close()
        }
      })

      it('refuses addresses that could escape the store', async () => {
        const t = await openTestStore(dialect)
        try {
          const blobs = createBlobStore({
            store: t.store,
            backend,
            dir: t.config.blobs.dir as string,
            now: Date.now,
          })
          await assert.rejects(blobs.put('../etc', 'x'), /invalid blob namespace/)
          await assert.rejects(blobs.get(NS, '../../secrets.json'), /invalid blob address/)
        } finally {
          await t.close()
        }
      })

      it('collects blobs only after their last reference is released and the grace period passed', async () => {
        const t = await openTestStore(dialect)
        try {
          const clock = manualClock()
          const blobs = createBlobStore({
            store: t.store,
            backend,
            dir: t.config.blobs.dir as string,
            now: clock.now,
          })
          const kept = await blobs.put(NS, 'kept')
          const dropped = await blobs.put(NS, 'dropped')
          const orphan = await blobs.put(NS, 'never referenced (crash before commit)')
          await t.store.db.transaction().execute(async (tx) => {
            await blobs.addRef(tx, NS, kept.sha256)
            await blobs.addRef(tx, NS, dropped.sha256)
          })
          await blobs.release(t.store.db, NS, dropped.sha256)
          assert.equal(await blobs.collect(60_000), 0, 'nothing is collected inside the grace period')
          clock.advance(61_000)
          assert.equal(await blobs.collect(60_000), 2)
          assert.equal(await blobs.exists(NS, kept.sha256), true)
          assert.equal(await blobs.exists(NS, dropped.sha256), false)
          assert.equal(await blobs.exists(NS, orphan.sha256), false)
          // A put of collected bytes stores them again.
          await blobs.put(NS, 'dropped')
          assert.equal((await blobs.get(NS, dropped.sha256)).toString(), 'dropped')
          await assert.rejects(blobs.addRef(t.store.db, NS, sha('nothing')), BlobNotFoundError)
        } finally {
          await t.close()
        }
      })
    })
  }

  describe(`blob store inline tier (fs on ${dialect})`, () => {
    const filesUnder = (dir: string): string[] =>
      readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => join(e.parentPath, e.name))

    it('keeps blobs up to the threshold in the database and larger ones in files, found either way', async () => {
      const t = await openTestStore(dialect)
      try {
        const clock = manualClock()
        const dir = t.config.blobs.dir as string
        const blobs = createBlobStore({
          store: t.store,
          backend: 'fs',
          dir,
          now: clock.now,
          inlineMaxBytes: 1024,
        })
        const small = Buffer.alloc(1024, 's')
        const large = Buffer.alloc(1025, 'l')
        const a = await blobs.put(NS, small)
        // A stream longer than the threshold, in pieces that cross it: the file gets all of them.
        const pieces = [large.subarray(0, 600), large.subarray(600, 1000), large.subarray(1000)]
        const b = await blobs.put(NS, Readable.from(pieces))
        assert.deepEqual(b, { sha256: sha(large), size: large.length })
        const inline = await t.store.db.selectFrom('blob_data').select(['sha256']).execute()
        assert.deepEqual(
          inline.map((r) => r.sha256),
          [a.sha256],
        )
        const files = filesUnder(dir).filter((f) => !f.includes(`${join(dir, 'tmp')}`))
        assert.deepEqual(
          files.map((f) => f.slice(f.lastIndexOf('/') + 1)),
          [b.sha256],
        )
        assert.deepEqual(await blobs.get(NS, a.sha256), small)
        assert.deepEqual(await blobs.get(NS, b.sha256), large)
        const streamed: Buffer[] = []
        for await (const p of blobs.stream(NS, a.sha256)) streamed.push(p)
        assert.deepEqual(Buffer.concat(streamed), small)
        assert.equal(await blobs.exists(NS, a.sha256), true)
        assert.equal(await blobs.exists('org_other', a.sha256), false)
        await assert.rejects(blobs.get('org_other', a.sha256), BlobNotFoundError)

        // A store with the tier off still finds the inline blob, and a store with it on the file.
        const filesOnly = createBlobStore({ store: t.store, backend: 'fs', dir, now: clock.now })
        assert.deepEqual(await filesOnly.get(NS, a.sha256), small)
        assert.deepEqual(await blobs.get(NS, b.sha256), large)

        // Tampered inline bytes are refused like a tampered file.
        await t.store.db
          .updateTable('blob_data')
          .set({ data: Buffer.from('tampered') })
          .where('sha256', '=', a.sha256)
          .execute()
        await assert.rejects(blobs.get(NS, a.sha256), BlobCorruptError)
        await t.store.db
          .updateTable('blob_data')
          .set({ data: small })
          .where('sha256', '=', a.sha256)
          .execute()

        // Collection removes unreferenced blobs from both places.
        clock.advance(61_000)
        assert.equal(await blobs.collect(60_000), 2)
        assert.equal(await blobs.exists(NS, a.sha256), false)
        assert.equal(await blobs.exists(NS, b.sha256), false)
        assert.deepEqual(await t.store.db.selectFrom('blob_data').select('sha256').execute(), [])
      } finally {
        await t.close()
      }
    })

    it('commits a staged small blob with the rows of its transaction and touches no file', async () => {
      const t = await openTestStore(dialect)
      try {
        const dir = t.config.blobs.dir as string
        const touched: string[] = []
        const recording: FileOps = {
          ...nodeFileOps,
          async create(p) {
            touched.push(`create ${p}`)
            return nodeFileOps.create(p)
          },
          async rename(a, b) {
            touched.push(`rename ${b}`)
            return nodeFileOps.rename(a, b)
          },
          async syncDir(p) {
            touched.push(`fsync dir ${p}`)
            return nodeFileOps.syncDir(p)
          },
        }
        const blobs = createBlobStore({
          store: t.store,
          backend: 'fs',
          dir,
          now: Date.now,
          fileOps: recording,
          inlineMaxBytes: 65_536,
        })
        await blobs.check()
        touched.length = 0
        const body = Buffer.from('Subject: small\r\n\r\nhello\r\n')
        const staged = await blobs.stage(NS, body)
        // A transaction that fails leaves neither the row nor the bytes.
        await assert.rejects(
          t.store.db.transaction().execute(async (tx) => {
            await blobs.commitStaged(tx, staged, 1)
            throw new Error('rolled back')
          }),
          /rolled back/,
        )
        assert.equal(await blobs.exists(NS, staged.sha256), false)
        await t.store.db.transaction().execute((tx) => blobs.commitStaged(tx, staged, 1))
        assert.deepEqual(await blobs.get(NS, staged.sha256), body)
        const row = await t.store.db
          .selectFrom('blobs')
          .select(['refcount', 'size'])
          .executeTakeFirstOrThrow()
        assert.deepEqual(
          { refcount: Number(row.refcount), size: Number(row.size) },
          { refcount: 1, size: body.length },
        )
        assert.deepEqual(touched, [], 'no file operation for a blob under the threshold')
      } finally {
        await t.close()
      }
    })
  })

  describe(`blob store durability (fs on ${dialect})`, () => {
    it('detects corruption on read', async () => {
      const t = await openTestStore(dialect)
      try {
        const dir = t.config.blobs.dir as string
        const blobs = createBlobStore({ store: t.store, backend: 'fs', dir, now: Date.now })
        const ref = await blobs.put(NS, 'original bytes')
        const path = join(dir, NS, ref.sha256.slice(0, 2), ref.sha256.slice(2, 4), ref.sha256)
        writeFileSync(path, 'tampered bytes')
        await assert.rejects(blobs.get(NS, ref.sha256), BlobCorruptError)
      } finally {
        await t.close()
      }
    })

    it('reports a write done only after file fsync, rename and directory fsync', async () => {
      const t = await openTestStore(dialect)
      try {
        const log: string[] = []
        const dir = t.config.blobs.dir as string
        const rel = (p: string) => p.slice(dir.length) || '/'
        const recording: FileOps = {
          ...nodeFileOps,
          async create(path) {
            const f = await nodeFileOps.create(path)
            log.push('create')
            return {
              write: async (c) => {
                log.push('write')
                await f.write(c)
              },
              sync: async () => {
                await f.sync()
                log.push('fsync file')
              },
              close: async () => {
                await f.close()
                log.push('close')
              },
            }
          },
          async rename(a, b) {
            await nodeFileOps.rename(a, b)
            log.push(`rename -> ${rel(b).split('/').slice(0, 2).join('/')}/...`)
          },
          async syncDir(p) {
            await nodeFileOps.syncDir(p)
            log.push(`fsync dir ${rel(p)}`)
          },
        }
        const blobs = createBlobStore({
          store: t.store,
          backend: 'fs',
          dir,
          now: Date.now,
          fileOps: recording,
        })
        const body = 'durable bytes'
        const final = sha(body)
        const done = blobs.put(NS, body).then(() => log.push('DONE'))
        await done
        const at = (s: string) => log.findIndex((x) => x.startsWith(s))
        assert.ok(at('fsync file') > at('write'), log.join(', '))
        assert.ok(at('rename') > at('fsync file'), log.join(', '))
        const dirSync = log.indexOf(`fsync dir /${NS}/${final.slice(0, 2)}/${final.slice(2, 4)}`)
        assert.ok(
          dirSync > at('rename'),
          `the blob's directory is fsynced after the rename: ${log.join(', ')}`,
        )
        assert.equal(log.at(-1), 'DONE')
        // Every directory created on the way was made durable in its parent.
        for (const d of [`/${NS}/${final.slice(0, 2)}`, `/${NS}`, '/'])
          assert.ok(log.includes(`fsync dir ${d}`), d)
        // A failure to fsync fails the put and leaves no temp file behind.
        const failing: FileOps = {
          ...nodeFileOps,
          async create(p) {
            const f = await nodeFileOps.create(p)
            return {
              ...f,
              sync: async () => Promise.reject(Object.assign(new Error('EIO'), { code: 'EIO' })),
            }
          },
        }
        const broken = createBlobStore({
          store: t.store,
          backend: 'fs',
          dir,
          now: Date.now,
          fileOps: failing,
        })
        await assert.rejects(broken.put(NS, 'will not be stored'), /EIO/)
        assert.deepEqual(readdirSync(join(dir, 'tmp')), [])
        assert.equal(await blobs.exists(NS, sha('will not be stored')), false)
      } finally {
        await t.close()
      }
    })
  })
}
