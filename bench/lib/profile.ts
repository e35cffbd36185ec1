// CPU profiles of timed runs only (not set-up, warm-up or clean-up), through the inspector of
// this process: start() before a run, stop() after it writes <dir>/<name>.cpuprofile (open it in
// Chrome DevTools or speedscope) and returns where the main thread's time went, by package or
// file of the repository and by function (self time).

import { mkdirSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { join } from 'node:path'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

export interface ProfileSummary {
  file: string
  sampled_s: number
  /** Share of sampled time (%), by repository file or package, biggest first. */
  by_area: [string, number][]
  by_function: [string, number][]
}

const root = new URL('../../', import.meta.url).href

function area(url: string, fn: string): string {
  if (!url) return fn // (idle), (garbage collector), (program), native fs and socket calls
  const u = url.startsWith(root) ? url.slice(root.length) : url
  const nm = u.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/)
  if (nm) return nm[1] as string
  return u.startsWith('node:') ? 'node:*' : u
}

export function summarizeProfile(p: Profile, file: string, top = 15): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const areas = new Map<string, number>()
  const fns = new Map<string, number>()
  let total = 0
  p.samples.forEach((id, i) => {
    const t = p.timeDeltas[i] ?? 0
    const cf = byId.get(id)?.callFrame
    if (!cf) return
    total += t
    const a = area(cf.url, cf.functionName)
    areas.set(a, (areas.get(a) ?? 0) + t)
    const f = `${cf.functionName || '(anonymous)'} ${a}${cf.url ? `:${cf.lineNumber + 1}` : ''}`
    fns.set(f, (fns.get(f) ?? 0) + t)
  })
  const rank = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, t]) => [k, Math.round((1000 * t) / Math.max(1, total)) / 10] as [string, number])
  return { file, sampled_s: Math.round(total / 1e4) / 100, by_area: rank(areas), by_function: rank(fns) }
}

export async function startProfile(): Promise<{ stop(dir: string, name: string): Promise<ProfileSummary> }> {
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 500 })
  await session.post('Profiler.start')
  return {
    async stop(dir, name) {
      const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: Profile }
      await session.post('Profiler.disable')
      session.disconnect()
      mkdirSync(dir, { recursive: true })
      const file = join(dir, `${name.replace(/[^a-z0-9]+/gi, '-')}.cpuprofile`)
      writeFileSync(file, JSON.stringify(profile))
      return summarizeProfile(profile, file)
    },
  }
}
