// Shared by the attachments and drafts tests: a real multipart upload through fetch, API keys
// of a scope, and polling until something holds.

import assert from 'node:assert/strict'
import type { Api } from '../helpers/api.ts'

export interface Uploaded {
  status: number
  body: any
  headers: Headers
}

/** POST /v1/attachments with a real multipart body built by fetch's FormData. */
export async function upload(
  base: string,
  key: string,
  files: { name: string; bytes: Buffer; type?: string }[],
  fields: Record<string, string> = {},
): Promise<Uploaded> {
  const form = new FormData()
  for (const [k, v] of Object.entries(fields)) form.append(k, v)
  for (const f of files)
    form.append('file', new Blob([new Uint8Array(f.bytes)], f.type ? { type: f.type } : {}), f.name)
  const res = await fetch(`${base}/v1/attachments`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}` },
    body: form,
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers }
}

export async function newKey(api: Api, scope: string, mailbox_id?: string): Promise<string> {
  const r = await api.post('/v1/api-keys', {
    name: `${scope} key`,
    scope,
    ...(mailbox_id ? { mailbox_id } : {}),
  })
  assert.equal(r.status, 201, r.text)
  return r.body.key
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | null | undefined>,
  ms = 15_000,
): Promise<T> {
  const until = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
