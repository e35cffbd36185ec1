// Start-up check that the configured key-encryption key is the one this database's sealed
// values were made with: a canary sealed on first start is opened on every later start.
// Refusing to start beats discovering unreadable DKIM keys at the first outbound message.

import type { Store } from '../../store/db.ts'
import { getMeta, setMeta } from '../../store/meta.ts'
import { ServiceError } from '../errors.ts'
import { seal, unseal } from './seal.ts'

const CANARY_KEY = 'kek_canary'
const CONTEXT = 'postern kek canary'

export async function checkKeyEncryptionKey(
  store: Store,
  kek: Buffer,
  secretsFile: string,
  now: number,
): Promise<void> {
  const canary = await getMeta(store, CANARY_KEY)
  if (canary === null) {
    await setMeta(store, CANARY_KEY, seal(kek, CONTEXT, 'ok'), now)
    return
  }
  try {
    unseal(kek, CONTEXT, canary)
  } catch {
    throw new ServiceError(
      'conflict',
      'KEK_MISMATCH',
      `the database holds keys sealed with another key-encryption key than the one in ${secretsFile}; ` +
        'point secrets_file at the secrets file this database was created with (every node needs the same file)',
    )
  }
}
