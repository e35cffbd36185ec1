// Runs a TypeScript file in a child Node 24 process with the network guard preloaded,
// collecting its output; for tests that need a second process on the same database.

import { type ChildProcess, spawn } from 'node:child_process'

const PRELOAD = new URL('./guard-preload.ts', import.meta.url).pathname

export interface Child {
  proc: ChildProcess
  stdout: () => string
  stderr: () => string
  /** Resolves with the exit code. */
  exited: Promise<number | null>
  /** Resolves when stdout or stderr has printed text matching `re`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>
}

export function runChild(
  file: string | URL,
  args: string[],
  env: Record<string, string>,
  cwd?: string,
): Child {
  const path = typeof file === 'string' ? file : file.pathname
  const proc = spawn(process.execPath, ['--import', PRELOAD, path, ...args], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
    cwd,
  })
  let out = ''
  let err = ''
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = []
  const check = () => {
    for (const w of [...waiters]) {
      const m = (out + err).match(w.re)
      if (m) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(m)
      }
    }
  }
  proc.stdout?.on('data', (d) => {
    out += d
    check()
  })
  proc.stderr?.on('data', (d) => {
    err += d
    check()
  })
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)))
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(re, timeoutMs = 20_000) {
      const m = (out + err).match(re)
      if (m) return Promise.resolve(m)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting for ${re}; stdout: ${out}; stderr: ${err}`)),
          timeoutMs,
        )
        waiters.push({
          re,
          resolve: (x) => {
            clearTimeout(timer)
            resolve(x)
          },
        })
        exited.then(() =>
          setTimeout(
            () => reject(new Error(`child exited before ${re}; stdout: ${out}; stderr: ${err}`)),
            50,
          ),
        )
      })
    },
  }
}
