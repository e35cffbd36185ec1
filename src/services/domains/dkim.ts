// DKIM keys of hosted domains. Each domain has an RSA-2048 and an Ed25519 key (RFC 8463) under
// dated selectors; private keys are sealed with the key-encryption key (bound to the key id).
// Rotation makes new keys active and moves the old ones to `retiring`: they stay published
// (and verifiable) for domains.dkim_rotation_grace_days, then a job retires them.
// Invariant: at most one active key per algorithm per domain.

import { generateKeyPair as generateKeyPairCb, type KeyObject } from 'node:crypto'
import { promisify } from 'node:util'
import type { Kysely, Transaction } from 'kysely'
import { newId } from '../../store/ids.ts'
import type { Database, DkimKey } from '../../store/schema.ts'
import { seal, unseal } from '../secrets/seal.ts'

const generateKeyPair = promisify(generateKeyPairCb)

export type DkimAlgorithm = 'rsa' | 'ed25519'

export interface DkimKeyView {
  id: string
  selector: string
  algorithm: DkimAlgorithm
  /** The p= value to publish: SPKI DER (RSA) or the raw 32-byte key (Ed25519), base64. */
  public_key: string
  status: 'active' | 'retiring' | 'retired'
  created_at: number
  retire_after: number | null
  retired_at: number | null
}

type Tx = Kysely<Database> | Transaction<Database>

const sealContext = (keyId: string) => `dkim:${keyId}`

export const dkimKeyView = (k: DkimKey): DkimKeyView => ({
  id: k.id,
  selector: k.selector,
  algorithm: k.algorithm,
  public_key: k.public_key,
  status: k.status,
  created_at: k.created_at,
  retire_after: k.retire_after,
  retired_at: k.retired_at,
})

/** A fresh key pair, off the event loop: the private key as PKCS#8 PEM, the p= value. */
export async function generateDkimKey(
  algorithm: DkimAlgorithm,
): Promise<{ privatePem: string; publicValue: string }> {
  if (algorithm === 'rsa') {
    const { publicKey, privateKey } = await generateKeyPair('rsa', { modulusLength: 2048 })
    return {
      privatePem: pem(privateKey),
      publicValue: (publicKey.export({ type: 'spki', format: 'der' }) as Buffer).toString('base64'),
    }
  }
  const { publicKey, privateKey } = await generateKeyPair('ed25519')
  const x = publicKey.export({ format: 'jwk' }).x as string
  return { privatePem: pem(privateKey), publicValue: Buffer.from(x, 'base64url').toString('base64') } // RFC 8463 section 4.2: raw key
}

const pem = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }) as string

/** Selectors name the algorithm and the day, e.g. rsa-20261121, with -2, -3... on collision. */
function selectorFor(algorithm: DkimAlgorithm, now: number, taken: Set<string>): string {
  const day = new Date(now).toISOString().slice(0, 10).replaceAll('-', '')
  const base = `${algorithm === 'rsa' ? 'rsa' : 'ed'}-${day}`
  if (!taken.has(base)) return base
  for (let n = 2; ; n++) if (!taken.has(`${base}-${n}`)) return `${base}-${n}`
}

/**
 * Creates a new active key of each algorithm for a domain; keys active before become
 * `retiring` until now + graceMs. Generation happens before the transaction begins.
 */
export async function rotateDkimKeys(
  db: Kysely<Database>,
  kek: Buffer,
  domain: { id: string; org_id: string },
  now: number,
  graceMs: number,
  tx?: Tx,
): Promise<DkimKeyView[]> {
  const generated = await Promise.all(
    (['rsa', 'ed25519'] as const).map(async (alg) => ({ alg, ...(await generateDkimKey(alg)) })),
  )
  const write = async (t: Tx) => {
    const taken = new Set(
      (await t.selectFrom('dkim_keys').select('selector').where('domain_id', '=', domain.id).execute()).map(
        (r) => r.selector,
      ),
    )
    await t
      .updateTable('dkim_keys')
      .set({ status: 'retiring', retire_after: now + graceMs })
      .where('domain_id', '=', domain.id)
      .where('status', '=', 'active')
      .execute()
    const rows: DkimKey[] = []
    for (const g of generated) {
      const id = newId('dkim', now)
      const selector = selectorFor(g.alg, now, taken)
      taken.add(selector)
      rows.push({
        id,
        org_id: domain.org_id,
        domain_id: domain.id,
        selector,
        algorithm: g.alg,
        public_key: g.publicValue,
        private_key_enc: seal(kek, sealContext(id), g.privatePem),
        status: 'active',
        created_at: now,
        retire_after: null,
        retired_at: null,
      })
    }
    await t.insertInto('dkim_keys').values(rows).execute()
    return rows.map(dkimKeyView)
  }
  return tx ? write(tx) : db.transaction().execute(write)
}

/** Keys to publish in DNS: active and retiring. */
export async function publishedDkimKeys(db: Tx, domainId: string): Promise<DkimKeyView[]> {
  const rows = await db
    .selectFrom('dkim_keys')
    .selectAll()
    .where('domain_id', '=', domainId)
    .where('status', 'in', ['active', 'retiring'])
    .orderBy('created_at')
    .execute()
  return rows.map(dkimKeyView)
}

/** The private key of an active key, for signing (outbound). */
export async function dkimSigningKeys(
  db: Tx,
  kek: Buffer,
  domainId: string,
): Promise<{ selector: string; algorithm: DkimAlgorithm; privatePem: string }[]> {
  const rows = await db
    .selectFrom('dkim_keys')
    .selectAll()
    .where('domain_id', '=', domainId)
    .where('status', '=', 'active')
    .execute()
  return rows.map((r) => ({
    selector: r.selector,
    algorithm: r.algorithm,
    privatePem: unseal(kek, sealContext(r.id), r.private_key_enc).toString(),
  }))
}

/** Retires keys whose grace period is over (a job); returns how many. */
export async function retireDkimKeys(db: Kysely<Database>, now: number): Promise<number> {
  const r = await db
    .updateTable('dkim_keys')
    .set({ status: 'retired', retired_at: now })
    .where('status', '=', 'retiring')
    .where('retire_after', '<=', now)
    .executeTakeFirst()
  return Number(r.numUpdatedRows)
}
