// Passwords people choose: argon2id hashing and verification off the event loop (the
// @node-rs/argon2 work runs on libuv's thread pool), cost from config, and the strength rule.
// verifyNothing() spends the same work for an unknown account, so timing does not reveal
// whether an email has an account; `verifications` counts every verification for tests.

import { hash, verify } from '@node-rs/argon2'

export interface PasswordPolicy {
  memoryKib: number
  timeCost: number
  parallelism: number
  minLength: number
}

export interface PasswordHasher {
  hash(password: string): Promise<string>
  verify(phc: string, password: string): Promise<boolean>
  /** Runs one verification against a fixed hash, for accounts that do not exist. */
  verifyNothing(password: string): Promise<false>
  /** Problems with a chosen password, empty when acceptable. */
  weaknesses(password: string, context?: { email?: string; name?: string }): string[]
  readonly verifications: number
}

// A short list of the most common choices; length and variety rules catch the rest.
const COMMON = new Set([
  'password',
  'password1',
  'password123',
  '123456789',
  '1234567890',
  'qwertyuiop',
  'iloveyou',
  'letmein123',
  'welcome123',
  'admin12345',
  'changeme',
  'changeme123',
  'passw0rd',
  'qwerty123',
  '1q2w3e4r5t',
  'abc1234567',
  'football',
  'baseball',
  'sunshine',
  'princess',
  'dragon1234',
  'monkey1234',
  'trustno1',
  'superman',
  'postern',
  'postern123',
])

export function createPasswordHasher(policy: PasswordPolicy): PasswordHasher {
  const options = { memoryCost: policy.memoryKib, timeCost: policy.timeCost, parallelism: policy.parallelism }
  let verifications = 0
  let dummy: Promise<string> | null = null
  const self: PasswordHasher = {
    hash: (password) => hash(password, options),
    async verify(phc, password) {
      verifications++
      try {
        return await verify(phc, password)
      } catch {
        return false // a malformed stored hash never verifies
      }
    },
    async verifyNothing(password) {
      dummy ??= hash('postern-dummy-password-for-timing', options)
      verifications++
      await verify(await dummy, password).catch(() => false)
      return false
    },
    weaknesses(password, context = {}) {
      const problems: string[] = []
      if (password.length < policy.minLength) problems.push(`must be at least ${policy.minLength} characters`)
      if (password.length > 1024) problems.push('must be at most 1024 characters')
      const lower = password.toLowerCase()
      if (COMMON.has(lower)) problems.push('is one of the most common passwords')
      if (new Set(password).size < 5) problems.push('needs more different characters')
      const local = context.email?.split('@')[0]?.toLowerCase()
      if (local && local.length >= 4 && lower.includes(local))
        problems.push('must not contain your email address')
      return problems
    },
    get verifications() {
      return verifications
    },
  }
  return self
}
