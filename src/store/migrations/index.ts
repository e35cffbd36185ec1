// Every migration in the order it runs. A new migration is a new file added at the end;
// an applied migration is never edited.

import type { Migration } from 'kysely/migration'
import * as init from './0001-init.ts'
import * as accounts from './0002-accounts.ts'
import * as domains from './0003-domains.ts'
import * as messages from './0004-messages.ts'
import * as outbound from './0005-outbound.ts'
import * as imap from './0006-imap.ts'
import * as spamSignals from './0007-spam-signals.ts'
import * as mtaSts from './0008-mta-sts.ts'
import * as draftsAttachments from './0009-drafts-attachments.ts'
import * as dsn from './0011-dsn.ts'
import * as tracking from './0012-tracking.ts'
import * as warmupTestmode from './0014-warmup-testmode.ts'
import * as webhooks from './0015-webhooks.ts'
import * as analytics from './0016-analytics.ts'
import * as requireTls from './0017-require-tls.ts'

export const migrations: Record<string, Migration> = {
  '0001-init': init,
  '0002-accounts': accounts,
  '0003-domains': domains,
  '0004-messages': messages,
  '0005-outbound': outbound,
  '0006-imap': imap,
  '0007-spam-signals': spamSignals,
  '0008-mta-sts': mtaSts,
  '0009-drafts-attachments': draftsAttachments,
  '0011-dsn': dsn,
  '0012-tracking': tracking,
  '0014-warmup-testmode': warmupTestmode,
  '0015-webhooks': webhooks,
  '0016-analytics': analytics,
  '0017-require-tls': requireTls,
}
