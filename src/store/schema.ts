// Row types of every table, as Kysely sees them. Kept in step with migrations/ by hand; the
// migration test compares the two. Conventions: times are epoch milliseconds (number),
// booleans are 0 | 1 integers, JSON lives in text columns (parse at the service edge).

import type { Generated, Insertable, Selectable, Updateable } from 'kysely'

type Bool = 0 | 1

export interface ServerMetaTable {
  key: string
  value: string
  updated_at: number
}

export interface OrgTable {
  id: string
  name: string
  /** JSON object of org settings. */
  settings: Generated<string>
  created_at: number
  updated_at: number
  deleted_at: number | null
}

export interface UserTable {
  id: string
  org_id: string
  /** Canonical (lower-case) address, unique across the installation. */
  email: string
  name: Generated<string>
  /** argon2id PHC string; null until the user sets a password (invitations). */
  password_hash: string | null
  role: 'owner' | 'admin' | 'member'
  disabled: Generated<Bool>
  email_verified_at: number | null
  /** TOTP secret sealed with the key-encryption key. */
  totp_secret_enc: string | null
  totp_enabled_at: number | null
  /** Last accepted TOTP time step (replay protection). */
  totp_last_step: number | null
  /** The alias this user sends from by default. */
  default_alias_id: string | null
  preferences: Generated<string>
  last_login_at: number | null
  created_at: number
  updated_at: number
}

export interface SessionTable {
  id: string
  org_id: string
  user_id: string
  /** SHA-256 of the session secret; the secret itself is only in the cookie. */
  token_hash: string
  created_at: number
  expires_at: number
  revoked_at: number | null
  last_seen_at: number | null
  ip: string | null
  user_agent: string | null
}

export interface ApiKeyTable {
  id: string
  org_id: string
  name: string
  /** The visible start of the key, for people to recognise it. */
  prefix: string
  /** SHA-256 of the whole key. */
  key_hash: string
  scope: 'admin' | 'send' | 'read' | 'write' | 'mailbox'
  /** Set only for scope 'mailbox'. */
  mailbox_id: string | null
  created_by: string | null
  created_at: number
  expires_at: number | null
  last_used_at: number | null
  revoked_at: number | null
  /** A test key (test mode): its mail is composed, signed and stored, never sent (0/1). */
  test: Generated<Bool>
}

export interface DomainTable {
  id: string
  org_id: string
  /** Lower-case, punycode. */
  name: string
  status: Generated<'pending' | 'verified'>
  ownership_token: string
  verified_at: number | null
  active: Generated<Bool>
  description: Generated<string>
  max_aliases: Generated<number>
  max_mailboxes: Generated<number>
  default_quota_bytes: number
  max_quota_bytes: number
  total_quota_bytes: number
  backup_mx: Generated<Bool>
  /** JSON of the last DNS check (per-record states), for change detection. */
  dns_status: string | null
  dns_checked_at: number | null
  /** MTA-STS policy id (RFC 8461 section 3.1); changes when the policy does. */
  mta_sts_id: string | null
  created_at: number
  updated_at: number
}

export interface DkimKeyTable {
  id: string
  org_id: string
  domain_id: string
  selector: string
  algorithm: 'rsa' | 'ed25519'
  public_key: string
  /** PKCS#8 PEM sealed with the key-encryption key. */
  private_key_enc: string
  status: 'active' | 'retiring' | 'retired'
  created_at: number
  retire_after: number | null
  retired_at: number | null
}

export interface MailboxTable {
  id: string
  org_id: string
  domain_id: string
  local_part: string
  /** Canonical address, unique: local parts match case-insensitively. */
  address: string
  name: Generated<string>
  password_hash: string | null
  quota_bytes: number
  used_bytes: Generated<number>
  active: Generated<Bool>
  force_pw_update: Generated<Bool>
  tls_enforce_in: Generated<Bool>
  tls_enforce_out: Generated<Bool>
  owner_user_id: string | null
  /** Per-account MODSEQ counter (RFC 7162); every flag or membership change takes the next value. */
  modseq: Generated<number>
  /** 1: mail this mailbox sends (submission, API, drafts) is copied to its Sent folder. */
  save_sent_copy: Generated<Bool>
  created_at: number
  updated_at: number
}

export interface MailboxGrantTable {
  org_id: string
  mailbox_id: string
  user_id: string
  created_at: number
}

export interface AliasTable {
  id: string
  org_id: string
  domain_id: string
  /** Canonical address, or `@domain` for a catch-all. */
  address: string
  /** JSON array of target addresses (local mailboxes or external). */
  targets: string
  active: Generated<Bool>
  created_at: number
  updated_at: number
}

export interface FolderTable {
  id: string
  org_id: string
  mailbox_id: string
  /** Full IMAP name with '/' as the hierarchy delimiter. */
  name: string
  role: 'inbox' | 'sent' | 'drafts' | 'junk' | 'trash' | 'archive' | null
  uidvalidity: number
  uidnext: Generated<number>
  highestmodseq: Generated<number>
  subscribed: Generated<Bool>
  /** UIDNEXT at the last read-write IMAP SELECT: UIDs from here on are \Recent to the next one. */
  recent_uid: Generated<number>
  created_at: number
  updated_at: number
}

export interface ThreadTable {
  id: string
  org_id: string
  mailbox_id: string
  subject_norm: Generated<string>
  message_count: Generated<number>
  first_message_at: number
  last_message_at: number
  created_at: number
}

export interface MessageTable {
  id: string
  org_id: string
  mailbox_id: string
  thread_id: string | null
  /** Address of the raw RFC 5322 bytes in the blob store. */
  blob_sha256: string
  size: number
  message_id_header: string | null
  in_reply_to: string | null
  references_header: string | null
  subject: Generated<string>
  from_address: string | null
  from_name: string | null
  to_json: Generated<string>
  cc_json: Generated<string>
  /** The Date header. */
  sent_at: number | null
  received_at: number
  has_attachments: Generated<Bool>
  preview: Generated<string>
  auth_results: string | null
  spam_score: number | null
  /** JSON array of AttachmentInfo from the one parse at delivery. */
  attachments: Generated<string>
  /** JSON of the SMTP envelope (mail_from, recipients with DSN parameters, helo, client, tls). */
  envelope: string | null
  reply_to_json: Generated<string>
  created_at: number
  deleted_at: number | null
}

export interface FolderMessageTable {
  folder_id: string
  message_id: string
  org_id: string
  uid: number
  modseq: number
  created_at: number
}

export interface MessageKeywordTable {
  message_id: string
  keyword: string
  org_id: string
}

export interface ExpungedTable {
  folder_id: string
  uid: number
  modseq: number
  org_id: string
  created_at: number
}

export type OutboundStatus = 'scheduled' | 'queued' | 'sending' | 'sent' | 'failed' | 'cancelled' | 'held'
export type RecipientState =
  | 'queued'
  | 'deferred'
  | 'sent'
  | 'delivered'
  | 'bounced'
  | 'suppressed'
  | 'failed'
  | 'cancelled'

export interface OutboundMessageTable {
  id: string
  org_id: string
  domain_id: string | null
  mailbox_id: string | null
  api_key_id: string | null
  user_id: string | null
  /** Envelope sender (the signed return path). */
  mail_from: string
  from_header: string
  subject: Generated<string>
  blob_sha256: string | null
  size: Generated<number>
  status: OutboundStatus
  idempotency_key: string | null
  idempotency_hash: string | null
  tags: Generated<string>
  scheduled_at: number | null
  next_attempt_at: number | null
  attempts: Generated<number>
  lease_owner: string | null
  lease_until: number | null
  /** 'api', 'batch', 'system', 'submission' or 'forward'. */
  origin: Generated<string>
  message_id_header: string | null
  /** JSON: to, cc, bcc, reply_to as given (for the API view). */
  headers_json: Generated<string>
  first_attempt_at: number | null
  finished_at: number | null
  /** Retries stop (and pending recipients fail) after this. */
  expires_at: number | null
  delay_notified: Generated<Bool>
  held_reason: string | null
  system_mail_id: string | null
  /** RET= of a submitted message (RFC 3461 4.3): 'FULL' or 'HDRS'; null when not given. */
  dsn_ret: string | null
  /** ENVID= of a submitted message (RFC 3461 4.4), xtext decoded. */
  dsn_envid: string | null
  /** The message was submitted with SMTPUTF8 (RFC 6531): notices use the RFC 6533 types. */
  smtputf8: Generated<Bool>
  /** Where delivery status notifications go (a mail client's envelope sender); null: none are mailed. */
  dsn_to: string | null
  /** Sent with a test key: outcomes are simulated, nothing reaches the network, no cap counts it (0/1). */
  test: Generated<Bool>
  /** REQUIRETLS (RFC 8689): leaves only over verified TLS to a next hop offering REQUIRETLS (0/1). */
  require_tls: Generated<Bool>
  created_at: number
  updated_at: number
}

/** A warm-up ramp of one sender address: daily recipient caps growing over `schedule.length` days. */
export interface AliasWarmupTable {
  id: string
  org_id: string
  /** The sender (From) address, canonical lower case. */
  address: string
  /** The alias the ramp was made for, when it was made through one. */
  alias_id: string | null
  /** Public handle of the ramp (an identifier, not a credential). */
  token: string
  /** 'default' (the built-in curve) or 'custom' (a list given by the caller). */
  curve: 'default' | 'custom'
  /** JSON array of positive integers: the cap of day 1, day 2, ... */
  schedule: string
  /** Start of day 1 (epoch ms); day n starts (n-1) * 24 h later. */
  started_at: number
  /** The 0-based day that `used` counts; another day means nothing used yet. */
  used_day: Generated<number>
  /** Recipients handed to delivery on day `used_day`. */
  used: Generated<number>
  created_at: number
  updated_at: number
}

export interface OutboundRecipientTable {
  id: string
  org_id: string
  outbound_id: string
  address: string
  domain: string
  state: RecipientState
  attempts: Generated<number>
  next_attempt_at: number | null
  last_code: number | null
  last_enhanced_code: string | null
  last_response: string | null
  /** DSN NOTIFY and ORCPT parameters (RFC 3461). */
  dsn_notify: string | null
  dsn_orcpt: string | null
  type: Generated<'to' | 'cc' | 'bcc'>
  delivered_at: number | null
  /** The host that gave the last reply. */
  remote_mta: string | null
  /** The notice owed to the sender and not yet queued: 'failed', 'delayed', 'delivered' or 'relayed'. */
  dsn_pending: string | null
  /** The delay notice for this recipient went out (once per recipient). */
  dsn_delay_sent: Generated<Bool>
  created_at: number
  updated_at: number
}

export interface OutboundTraceTable {
  id: string
  org_id: string
  outbound_id: string
  attempt: Generated<number>
  kind: string
  /** JSON */
  detail: Generated<string>
  at: number
}

/** The MTA-STS policy cache (0008): one row per destination domain, shared by every node. */
export interface MtaStsPolicyTable {
  /** Destination domain, A-label, lower case, no trailing dot. */
  domain: string
  /** The TXT record id the cached policy was fetched under; null until a fetch succeeded. */
  policy_id: string | null
  mode: 'enforce' | 'testing' | 'none' | null
  /** JSON array of the policy's mx patterns. */
  mx: string | null
  /** Seconds, as the policy said. */
  max_age: number | null
  fetched_at: number | null
  /** fetched_at + max_age: the policy is not applied after this. */
  expires_at: number | null
  /** The TXT id of the last failed fetch, when it failed and why. */
  failed_id: string | null
  failed_at: number | null
  last_error: string | null
  updated_at: number
}

export interface SuppressionTable {
  id: string
  org_id: string
  /** Canonical (lower-case) address. */
  address: string
  reason: 'hard_bounce' | 'complaint' | 'manual' | 'unsubscribe'
  detail: Generated<string>
  outbound_id: string | null
  created_at: number
}

export interface IdempotencyKeyTable {
  org_id: string
  key: string
  request_hash: string
  status: number
  /** JSON of the first response. */
  response: string
  created_at: number
}

export interface QueuePauseTable {
  org_id: string
  paused_by: string | null
  created_at: number
}

export interface EventTable {
  id: string
  /** Null for installation-wide events. */
  org_id: string | null
  type: string
  subject_id: string | null
  /** Who did it: a user id, key id or 'system'. */
  actor: string | null
  ip: string | null
  payload: Generated<string>
  /** The mailbox the event is about (inbound mail, mailbox changes), for mailbox-scoped reads. */
  mailbox_id: string | null
  /** The outbound recipient (lower case) of a per-recipient event. */
  recipient: string | null
  created_at: number
}

/** Deliverability counters per org, hour, tag and domains (migration 0016; services/analytics). */
export interface AnalyticsCountsTable {
  org_id: string
  /** '' for the row every event counts in; `name=value` for each tag of the message. */
  tag: string
  /** 'hour' or 'day': how long the row's bucket is. */
  grain: 'hour' | 'day'
  /** Start of the UTC hour or day, epoch milliseconds. */
  start: number
  /** The domain the mail was sent from ('' when unknown). */
  sending_domain: string
  /** The recipient's domain ('' for events about no one recipient); '*' counts every domain. */
  recipient_domain: string
  /** The sending mailbox ('' for sends made with an org-wide key). */
  mailbox_id: string
  sent: Generated<number>
  delivered: Generated<number>
  deferred: Generated<number>
  bounced_hard: Generated<number>
  bounced_soft: Generated<number>
  complained: Generated<number>
  opened: Generated<number>
  clicked: Generated<number>
  unsubscribed: Generated<number>
  suppressed: Generated<number>
}

/** How far the analytics fold has read the events table. */
export interface AnalyticsCursorTable {
  name: string
  /** Id of the last event folded ('' before the first). */
  last_id: string
  /** Counted events folded so far. */
  folded: Generated<number>
  updated_at: number
}

/** A sent message with tracking or one-click unsubscribe (0012), keyed by its tokens' key. */
export interface TrackedMessageTable {
  /** The unique part of the Message-ID: what the tokens carry. */
  key: string
  org_id: string
  outbound_id: string
  /** The only recipient, when the message has one (tracking is per message otherwise). */
  recipient: string | null
  track_opens: number
  track_clicks: number
  list_unsubscribe: number
  opens: Generated<number>
  clicks: Generated<number>
  created_at: number
}

/** A link of a tracked message's HTML, by index: the only place a click redirects to. */
export interface TrackedLinkTable {
  message_key: string
  idx: number
  org_id: string
  url: string
}

export type WebhookStatus = 'pending' | 'active' | 'disabled'

/** An org's webhook endpoint. */
export interface WebhookTable {
  id: string
  org_id: string
  url: string
  description: Generated<string>
  /** JSON array of event types (or `<noun>.*` prefixes); empty: every type. */
  event_types: Generated<string>
  /** pending: awaiting the verification challenge; active: gets traffic; disabled. */
  status: WebhookStatus
  /** The signing secret (whsec_...) sealed with the key-encryption key. */
  secret_enc: string
  /** The secret before the last rotation: still signs until old_secret_until. */
  old_secret_enc: string | null
  old_secret_until: number | null
  /** SHA-256 of the outstanding verification challenge. */
  challenge_hash: string | null
  challenge_expires_at: number | null
  verified_at: number | null
  /** When the current run of failed attempts began (null after a success). */
  failing_since: number | null
  consecutive_failures: Generated<number>
  disabled_at: number | null
  disabled_reason: string | null
  created_at: number
  updated_at: number
}

export type WebhookDeliveryStatus = 'pending' | 'succeeded' | 'failed'

/** The outbox: one message for one endpoint (an event, or a test), with its retry state. */
export interface WebhookDeliveryTable {
  id: string
  org_id: string
  webhook_id: string
  /** The event delivered; null for a test delivery. */
  event_id: string | null
  event_type: string
  /** The JSON body, built at the first attempt and sent unchanged on every retry. */
  body: string | null
  status: WebhookDeliveryStatus
  attempts: Generated<number>
  next_attempt_at: number
  lease_owner: string | null
  lease_until: number | null
  last_status_code: number | null
  last_error: string | null
  delivered_at: number | null
  created_at: number
  updated_at: number
}

/** One HTTP attempt of a delivery (the delivery log). */
export interface WebhookAttemptTable {
  id: string
  org_id: string
  delivery_id: string
  attempt: number
  status_code: number | null
  latency_ms: number
  /** At most 1 KB of the response body. */
  response_excerpt: Generated<string>
  error: string | null
  at: number
}

export interface BlobTable {
  namespace: string
  sha256: string
  size: number
  refcount: Generated<number>
  created_at: number
  updated_at: number
}

export interface BlobDataTable {
  namespace: string
  sha256: string
  data: Uint8Array
  created_at: number
}

export interface ChangeTable {
  seq: Generated<number>
  topic: string
  org_id: string | null
  payload: string
  created_at: number
}

export interface JobTable {
  name: string
  next_run_at: number
  lease_owner: string | null
  lease_until: number | null
  last_started_at: number | null
  last_finished_at: number | null
  last_status: 'ok' | 'error' | null
  last_error: string | null
  last_duration_ms: number | null
  run_count: Generated<number>
}

export interface OneTimeTokenTable {
  id: string
  org_id: string | null
  user_id: string | null
  purpose: 'verify_email' | 'reset_password' | 'invite'
  /** SHA-256 of the token or code. */
  token_hash: string
  email: string
  attempts: Generated<number>
  created_at: number
  expires_at: number
  used_at: number | null
}

export interface AppPasswordTable {
  id: string
  org_id: string
  user_id: string
  mailbox_id: string
  name: string
  prefix: string
  /** SHA-256 of the generated password (random, so no argon2 needed). */
  password_hash: string
  created_at: number
  last_used_at: number | null
  revoked_at: number | null
}

export interface RecoveryCodeTable {
  user_id: string
  org_id: string
  code_hash: string
  created_at: number
  used_at: number | null
}

export interface RateLimitTable {
  key: string
  window_start: number
  count: number
  expires_at: number
}

export interface AuthFailureTable {
  /** `email:<address>` or `ip:<address>`. */
  key: string
  failures: number
  first_failed_at: number
  last_failed_at: number
  locked_until: number | null
}

export interface SystemMailTable {
  id: string
  org_id: string | null
  kind: 'verify_email' | 'reset_password' | 'invite' | 'password_changed' | 'notice'
  to_address: string
  subject: string
  text: string
  status: Generated<'queued' | 'sending' | 'sent' | 'failed'>
  created_at: number
  sent_at: number | null
}

/** A person's verdict on a message: moved into Junk (spam) or out of it (ham). */
export interface SpamSignalTable {
  id: string
  org_id: string
  mailbox_id: string
  message_id: string
  verdict: 'spam' | 'ham'
  via: 'imap' | 'api'
  created_at: number
}

/** An uploaded file of an org; its bytes are the blob (org id, sha256), one reference per row. */
export interface AttachmentTable {
  id: string
  org_id: string
  /** The mailbox of the mailbox-scoped key that uploaded it (it alone may use it), else null. */
  mailbox_id: string | null
  api_key_id: string | null
  user_id: string | null
  /** As given by the uploader, without line breaks or slashes. */
  filename: string
  /** A checked media type, lower case; application/octet-stream when none was given. */
  content_type: string
  size: number
  sha256: string
  created_at: number
  /** Deleted by the attachment-purge job after this, unless a draft links it. */
  expires_at: number
}

/** A draft composed through the API: its stable id, fields, and the message now holding it. */
export interface DraftTable {
  id: string
  org_id: string
  mailbox_id: string
  /** The message in the mailbox's Drafts folder; a new one on every update. */
  message_id: string
  /** JSON of the fields the draft was composed from (attachments are in draft_attachments). */
  fields: string
  created_at: number
  updated_at: number
}

export interface DraftAttachmentTable {
  draft_id: string
  position: number
  attachment_id: string
  org_id: string
}

export interface Database {
  server_meta: ServerMetaTable
  orgs: OrgTable
  users: UserTable
  sessions: SessionTable
  api_keys: ApiKeyTable
  domains: DomainTable
  dkim_keys: DkimKeyTable
  mailboxes: MailboxTable
  mailbox_grants: MailboxGrantTable
  aliases: AliasTable
  folders: FolderTable
  threads: ThreadTable
  messages: MessageTable
  folder_messages: FolderMessageTable
  message_keywords: MessageKeywordTable
  expunged: ExpungedTable
  spam_signals: SpamSignalTable
  outbound_messages: OutboundMessageTable
  alias_warmups: AliasWarmupTable
  outbound_recipients: OutboundRecipientTable
  outbound_trace: OutboundTraceTable
  suppressions: SuppressionTable
  mta_sts_policies: MtaStsPolicyTable
  idempotency_keys: IdempotencyKeyTable
  queue_pauses: QueuePauseTable
  events: EventTable
  analytics_counts: AnalyticsCountsTable
  analytics_cursor: AnalyticsCursorTable
  blobs: BlobTable
  blob_data: BlobDataTable
  changes: ChangeTable
  jobs: JobTable
  one_time_tokens: OneTimeTokenTable
  app_passwords: AppPasswordTable
  recovery_codes: RecoveryCodeTable
  rate_limits: RateLimitTable
  auth_failures: AuthFailureTable
  system_mail: SystemMailTable
  attachments: AttachmentTable
  drafts: DraftTable
  draft_attachments: DraftAttachmentTable
  tracked_messages: TrackedMessageTable
  tracked_links: TrackedLinkTable
  webhooks: WebhookTable
  webhook_deliveries: WebhookDeliveryTable
  webhook_attempts: WebhookAttemptTable
}

export type Org = Selectable<OrgTable>
export type NewOrg = Insertable<OrgTable>
export type OrgUpdate = Updateable<OrgTable>
export type Job = Selectable<JobTable>
export type NewEvent = Insertable<EventTable>
export type Domain = Selectable<DomainTable>
export type DkimKey = Selectable<DkimKeyTable>
export type Mailbox = Selectable<MailboxTable>
export type Alias = Selectable<AliasTable>
export type Folder = Selectable<FolderTable>
export type OutboundMessage = Selectable<OutboundMessageTable>
export type AliasWarmup = Selectable<AliasWarmupTable>
export type OutboundRecipient = Selectable<OutboundRecipientTable>
export type Suppression = Selectable<SuppressionTable>
export type Attachment = Selectable<AttachmentTable>
export type Draft = Selectable<DraftTable>
export type Webhook = Selectable<WebhookTable>
export type WebhookDelivery = Selectable<WebhookDeliveryTable>
export type WebhookAttempt = Selectable<WebhookAttemptTable>
