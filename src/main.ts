// Wiring only: turns a validated config into a running Postern. Opens the secrets file and the
// store, migrates, checks the key-encryption key, builds services, binds the listeners of the
// roles this process runs, starts the workers, and returns one handle whose close() shuts all
// of it down in reverse order within shutdown.grace_ms. No capability logic lives here.

import { hkdfSync } from 'node:crypto'
import { mkdirSync, readFileSync } from 'node:fs'
import type { FastifyPluginAsync } from 'fastify'
import { resolveMailPorts } from './config/ports.ts'
import { type Config, ROLES } from './config/schema.ts'
import { loadOrCreateSecrets, type ServerSecrets } from './config/secrets.ts'
import { VERSION } from './config/version.ts'
import { createCachingResolver } from './dns/cache.ts'
import type { Resolver } from './dns/resolver.ts'
import { createResolver } from './dns/system-resolver.ts'
import { createLogger, type Logger } from './log/logger.ts'
import { type ConnectGuard, createConnectGuard } from './net/connect-guard.ts'
import { createHttpPost } from './net/http-post.ts'
import { createHttpsGet } from './net/https-get.ts'
import { printBanner } from './roles/banner.ts'
import { type RunningComponents, startComponents } from './roles/component.ts'
import type { RoleContext } from './roles/context.ts'
import { ROLE_COMPONENTS } from './roles/index.ts'
import { registerJobs } from './roles/jobs.ts'
import { hostForUrl } from './roles/listen.ts'
import { createApiKeyService } from './services/accounts/api-keys.ts'
import type { AccountsContext } from './services/accounts/context.ts'
import { completeSetup } from './services/accounts/identity.ts'
import { createPasswordHasher } from './services/accounts/passwords.ts'
import { newAppPassword } from './services/accounts/secrets.ts'
import { createSessionService } from './services/accounts/sessions.ts'
import { createGroupCommitter } from './services/delivery/group-commit.ts'
import type { DeliveryContext } from './services/delivery/inbound.ts'
import { type ComponentHealth, createHealthService, type ListenerInfo } from './services/health/health.ts'
import { createJobRunner, type JobDef, type JobRunner } from './services/jobs/runner.ts'
import { createVerifiedLogins } from './services/mail-login/verified-cache.ts'
import type { MailboxesContext } from './services/mailboxes/mailboxes.ts'
import { type OutboundContext, outboundSettings } from './services/outbound/context.ts'
import { createForwarding } from './services/outbound/forward.ts'
import { createMtaSts } from './services/outbound/mta-sts.ts'
import { authThrottleSettings, createAuthThrottle } from './services/ratelimit/auth-throttle.ts'
import { createRateLimiter, type RateLimiter } from './services/ratelimit/limiter.ts'
import { rulesFromConfig } from './services/ratelimit/rules.ts'
import { checkKeyEncryptionKey } from './services/secrets/key-check.ts'
import { createSetupService, type SetupService } from './services/setup/setup-token.ts'
import { type WebhooksContext, webhookSettings } from './services/webhooks/context.ts'
import { createSmtpTransport } from './smtp/client/transport.ts'
import { type BlobStore, createBlobStore } from './store/blobs/blob-store.ts'
import type { FileOps } from './store/blobs/file-ops.ts'
import { type ChangeBus, createChangeBus } from './store/change-bus.ts'
import { openStore, type Store } from './store/db.ts'
import { migrateToLatest } from './store/migrate.ts'
import { type Clock, systemClock } from './time/clock.ts'
import { type CertificateService, createCertificateService } from './tls/certificates.ts'

export interface StartOptions {
  config: Config
  log?: Logger
  clock?: Clock
  /** Overrides the resolver built from dns.* (tests pin it to a loopback DNS server). */
  resolver?: Resolver
  /** Overrides the outbound connect guard (tests allow loopback only). */
  connectGuard?: ConnectGuard
  /** Extra HTTP route plugins (tests). */
  httpPlugins?: FastifyPluginAsync[]
  /** Extra jobs (tests). */
  jobs?: JobDef[]
  /** The file layer of the blob store (durability tests record its fsyncs). */
  fileOps?: FileOps
  /** Called after each delivery transaction commits (durability tests). */
  onDeliveryCommit?: (jobs: number) => void
  /** Where the start-up banner goes (standard error by default; tests silence it). */
  print?: (line: string) => void
}

export interface Postern {
  config: Config
  log: Logger
  store: Store
  blobs: BlobStore
  bus: ChangeBus
  jobs: JobRunner
  setup: SetupService
  accounts: AccountsContext
  domains: MailboxesContext
  delivery: DeliveryContext
  limiter: RateLimiter
  resolver: Resolver
  /** Every outbound connection (SMTP delivery, webhooks, MTA-STS, imports) goes through this. */
  connectGuard: ConnectGuard
  tls: CertificateService
  secrets: ServerSecrets
  /** Each component's state, as the health route reports it. */
  components: () => ComponentHealth[]
  listeners: ListenerInfo[]
  /** Base URL of the HTTP listener, e.g. http://127.0.0.1:8787 (null without the http role). */
  url: string | null
  /** The one-time setup token printed at start, while no organisation exists. */
  setupToken: string | null
  close(): Promise<void>
}

/** Opens the store and applies migrations: shared by serve, migrate and admin commands. */
export async function openMigratedStore(config: Config): Promise<Store> {
  const store = await openStore(config)
  try {
    await migrateToLatest(store)
  } catch (err) {
    await store.close()
    throw err
  }
  return store
}

export interface MigrateResult {
  location: string
  applied: string[]
  current: string | null
}

export async function migrateDatabase(config: Config): Promise<MigrateResult> {
  const store = await openStore(config)
  try {
    const r = await migrateToLatest(store)
    return { location: store.location, ...r }
  } finally {
    await store.close()
  }
}

export interface InitResult {
  data_dir: string
  secrets_file: string
  secrets_created: boolean
  database: string
  migrations_applied: string[]
  setup_token: string | null
  /** Set when init created the first owner. */
  owner: { email: string; org_id: string; user_id: string; password: string | null } | null
}

export interface InitOwner {
  email: string
  org: string
  /** Generated (and returned once) when not given. */
  password?: string
}

/** Everything the first start does before listening (postern init), and optionally the first owner. */
export async function initInstallation(
  config: Config,
  clock: Clock = systemClock,
  owner: InitOwner | null = null,
): Promise<InitResult> {
  mkdirSync(config.data_dir, { recursive: true, mode: 0o700 })
  const { secrets, created } = loadOrCreateSecrets(config.secrets_file as string)
  const store = await openStore(config)
  try {
    const { applied } = await migrateToLatest(store)
    await checkKeyEncryptionKey(store, secrets.keyEncryptionKey, config.secrets_file as string, clock.now())
    const setup = createSetupService({ store, now: () => clock.now() })
    let madeOwner: InitResult['owner'] = null
    if (owner) {
      const password = owner.password ?? generatedPassword()
      const accounts = createAccounts(
        config,
        store,
        clock,
        secrets,
        () => config.public_url ?? `http://${hostForUrl(config.http.host)}:${config.http.port}`,
      )
      const r = await completeSetup(
        accounts,
        setup,
        null,
        { org_name: owner.org, email: owner.email, password },
        { ip: null, userAgent: 'postern init' },
      )
      madeOwner = {
        email: r.user.email,
        org_id: r.org.id,
        user_id: r.user.id,
        password: owner.password ? null : password,
      }
    }
    const setupToken = await setup.issueToken()
    return {
      owner: madeOwner,
      data_dir: config.data_dir,
      secrets_file: config.secrets_file as string,
      secrets_created: created,
      database: store.location,
      migrations_applied: applied,
      setup_token: setupToken,
    }
  } finally {
    await store.close()
  }
}

/** The accounts context (passwords, sessions, keys, throttle) over an open store. */
export function createAccounts(
  config: Config,
  store: Store,
  clock: Clock,
  secrets: ServerSecrets,
  publicUrl: () => string,
): AccountsContext {
  return {
    store,
    clock,
    hasher: createPasswordHasher({
      memoryKib: config.auth.argon2_memory_kib,
      timeCost: config.auth.argon2_time_cost,
      parallelism: config.auth.argon2_parallelism,
      minLength: config.auth.min_password_length,
    }),
    sessions: createSessionService({
      store,
      clock,
      signingKey: secrets.tokenSigningKey,
      days: config.auth.session_days,
    }),
    keys: createApiKeyService({ store, clock }),
    throttle: createAuthThrottle({ store, clock, settings: authThrottleSettings(config) }),
    mailLogins: createVerifiedLogins({
      ttlMs: config.auth.mail_login_cache_seconds * 1000,
      now: () => clock.now(),
    }),
    keyEncryptionKey: secrets.keyEncryptionKey,
    settings: { signup: config.auth.signup, hostname: config.hostname as string, publicUrl },
  }
}

/** The domains context (DNS records, DKIM, mailboxes, aliases) over an open store. */
export function createDomainsContext(
  config: Config,
  deps: {
    store: Store
    clock: Clock
    resolver: Resolver
    bus: ChangeBus
    secrets: ServerSecrets
    accounts: AccountsContext
  },
): MailboxesContext {
  const mailPorts = resolveMailPorts(config)
  const portOf = (name: string) => mailPorts.find((p) => p.name === name)?.port as number
  return {
    store: deps.store,
    clock: deps.clock,
    resolver: deps.resolver,
    bus: deps.bus,
    keyEncryptionKey: deps.secrets.keyEncryptionKey,
    hasher: deps.accounts.hasher,
    keys: deps.accounts.keys,
    settings: {
      mailHost: config.hostname as string,
      ports: {
        submission: portOf('smtp-submission'),
        submissions: portOf('smtp-submissions'),
        imap: portOf('imap'),
        imaps: portOf('imaps'),
      },
      dmarcPolicy: config.domains.dmarc_policy,
      mtaStsMode: config.domains.mta_sts_mode,
      mtaStsMaxAgeSeconds: config.domains.mta_sts_max_age_days * 86_400,
      ttl: config.domains.record_ttl,
      dkimGraceMs: config.domains.dkim_rotation_grace_days * 86_400_000,
    },
  }
}

/** The inbound delivery context (SMTP MX and local delivery of outbound mail). */
export function createDeliveryContext(
  config: Config,
  deps: Pick<DeliveryContext, 'store' | 'clock' | 'blobs' | 'bus' | 'resolver' | 'committer'> & {
    log: Logger
  },
): DeliveryContext {
  return {
    ...deps,
    log: deps.log.child({ mod: 'delivery' }),
    settings: {
      hostname: config.hostname as string,
      authservId: config.smtp.authserv_id ?? (config.hostname as string),
      verifyAuth: config.smtp.verify_auth,
      dmarcReject: config.smtp.dmarc_reject,
      dmarcQuarantineToJunk: config.smtp.dmarc_quarantine_to_junk,
      arcTrustedSealers: config.smtp.arc_trusted_sealers.map((d) =>
        d.trim().toLowerCase().replace(/\.$/, ''),
      ),
      maxReceived: 50,
    },
  }
}

/** The outbound context (send API, queue worker, bounces) over the delivery context's store. */
export function createOutboundContext(
  config: Config,
  deps: {
    delivery: DeliveryContext
    secrets: ServerSecrets
    limiter: RateLimiter
    rules: OutboundContext['rules']
    connectGuard: ConnectGuard
    log: Logger
  },
): OutboundContext {
  const { delivery, connectGuard, log } = deps
  const ca = extraCa(config.outbound.tls_ca_file)
  const mtaSts = config.outbound.mta_sts
    ? createMtaSts({
        store: delivery.store,
        resolver: delivery.resolver,
        clock: delivery.clock,
        httpsGet: createHttpsGet({ resolver: delivery.resolver, connectGuard, ca }),
        port: config.outbound.mta_sts_port,
        timeoutMs: config.outbound.mta_sts_timeout_ms,
        log: log.child({ mod: 'mta-sts' }),
      })
    : null
  return {
    store: delivery.store,
    clock: delivery.clock,
    blobs: delivery.blobs,
    bus: delivery.bus,
    log: log.child({ mod: 'outbound' }),
    committer: delivery.committer,
    keyEncryptionKey: deps.secrets.keyEncryptionKey,
    returnPathKey: returnPathKey(deps.secrets),
    srsKey: derivedKey(deps.secrets, 'postern srs v1'),
    limiter: deps.limiter,
    rules: deps.rules,
    resolver: delivery.resolver,
    transport: createSmtpTransport({
      connectGuard,
      logger: log.child({ mod: 'smtp-out' }),
      clock: delivery.clock,
      timeouts: {
        connectMs: config.outbound.connect_timeout_ms,
        greetingMs: config.outbound.command_timeout_ms,
        commandMs: config.outbound.command_timeout_ms,
        dataMs: config.outbound.command_timeout_ms * 2,
      },
      ...(ca ? { ca } : {}),
    }),
    mtaSts,
    allows: (ip) => connectGuard.allows(ip),
    local: { ...delivery, settings: { ...delivery.settings, verifyAuth: false } },
    settings: outboundSettings(config, config.hostname as string),
  }
}

/** The webhooks context (events API, endpoints, the sender): HTTP goes through the connect guard. */
export function createWebhooksContext(
  config: Config,
  deps: Pick<WebhooksContext, 'store' | 'blobs' | 'clock' | 'publicUrl'> & {
    log: Logger
    secrets: ServerSecrets
    resolver: Resolver
    connectGuard: ConnectGuard
  },
): WebhooksContext {
  const { connectGuard } = deps
  return {
    store: deps.store,
    blobs: deps.blobs,
    clock: deps.clock,
    log: deps.log.child({ mod: 'webhooks' }),
    keyEncryptionKey: deps.secrets.keyEncryptionKey,
    post: createHttpPost({ resolver: deps.resolver, connectGuard, ca: extraCa(config.outbound.tls_ca_file) }),
    allows: (ip) => connectGuard.allows(ip),
    publicUrl: deps.publicUrl,
    settings: webhookSettings(config),
  }
}

/** The PEM of outbound.tls_ca_file, read once at start; null when the key is not set. */
function extraCa(file: string | null): string | null {
  if (!file) return null
  let pem: string
  try {
    pem = readFileSync(file, 'utf8')
  } catch (err) {
    throw new Error(`outbound.tls_ca_file: cannot read ${file}: ${(err as Error).message}`, { cause: err })
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw new Error(`outbound.tls_ca_file: ${file} holds no PEM certificate`)
  return pem
}

/** What admin commands of the CLI work with: the services over the installation's store. */
export interface AdminContext {
  store: Store
  accounts: AccountsContext
  domains: MailboxesContext
  setup: SetupService
  close(): Promise<void>
}

export async function openAdmin(config: Config, clock: Clock = systemClock): Promise<AdminContext> {
  const { secrets } = loadOrCreateSecrets(config.secrets_file as string)
  const store = await openMigratedStore(config)
  try {
    await checkKeyEncryptionKey(store, secrets.keyEncryptionKey, config.secrets_file as string, clock.now())
  } catch (err) {
    await store.close()
    throw err
  }
  const log = createLogger({ level: 'silent' })
  const bus = createChangeBus({ store, log, pollMs: config.events.poll_ms, now: () => clock.now() })
  const resolver = createResolver({ servers: config.dns.servers, timeoutMs: config.dns.timeout_ms })
  const publicUrl = config.public_url ?? `http://${hostForUrl(config.http.host)}:${config.http.port}`
  const accounts = createAccounts(config, store, clock, secrets, () => publicUrl)
  const domains = createDomainsContext(config, { store, clock, resolver, bus, secrets, accounts })
  return {
    store,
    accounts,
    domains,
    setup: createSetupService({ store, now: () => clock.now() }),
    close: async () => {
      await bus.close()
      await store.close()
    },
  }
}

export async function startPostern(opts: StartOptions): Promise<Postern> {
  const { config } = opts
  const clock = opts.clock ?? systemClock
  const log = opts.log ?? createLogger({ level: config.log.level })
  const print = opts.print ?? ((line: string) => process.stderr.write(`${line}\n`))
  const closers: (() => Promise<void> | void)[] = []
  const closeAll = async () => {
    for (const c of closers.reverse())
      await Promise.resolve(c()).catch((err) => log.error({ err }, 'shutdown step failed'))
  }

  try {
    mkdirSync(config.data_dir, { recursive: true, mode: 0o700 })
    const { secrets, created: secretsCreated } = loadOrCreateSecrets(config.secrets_file as string)
    if (secretsCreated) log.info({ file: config.secrets_file }, 'wrote new server secrets file; back it up')

    const store = await openMigratedStore(config)
    closers.push(() => store.close())
    await checkKeyEncryptionKey(store, secrets.keyEncryptionKey, config.secrets_file as string, clock.now())

    const blobs = createBlobStore({
      store,
      backend: config.blobs.backend,
      dir: config.blobs.dir as string,
      inlineMaxBytes: config.blobs.inline_max_bytes,
      now: () => clock.now(),
      fileOps: opts.fileOps,
    })
    await blobs.check() // creates the blob folder on first start
    const bus = createChangeBus({
      store,
      log: log.child({ mod: 'bus' }),
      pollMs: config.events.poll_ms,
      now: () => clock.now(),
    })
    await bus.start()
    closers.push(() => bus.close())

    // Injected resolvers (tests) are used as given. The system resolver is cached per TTL for
    // mail (inbound checks, outbound MX/MTA-STS, webhooks); domain verification asks it
    // directly, so a record someone just published is seen at once.
    const systemResolver = opts.resolver
      ? undefined
      : createResolver({ servers: config.dns.servers, timeoutMs: config.dns.timeout_ms })
    const directResolver = opts.resolver ?? (systemResolver as Resolver)
    const resolver =
      systemResolver && config.dns.cache_entries > 0
        ? createCachingResolver(systemResolver, {
            maxEntries: config.dns.cache_entries,
            maxTtlMs: config.dns.cache_max_ttl_seconds * 1000,
            defaultTtlMs: config.dns.cache_default_ttl_seconds * 1000,
            negativeTtlMs: config.dns.cache_negative_seconds * 1000,
            now: () => clock.now(),
          })
        : directResolver
    const connectGuard =
      opts.connectGuard ?? createConnectGuard({ allow: config.net.connect_allow, allowPublic: true })
    const tls = await createCertificateService({
      tls: config.tls,
      hostname: config.hostname as string,
      dataDir: config.data_dir,
      log: log.child({ mod: 'tls' }),
    })
    closers.push(() => tls.close())

    const jobs = createJobRunner({
      store,
      clock,
      log: log.child({ mod: 'jobs' }),
      tickMs: config.jobs.tick_ms,
      leaseMs: config.jobs.lease_seconds * 1000,
    })
    const setup = createSetupService({ store, now: () => clock.now() })
    const limiter = createRateLimiter({ store, clock })
    let publicUrl = config.public_url ?? `http://${hostForUrl(config.http.host)}:${config.http.port}`
    const accounts = createAccounts(config, store, clock, secrets, () => publicUrl)
    const domains = createDomainsContext(config, {
      store,
      clock,
      resolver: directResolver,
      bus,
      secrets,
      accounts,
    })
    const committer = createGroupCommitter(store.db, { onCommit: opts.onDeliveryCommit })
    closers.push(() => committer.drain())
    const delivery = createDeliveryContext(config, { store, clock, blobs, bus, resolver, log, committer })
    const rules = rulesFromConfig(config)
    const outbound = createOutboundContext(config, {
      delivery,
      secrets,
      limiter,
      rules,
      connectGuard,
      log,
    })
    // Forwarding leaves through the queue: the MX's delivery context and the queue's own local
    // delivery (mail sent here to an alias that forwards out) both get it.
    outbound.tracking = {
      secret: derivedKey(secrets, 'postern tracking v1'),
      baseUrl: () => config.tracking.base_url ?? publicUrl,
      prefetchWindowMs: config.tracking.prefetch_window_ms,
    }
    const forwarding = createForwarding(outbound)
    delivery.forwarding = forwarding
    outbound.local.forwarding = forwarding
    const webhooks = createWebhooksContext(config, {
      store,
      blobs,
      clock,
      log,
      secrets,
      resolver,
      connectGuard,
      publicUrl: () => publicUrl,
    })
    registerJobs(jobs, { config, store, blobs, bus, clock, domains, limiter, throttle: accounts.throttle })
    for (const job of opts.jobs ?? []) jobs.register(job)
    const setupToken = await setup.issueToken()

    const mailPorts = resolveMailPorts(config)
    const notes = mailPorts
      .filter((p) => p.fellBack)
      .map((p) => `${p.name}: port ${p.standard} needs privileges this process lacks; using ${p.port}`)
    const listeners: ListenerInfo[] = []
    let running: RunningComponents | null = null
    const health = createHealthService({
      store,
      blobs,
      version: VERSION,
      startedAt: clock.now(),
      now: () => clock.now(),
      listeners: () => listeners,
      components: () => running?.health() ?? [],
      tls: () => tls.info(),
      notes: () => notes,
    })
    const ctx: RoleContext = {
      config,
      log,
      clock,
      version: VERSION,
      store,
      blobs,
      bus,
      tls,
      secrets,
      resolver,
      connectGuard,
      jobs,
      setup,
      accounts,
      domains,
      delivery,
      outbound,
      http: { health, setup, accounts, domains, limiter, rules, jobs, blobs, outbound, webhooks },
      mailPorts,
      listeners: () => listeners,
      notes,
      setPublicUrl: (url) => {
        publicUrl = url
      },
      httpPlugins: opts.httpPlugins ?? [],
    }
    const roles = ROLES.filter((r) => config.roles.includes(r))
    running = await startComponents(
      roles.map((role) => ({ role, components: ROLE_COMPONENTS[role](ctx) })),
      log,
      config.shutdown.grace_ms,
    )
    const started = running
    listeners.push(...started.listeners)
    closers.push(() => started.stop(config.shutdown.grace_ms))
    const httpListener = listeners.find((l) => l.name === 'http')
    const url = httpListener ? `http://${hostForUrl(httpListener.host)}:${httpListener.port}` : null

    const unserved = mailPorts.filter((p) => !listeners.some((l) => l.name === p.name))
    if (unserved.length && roles.length === ROLES.length)
      notes.unshift(`not in this build yet: ${unserved.map((p) => `${p.name} (port ${p.port})`).join(', ')}`)
    printBanner(print, { config, version: VERSION, store, listeners, notes, tls, setupToken, publicUrl })

    let closing: Promise<void> | null = null
    return {
      config,
      log,
      store,
      blobs,
      bus,
      jobs,
      setup,
      accounts,
      domains,
      delivery,
      limiter,
      resolver,
      connectGuard,
      tls,
      secrets,
      listeners,
      components: () => started.health(),
      url,
      setupToken,
      close: () => {
        closing ??= closeAll()
        return closing
      },
    }
  } catch (err) {
    await closeAll()
    throw err
  }
}

/** A strong password for an owner created from the command line (shown once). */
const generatedPassword = () => `${newAppPassword()}-${newAppPassword()}`

/** The key that signs return paths: derived from the token signing key, so every node agrees without a new secret. */
function returnPathKey(secrets: ServerSecrets): Buffer {
  return derivedKey(secrets, 'postern return-path v1')
}

/** A key for one purpose, derived (HKDF-SHA256) from the token signing key of the secrets file. */
function derivedKey(secrets: ServerSecrets, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secrets.tokenSigningKey, Buffer.alloc(0), purpose, 32))
}
