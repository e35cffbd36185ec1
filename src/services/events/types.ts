// The one vocabulary of events: every type Postern writes to the events table, with what it
// means. The events API, webhooks, the live feed, traces and analytics all speak these names
// (Resend's and Bavimail's names where they have one: email.sent, email.delivered, ...).
// Invariants:
// - writeEvent (write.ts) accepts only these types, so a new event is one entry here first.
// - Names are `<noun>.<past participle or state>`, lower snake case after the dot.
// - Change-bus topics (changes.ts) are a different, internal set: they tell processes to
//   refresh caches and sessions, never reach users, and never share a name with an event.
// - Events of test traffic (mail sent with a test key, services/outbound/test-mode.ts) carry
//   `payload.test = true`; analytics leave them out, webhooks and the feed deliver them.

/** What the event's subject_id names. */
export type EventSubject =
  | 'email' // an outbound message (eml_...)
  | 'message' // a stored message (msg_...)
  | 'domain'
  | 'mailbox'
  | 'alias'
  | 'org'
  | 'user'
  | 'api_key'
  | 'app_password'
  | 'alias_warmup'
  | 'webhook'

interface EventDoc {
  subject: EventSubject
  doc: string
}

const email = (doc: string): EventDoc => ({ subject: 'email', doc })

export const EVENT_TYPES = {
  // Outbound mail (services/outbound): one per state change of a message or a recipient.
  'email.queued': email('Accepted by the send API (or SMTP submission) and stored in the queue.'),
  'email.rescheduled': email('Its scheduled time was changed.'),
  'email.held': email(
    'Held back by the organisation’s sending cap or the sender’s warm-up ramp until the window resets.',
  ),
  'email.sent': email('Every recipient has a final outcome and at least one was delivered.'),
  'email.delivered': email('A recipient’s server accepted it (payload.recipient).'),
  'email.deferred': email('A recipient’s server answered 4xx; it will be retried.'),
  'email.delayed': email('Still undelivered after outbound.delay_notice_seconds; the sender was told.'),
  'email.bounced': email('A recipient was refused for good (5xx or a later DSN).'),
  'email.complained': email('A recipient reported it as spam (ARF feedback).'),
  'email.failed': email('Gave up: lifetime over, or no recipient could be delivered.'),
  'email.cancelled': email('Cancelled before it was sent.'),
  'email.suppressed': email('A recipient was skipped because the address is suppressed.'),
  'email.filed': email('A copy was filed in the sender’s Sent folder.'),
  // Tracking and unsubscribe (services/tracking): payload.recipient (null when the message had
  // several), user_agent, ip, and bot (with bot_reason) for proxies, scanners and prefetches.
  'email.opened': email('The open pixel of a message sent with track_opens was fetched.'),
  'email.clicked': email('A tracked link was followed (payload.url, payload.link_index).'),
  'email.unsubscribed': email(
    'A recipient unsubscribed with the one-click List-Unsubscribe link (RFC 8058); now suppressed.',
  ),
  'queue.paused': { subject: 'org', doc: 'The organisation’s outbound queue was paused by an admin.' },
  'queue.resumed': { subject: 'org', doc: 'The organisation’s outbound queue was resumed.' },
  // Inbound mail (services/delivery).
  'email.received': { subject: 'message', doc: 'Delivered into a mailbox (SMTP or local delivery).' },
  'email.appended': {
    subject: 'message',
    doc: 'Stored by a mail client with IMAP APPEND (a sent copy, a draft, an import).',
  },
  // Drafts (services/drafts).
  'draft.saved': {
    subject: 'message',
    doc: 'A draft was saved through the API (created or updated) in the Drafts folder.',
  },
  'draft.deleted': { subject: 'message', doc: 'A draft was deleted through the API.' },
  // Domains.
  'domain.created': { subject: 'domain', doc: 'Added to the organisation; not live until verified.' },
  'domain.updated': { subject: 'domain', doc: 'Its settings or limits changed.' },
  'domain.verified': { subject: 'domain', doc: 'Ownership proven (or trusted by the operator); mail flows.' },
  'domain.dns_changed': { subject: 'domain', doc: 'A DNS re-check found records that changed.' },
  'domain.dkim_rotated': { subject: 'domain', doc: 'A new DKIM key was made; the old one retires later.' },
  'domain.deleted': { subject: 'domain', doc: 'Removed with its mailboxes and aliases.' },
  // Mailboxes and aliases.
  'mailbox.created': { subject: 'mailbox', doc: 'A mail account was made.' },
  'mailbox.updated': { subject: 'mailbox', doc: 'Its settings, quota or password changed.' },
  'mailbox.deleted': { subject: 'mailbox', doc: 'Removed with its mail.' },
  'mailbox.uids_reset': {
    subject: 'mailbox',
    doc: 'Its folders got a new UIDVALIDITY (IMAP clients resync).',
  },
  'mailbox.access_granted': { subject: 'mailbox', doc: 'A user was given access (team inbox).' },
  'mailbox.access_revoked': { subject: 'mailbox', doc: 'A user’s access was taken away.' },
  'alias.created': { subject: 'alias', doc: 'An alias was made.' },
  'alias.updated': { subject: 'alias', doc: 'Its targets or settings changed.' },
  'alias.deleted': { subject: 'alias', doc: 'An alias was removed.' },
  // Warm-up ramps of sender addresses (services/warmup).
  'warmup.created': {
    subject: 'alias_warmup',
    doc: 'A warm-up ramp was started for a sender address (payload.address, payload.days).',
  },
  'warmup.updated': { subject: 'alias_warmup', doc: 'Its schedule changed or it was restarted at day 1.' },
  'warmup.token_rotated': {
    subject: 'alias_warmup',
    doc: 'The ramp got a new token; the old one stops naming it.',
  },
  'warmup.deleted': {
    subject: 'alias_warmup',
    doc: 'The ramp was removed; the address sends without its caps.',
  },
  // The organisation, its people and their credentials (security events an admin should see).
  'setup.completed': { subject: 'org', doc: 'The first owner and organisation were created.' },
  'org.updated': { subject: 'org', doc: 'Renamed or its settings changed.' },
  'org.deleted': { subject: 'org', doc: 'Deleted (soft or hard: payload.hard).' },
  'auth.signed_up': { subject: 'user', doc: 'A person signed up.' },
  'auth.login_succeeded': { subject: 'user', doc: 'A log-in (HTTP, IMAP or SMTP: payload.via).' },
  'auth.login_failed': { subject: 'user', doc: 'A failed log-in (payload.reason; never the password).' },
  'auth.password_reset_requested': { subject: 'user', doc: 'A reset link was asked for.' },
  'auth.password_reset': { subject: 'user', doc: 'A password was reset with a reset link.' },
  'user.invited': { subject: 'user', doc: 'A person was invited.' },
  'user.invite_claimed': { subject: 'user', doc: 'An invitation was accepted.' },
  'user.role_changed': { subject: 'user', doc: 'A role changed (owner, admin, member).' },
  'user.disabled': { subject: 'user', doc: 'Sign-in was turned off for a user.' },
  'user.enabled': { subject: 'user', doc: 'Sign-in was turned back on.' },
  'user.password_changed': { subject: 'user', doc: 'A user changed their password.' },
  'user.totp_enabled': { subject: 'user', doc: 'Two-factor log-in turned on.' },
  'user.totp_disabled': { subject: 'user', doc: 'Two-factor log-in turned off.' },
  'api_key.created': { subject: 'api_key', doc: 'An API key was made (payload.scope).' },
  'api_key.revoked': { subject: 'api_key', doc: 'An API key was revoked.' },
  'app_password.created': { subject: 'app_password', doc: 'An app password for a mail client was made.' },
  'app_password.revoked': { subject: 'app_password', doc: 'An app password was revoked.' },
  // Webhooks (services/webhooks).
  'webhook.created': {
    subject: 'webhook',
    doc: 'An endpoint was added (pending until it answers its challenge).',
  },
  'webhook.updated': {
    subject: 'webhook',
    doc: 'Its URL, event types, description or enabled state changed.',
  },
  'webhook.deleted': { subject: 'webhook', doc: 'An endpoint was removed with its delivery log.' },
  'webhook.verified': {
    subject: 'webhook',
    doc: 'The endpoint answered its verification challenge; it gets traffic.',
  },
  'webhook.secret_rotated': {
    subject: 'webhook',
    doc: 'A new signing secret was made; the old one signs too until payload.old_secret_until.',
  },
  'webhook.disabled': {
    subject: 'webhook',
    doc: 'Turned off: by an admin, or after persistent failure (payload.reason); the admins were mailed.',
  },
} as const satisfies Record<string, EventDoc>

export type EventType = keyof typeof EVENT_TYPES

export const isEventType = (t: string): t is EventType => Object.hasOwn(EVENT_TYPES, t)
