// Wiring only: turns a validated config into a running Postern. Opens the secrets file and the
// store, migrates, checks the key-encryption key, builds services, binds the listeners of the
// roles this process runs, starts the workers, and returns one handle whose close() shuts all
// of it down in reverse order within shutdown.grace_ms. No capability logic lives here.

import { hkdfSync } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { FastifyPluginAsync } from 'fastify'
import { type MailPort, resolveMailPorts } from './config/ports.ts'
import type { Config } from './config/schema.ts'
import { loadOrCreateSecrets, type ServerSecrets } from './config/secrets.ts'
import { VERSION } from './config/version.ts'
import type { Resolver } from './dns/resolver.ts'
import { createResolver } from './dns/system-resolver.ts'
import { buildApp } from './http/app.ts'
import type { App } from './http/types.ts'
import { createLogger, type Logger } from './log/logger.ts'
import { type ConnectGuard, createConnectGuard } from './net/connect-guard.ts'
import { createApiKeyService } from './services/accounts/api-keys.ts'
import type { AccountsContext } from './services/accounts/context.ts'
import { completeSetup } from './services/accounts/identity.ts'
import { createPasswordHasher } from './services/accounts/passwords.ts'
import { newAppPassword } from './services/accounts/secrets.ts'
import { createSessionService } from './services/accounts/sessions.ts'
import { createGroupCommitter } from './services/delivery/group-commit.ts'
import type { DeliveryContext } from './services/delivery/inbound.ts'
import { retireDkimKeys } from './services/domains/dkim.ts'
import { recheckVerifiedDomains } from './services/domains/domains.ts'
import { createHealthService, type ListenerInfo } from './services/health/health.ts'
import { builtinJobs } from './services/jobs/builtin.ts'
import { createJobRunner, type JobDef, type JobRunner } from './services/jobs/runner.ts'
import type { MailboxesContext } from './services/mailboxes/mailboxes.ts'
import { trashPurgeJob } from './services/messages/purge.ts'
import { type OutboundContext, outboundSettings } from './services/outbound/context.ts'
import { drainSystemMail } from './services/outbound/system-mail.ts'
import { createQueueWorker } from './services/outbound/worker.ts'
import { authThrottleSettings, createAuthThrottle } from './services/ratelimit/auth-throttle.ts'
import { createRateLimiter, type RateLimiter } from './services/ratelimit/limiter.ts'
import { rulesFromConfig } from './services/ratelimit/rules.ts'
import { checkKeyEncryptionKey } from './services/secrets/key-check.ts'
import { createSetupService, type SetupService } from './services/setup/setup-token.ts'
import { createSmtpTransport } from './smtp/client/transport.ts'
import { createMxHandler } from './smtp/mx-handler.ts'
import { createSmtpServer } from './smtp/server.ts'
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
  app: App | null
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

    const resolver =
      opts.resolver ?? createResolver({ servers: config.dns.servers, timeoutMs: config.dns.timeout_ms })
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
    for (const job of [
      ...builtinJobs({ store, blobs, config, now: () => clock.now() }),
      ...(opts.jobs ?? []),
    ])
      jobs.register(job)

    const setup = createSetupService({ store, now: () => clock.now() })
    const limiter = createRateLimiter({ store, clock })
    let publicUrl = config.public_url ?? `http://${hostForUrl(config.http.host)}:${config.http.port}`
    const accounts = createAccounts(config, store, clock, secrets, () => publicUrl)
    const throttle = accounts.throttle
    const domains = createDomainsContext(config, { store, clock, resolver, bus, secrets, accounts })
    const committer = createGroupCommitter(store.db, { onCommit: opts.onDeliveryCommit })
    const delivery: DeliveryContext = {
      store,
      clock,
      blobs,
      bus,
      resolver,
      log: log.child({ mod: 'delivery' }),
      committer,
      settings: {
        hostname: config.hostname as string,
        authservId: config.smtp.authserv_id ?? (config.hostname as string),
        verifyAuth: config.smtp.verify_auth,
        dmarcReject: config.smtp.dmarc_reject,
        dmarcQuarantineToJunk: config.smtp.dmarc_quarantine_to_junk,
        maxReceived: 50,
      },
    }
    closers.push(() => committer.drain())
    const rules = rulesFromConfig(config)
    const outbound: OutboundContext = {
      store,
      clock,
      blobs,
      bus,
      log: log.child({ mod: 'outbound' }),
      committer,
      keyEncryptionKey: secrets.keyEncryptionKey,
      returnPathKey: returnPathKey(secrets),
      limiter,
      rules,
      resolver,
      transport: createSmtpTransport({
        connectGuard,
        logger: log.child({ mod: 'smtp-out' }),
        clock,
        timeouts: {
          connectMs: config.outbound.connect_timeout_ms,
          greetingMs: config.outbound.command_timeout_ms,
          commandMs: config.outbound.command_timeout_ms,
          dataMs: config.outbound.command_timeout_ms * 2,
        },
      }),
      allows: (ip) => connectGuard.allows(ip),
      local: { ...delivery, settings: { ...delivery.settings, verifyAuth: false } },
      settings: outboundSettings(config, config.hostname as string),
    }
    const mailPorts = resolveMailPorts(config)
    jobs.register({
      name: 'domain-dns-recheck',
      description: 'Re-checks the DNS of verified domains and records each change as an event.',
      intervalMs: config.domains.recheck_hours * 3_600_000,
      firstRunDelayMs: 5 * 60_000,
      run: () => recheckVerifiedDomains(domains),
    })
    jobs.register({
      name: 'dkim-retire',
      description: 'Retires rotated-out DKIM keys once their grace period is over.',
      intervalMs: 3_600_000,
      firstRunDelayMs: 60_000,
      run: async () => ({ retired: await retireDkimKeys(store.db, clock.now()) }),
    })
    jobs.register({
      name: 'rate-limit-prune',
      description: 'Deletes expired rate-limit windows and failed-login counters.',
      intervalMs: 10 * 60_000,
      firstRunDelayMs: 60_000,
      run: async () => ({ windows: await limiter.prune(), failures: await throttle.prune() }),
    })
    jobs.register(trashPurgeJob({ store, clock, bus, blobs }))
    const setupToken = await setup.issueToken()

    const listeners: ListenerInfo[] = []
    const notes = [
      `IMAP and SMTP submission are not in this build yet; they will use ${mailPorts
        .filter((p) => p.name !== 'smtp-mx')
        .map((p) => `${p.name} ${p.port}`)
        .join(', ')}`,
      ...mailPorts
        .filter((p) => p.fellBack)
        .map((p) => `${p.name}: port ${p.standard} needs privileges this process lacks; using ${p.port}`),
    ]
    const startedAt = clock.now()
    const health = createHealthService({
      store,
      blobs,
      version: VERSION,
      startedAt,
      now: () => clock.now(),
      listeners: () => listeners,
      tls: () => tls.info(),
      notes: () => notes,
    })

    let app: App | null = null
    let url: string | null = null
    const roles = new Set(config.roles)
    if (roles.has('http')) {
      app = await buildApp({
        config,
        log,
        version: VERSION,
        services: { health, setup, accounts, domains, limiter, rules, jobs, blobs, outbound },
        listeners: () => listeners,
        plugins: opts.httpPlugins ?? [],
      })
      const httpApp = app
      await httpApp.listen({ host: config.http.host, port: config.http.port })
      const addr = httpApp.server.address() as AddressInfo
      listeners.push({ name: 'http', host: config.http.host, port: addr.port, tls: 'none' })
      url = `http://${hostForUrl(config.http.host)}:${addr.port}`
      if (config.public_url === null) publicUrl = url
      closers.push(() => closeWithin(httpApp, config.shutdown.grace_ms, log))
      if (config.https.enabled) {
        const server = createHttpsServer({ ...tls.serverOptions() }, (req, res) => httpApp.routing(req, res))
        tls.attach(server) // clients without SNI get reloaded certificates too
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject)
          server.listen(config.https.port, config.https.host as string, () => resolve())
        })
        const port = (server.address() as AddressInfo).port
        listeners.push({ name: 'https', host: config.https.host as string, port, tls: 'implicit' })
        closers.push(() => closeServerWithin(server, config.shutdown.grace_ms))
      }
    }

    if (roles.has('smtp')) {
      const mx = mailPorts.find((p) => p.name === 'smtp-mx') as MailPort
      const smtpLog = log.child({ mod: 'smtp' })
      const smtp = createSmtpServer({
        handler: createMxHandler(delivery, smtpLog, outbound),
        settings: config.smtp,
        hostname: config.hostname as string,
        tls: () => tls.serverOptions(),
        log: smtpLog,
        now: () => clock.now(),
      })
      const port = await listenMailPort(
        mx,
        config.smtp.mx_port === null,
        (p) => smtp.listen(p, mx.host),
        notes,
      )
      listeners.push({ name: 'smtp-mx', host: mx.host, port, tls: 'starttls' })
      closers.push(() => smtp.close(config.shutdown.grace_ms))
    }

    if (roles.has('workers')) {
      await jobs.start()
      closers.push(() => jobs.stop())
      const worker = createQueueWorker(outbound, {
        periodic: () => drainSystemMail(outbound, () => setup.operatorOrgId()),
      })
      outbound.wake = () => worker.wake()
      // Sends accepted by another process wake this one's worker too.
      const unsubscribe = bus.subscribe('email.queued', () => worker.wake())
      worker.start()
      closers.push(async () => {
        unsubscribe()
        await worker.stop()
      })
    }

    const bannerUrl = publicUrl
    print(`Postern ${VERSION} is running (data: ${config.data_dir}, database: ${store.location})`)
    const scheme = (l: ListenerInfo) =>
      l.name.startsWith('smtp')
        ? 'smtp'
        : l.name.startsWith('imap')
          ? 'imap'
          : l.tls === 'none'
            ? 'http'
            : 'https'
    for (const l of listeners)
      print(
        `  ${l.name.padEnd(8)} ${scheme(l)}://${hostForUrl(l.host)}:${l.port}${l.tls === 'starttls' ? ' (STARTTLS)' : ''}`,
      )
    for (const note of notes) print(`  note: ${note}`)
    if (tls.info().self_signed)
      print(
        `  tls: using a self-signed certificate for ${config.hostname}; set tls.cert_file and tls.key_file for a real one`,
      )
    if (setupToken) {
      print('')
      print('  No organisation exists yet. Create the first owner within this run with:')
      print(`    setup link:  ${bannerUrl}/setup?token=${setupToken}`)
      print(`    setup token: ${setupToken}`)
      print('  (the token changes at every start until setup is done)')
    }

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
      app,
      listeners,
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

/**
 * Binds a mail listener. A port chosen automatically (the standard one) that is taken or
 * refused falls back to the documented unprivileged port, and a note says so; a configured
 * port that cannot be bound stops the start with a clear error.
 */
async function listenMailPort(
  p: MailPort,
  auto: boolean,
  listen: (port: number) => Promise<number>,
  notes: string[],
): Promise<number> {
  try {
    return await listen(p.port)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const fallback = FALLBACK_PORTS[p.name]
    if (auto && !p.fellBack && (code === 'EADDRINUSE' || code === 'EACCES') && fallback) {
      notes.push(
        `${p.name}: port ${p.port} is ${code === 'EADDRINUSE' ? 'in use by another program' : 'not allowed'}; using ${fallback}`,
      )
      return listen(fallback)
    }
    throw new Error(
      `cannot listen for ${p.name} on ${p.host}:${p.port} (${code}); set another port in the config`,
      { cause: err },
    )
  }
}

const FALLBACK_PORTS: Record<string, number> = {
  'smtp-mx': 2025,
  'smtp-submission': 2587,
  'smtp-submissions': 2465,
  imap: 2143,
  imaps: 2993,
}

/** A strong password for an owner created from the command line (shown once). */
const generatedPassword = () => `${newAppPassword()}-${newAppPassword()}`

const hostForUrl = (host: string) =>
  host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host

/** Stops accepting, lets in-flight requests finish, and cuts the rest at the deadline. */
async function closeWithin(app: App, graceMs: number, log: Logger): Promise<void> {
  const timer = setTimeout(() => {
    log.warn({ grace_ms: graceMs }, 'shutdown deadline reached; closing open HTTP connections')
    app.server.closeAllConnections()
  }, graceMs)
  // Connections busy when close() began become idle once their response is sent; close them
  // then, instead of waiting for their keep-alive to run out.
  const sweep = setInterval(() => app.server.closeIdleConnections(), 100)
  try {
    await app.close()
  } finally {
    clearTimeout(timer)
    clearInterval(sweep)
  }
}

async function closeServerWithin(server: HttpsServer, graceMs: number): Promise<void> {
  const timer = setTimeout(() => server.closeAllConnections(), graceMs)
  const sweep = setInterval(() => server.closeIdleConnections(), 100)
  await new Promise<void>((resolve) => server.close(() => resolve()))
  clearTimeout(timer)
  clearInterval(sweep)
}

/** The key that signs return paths: derived from the token signing key, so every node agrees without a new secret. */
function returnPathKey(secrets: ServerSecrets): Buffer {
  return Buffer.from(
    hkdfSync('sha256', secrets.tokenSigningKey, Buffer.alloc(0), 'postern return-path v1', 32),
  )
}
