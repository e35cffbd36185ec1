// The first-run setup token: while no organisation exists, each start makes a fresh random
// token, stores only its SHA-256 and prints the token once, so whoever runs the server (and
// only they) can create the first owner. POST /v1/setup (accounts) consumes it.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Store } from '../../store/db.ts'
import { deleteMeta, getMeta, setMeta } from '../../store/meta.ts'

const META_KEY = 'setup_token_sha256'
/** server_meta key naming the org created at setup (written by completeSetup). */
export const OPERATOR_KEY = 'operator_org'

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')

export interface SetupService {
  /** True while no organisation exists. */
  needsSetup(): Promise<boolean>
  /** Makes a new token when setup is needed (replacing any earlier one); null otherwise. */
  issueToken(): Promise<string | null>
  /** Constant-time check of a presented token. */
  verifyToken(token: string): Promise<boolean>
  /** Called when setup completes. */
  consumeToken(): Promise<void>
  /** The org created at setup, which operates the installation (cached once known). */
  operatorOrgId(): Promise<string | null>
}

export function createSetupService(deps: { store: Store; now: () => number }): SetupService {
  const { store } = deps
  let operator: string | null = null
  const needsSetup = async () => {
    const row = await store.db.selectFrom('orgs').select('id').limit(1).executeTakeFirst()
    return row === undefined
  }
  return {
    needsSetup,
    async issueToken() {
      if (!(await needsSetup())) return null
      const token = `pst_setup_${randomBytes(24).toString('base64url')}`
      await setMeta(store, META_KEY, sha256(token), deps.now())
      return token
    },
    async verifyToken(token) {
      const stored = await getMeta(store, META_KEY)
      if (!stored || !token) return false
      return timingSafeEqual(Buffer.from(stored), Buffer.from(sha256(token)))
    },
    consumeToken: () => deleteMeta(store, META_KEY),
    async operatorOrgId() {
      operator ??= await getMeta(store, OPERATOR_KEY)
      return operator
    },
  }
}
