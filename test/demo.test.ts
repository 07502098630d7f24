/**
 * `npm start` (`posthog-outbox demo`) end to end, as a child process with a clean environment: what it
 * prints must match what the traffic plan sends under the attribution contract, and it must leave nothing
 * running, also when interrupted. Expectations are derived here from `DEMO_PLAN` and docs/attribution.md, not
 * from the demo's own code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEMO_PLAN, type DemoPlan } from '../dev/demo/plan.ts';
import type { PlannedRun } from '../dev/demo/plan-types.ts';
import { ABORT_REASONS, CATALOGUE_EVENTS } from '../src/index.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

interface Demo {
  child: ChildProcess;
  /** The embedded server's folder: `.data/demo-<pid>`. */
  folder: string;
  stdout(): string;
  stderr(): string;
  /** Resolves when `pattern` appears on stdout. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

const running: Demo[] = [];

/** `npm start`'s command, with nothing in the environment but PATH and HOME. */
function startDemo(options: { detached?: boolean } = {}): Demo {
  const env: Record<string, string> = {};
  for (const key of ['PATH', 'HOME']) if (process.env[key] !== undefined) env[key] = process.env[key]!;
  const child = spawn(process.execPath, ['cli/main.ts', 'demo'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached ?? false });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (d) => {
    stdout += d;
    for (const l of [...listeners]) l();
  });
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  const demo: Demo = {
    child,
    folder: path.join(ROOT, '.data', `demo-${child.pid}`),
    stdout: () => stdout,
    stderr: () => stderr,
    waitFor(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!pattern.test(stdout)) return;
          done();
          resolve();
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`demo: no ${pattern} on stdout after ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        void exited.then(() => {
          if (listeners.has(check)) {
            done();
            reject(new Error(`demo exited before ${pattern}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
          }
        });
        check();
      });
    },
    exited,
  };
  running.push(demo);
  return demo;
}

afterEach(async () => {
  // A failed test must not leave the demo running: stop it (it stops its server), or kill it (the next start reaps the server).
  for (const demo of running.splice(0)) {
    if (demo.child.exitCode !== null || demo.child.signalCode !== null) continue;
    demo.child.kill('SIGINT');
    const stopped = await Promise.race([demo.exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 15_000))]);
    if (!stopped) demo.child.kill('SIGKILL');
  }
});

/** PIDs of live (non-zombie) processes whose command line mentions `text`. */
function processesMentioning(text: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (cmdline.includes(text) && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z') found.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

/** True when the process `pid` is alive and is a postgres serving `dataDir` (a recycled PID does not count). */
function servesDataDir(pid: number, dataDir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .some((arg) => path.resolve(ROOT, arg) === dataDir);
  } catch {
    return false;
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Nothing the demo started is left: no process mentions its folder, the folder is gone, the capture port is closed. */
async function expectNothingLeft(demo: Demo): Promise<void> {
  expect(processesMentioning(demo.folder)).toEqual([]);
  expect(existsSync(demo.folder)).toBe(false);
  const pg = /embedded PostgreSQL pid (\d+) .*data (\S+)$/m.exec(demo.stdout());
  if (pg) expect(servesDataDir(Number(pg[1]), path.resolve(ROOT, pg[2]!))).toBe(false);
  const capture = /capture server http:\/\/127\.0\.0\.1:(\d+)/.exec(demo.stdout());
  if (capture) expect(await portOpen(Number(capture[1]))).toBe(false);
}

// --- what PostHog must receive, from the plan and the contract -------------------------------------------

const isAutomation = (run: PlannedRun) => 'automation' in run.actor;
/** docs/attribution.md, "Abort reasons": a person's own cancel gets no server event. */
const emitsAbort = (run: PlannedRun) => run.end.kind === 'abort' && !(run.end.reason === 'cancelled' && !isAutomation(run));
const abortReasonOf = (reason: string | null) => ((ABORT_REASONS as readonly (string | null)[]).includes(reason) ? reason! : 'unknown');

function tally(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

function expectations(plan: DemoPlan) {
  const users = new Map(plan.users.map((u) => [u.id, u]));
  const orgs = new Map(plan.organizations.map((o) => [o.id, o]));
  const automations = new Map(plan.automations.map((a) => [a.id, a]));
  const runs = plan.runs;
  const events: Record<string, number> = {
    chat_message_started: runs.length,
    chat_message_completed: runs.filter((r) => r.end.kind === 'complete').length,
    chat_message_aborted: runs.filter(emitsAbort).length,
    chat_message_failed: runs.filter((r) => r.end.kind === 'fail').length,
    tool_called: runs.reduce((n, r) => n + r.tools.length, 0),
    // rolled-back handlers' chat_started never reach PostHog
    chat_started: runs.filter((r) => r.newThread).length,
    automation_created: plan.automations.length,
    thread_shared: runs.filter((r) => r.share).length,
    // docs/attribution.md, "LLM analytics" (the demo has it on): a generation per model call, a span per tool
    // call, a trace per run, however it ended
    $ai_generation: runs.reduce((n, r) => n + r.modelCalls.length, 0),
    $ai_span: runs.reduce((n, r) => n + r.tools.length, 0),
    $ai_trace: runs.length,
  };
  const abortReasons = tally(runs.filter(emitsAbort).map((r) => abortReasonOf((r.end as { reason: string | null }).reason)));
  const errorCategories = tally(runs.flatMap((r) => (r.end.kind === 'fail' ? [r.end.category] : [])));

  // Who appears in committed events: the acting user (or the automation's owner) and its organization;
  // automation_created is recorded with its owner's context.
  const actingUsers = new Set<string>();
  const actingOrgs = new Set<string>();
  const personas = new Set<string>();
  const profiledUsers = new Set<string>(); // users whose events carry a profile field
  for (const run of runs) {
    if ('automation' in run.actor) {
      const a = automations.get(run.actor.automation)!;
      actingUsers.add(a.ownerUserId);
      actingOrgs.add(a.organizationId);
      personas.add(`automation_${a.id}`);
    } else {
      const u = users.get(run.actor.user)!;
      actingUsers.add(u.id);
      actingOrgs.add(u.organizationId);
      profiledUsers.add(u.id);
    }
  }
  for (const a of plan.automations) {
    actingUsers.add(a.ownerUserId);
    actingOrgs.add(users.get(a.ownerUserId)!.organizationId);
    profiledUsers.add(a.ownerUserId);
  }
  const organizationOf = (run: PlannedRun) =>
    'automation' in run.actor ? automations.get(run.actor.automation)!.organizationId : users.get(run.actor.user)!.organizationId;
  const hasUserProfile = (id: string) => profiledUsers.has(id) && Boolean(users.get(id)!.email || users.get(id)!.name);
  const hasOrgProfile = (id: string) => Boolean(orgs.get(id)!.name || orgs.get(id)!.slug);
  const sorted = (s: Iterable<string>) => [...s].sort();
  return {
    events,
    abortReasons,
    errorCategories,
    userCancels: runs.filter((r) => r.end.kind === 'abort' && r.end.reason === 'cancelled' && !isAutomation(r)).length,
    identifiedUsers: sorted([...actingUsers].filter(hasUserProfile)),
    personas: sorted(personas),
    organizations: sorted([...actingOrgs].filter(hasOrgProfile)),
    usersWithoutProfile: sorted([...actingUsers].filter((id) => !hasUserProfile(id))),
    organizationsWithoutProfile: sorted([...actingOrgs].filter((id) => !hasOrgProfile(id))),
    ...llmAnalytics(plan, organizationOf),
  };
}

/**
 * The cost cell: summed where the plan prices the model, `(known of all)` when only some are, `-` when none is;
 * the sum as a matcher within half a unit of its last printed digit (floating sums in another order may round
 * the other way at a boundary).
 */
function costCell(costs: (number | null)[]): unknown {
  const known = costs.filter((c): c is number => c !== null);
  if (known.length === 0) return '-';
  const sum = known.reduce((a, b) => a + b, 0);
  const suffix = known.length === costs.length ? '' : ` (${known.length} of ${costs.length})`;
  return expect.toSatisfy(
    (cell: string) => {
      const m = /^\$(\d+\.\d{4})(.*)$/.exec(cell);
      return m !== null && Math.abs(Number(m[1]) - sum) <= 0.00005 + 1e-12 && m[2] === suffix;
    },
    `$${sum.toFixed(4)}${suffix}`,
  );
}

/** The LLM analytics tables' rows, per model and per organization, from the plan and its prices. */
function llmAnalytics(plan: DemoPlan, organizationOf: (run: PlannedRun) => string) {
  const calls = plan.runs.flatMap((run) => run.modelCalls.map((call) => ({ call, organization: organizationOf(run) })));
  const costOf = ({ call }: (typeof calls)[number]) => {
    const price = plan.prices[call.modelId];
    return price ? (call.inputTokens * price.inputPerMTok + call.outputTokens * price.outputPerMTok) / 1e6 : null;
  };
  const models = [...Map.groupBy(calls, ({ call }) => `${call.modelId} ${call.provider}`)].sort(([a], [b]) => a.localeCompare(b));
  const organizations = [...Map.groupBy(plan.runs, organizationOf)].sort(([a], [b]) => a.localeCompare(b));
  return {
    llmModels: models.map(([key, group]) => [
      ...key.split(' '),
      String(group.length),
      String(group.filter(({ call }) => call.error).length),
      String(group.reduce((n, { call }) => n + call.inputTokens, 0)),
      String(group.reduce((n, { call }) => n + call.outputTokens, 0)),
      costCell(group.map(costOf)),
    ]),
    llmOrganizations: organizations.map(([id, runs]) => [
      id,
      String(runs.reduce((n, r) => n + r.modelCalls.length, 0)),
      String(runs.reduce((n, r) => n + r.tools.length, 0)),
      String(runs.length),
      costCell(calls.filter((c) => c.organization === id).map(costOf)),
    ]),
    failedRuns: plan.runs.filter((r) => r.end.kind === 'fail').length,
    failedTools: plan.runs.reduce((n, r) => n + r.tools.filter((t) => t.outcome !== 'ok').length, 0),
  };
}

// --- parsing what the demo printed -----------------------------------------------------------------------

function eventTable(stdout: string): Map<string, { committed: string; received: number }> {
  const rows = new Map<string, { committed: string; received: number }>();
  const start = stdout.search(/^event\s+committed\s+received$/m);
  expect(start, 'the event table header').toBeGreaterThanOrEqual(0);
  for (const line of stdout.slice(start).split('\n').slice(1)) {
    const m = /^(\S+)\s+(\d+|-)\s+(\d+)$/.exec(line);
    if (!m) break;
    rows.set(m[1]!, { committed: m[2]!, received: Number(m[3]) });
  }
  return rows;
}

function breakdown(stdout: string, label: string): Record<string, number> {
  const line = new RegExp(`^${label}\\s+(.*)$`, 'm').exec(stdout);
  expect(line, `the ${label} line`).not.toBeNull();
  return Object.fromEntries(
    line![1]!.split(' · ').map((pair) => {
      const [name, n] = pair.split(' ');
      return [name!, Number(n)];
    }),
  );
}

/** The rows of the table whose header is `header` (cells apart by two spaces or more), up to its first blank line. */
function tableRows(stdout: string, header: string[]): string[][] {
  const lines = stdout.split('\n');
  const start = lines.findIndex((line) => line.split(/\s{2,}/).join('|') === header.join('|'));
  expect(start, `the table ${header.join(', ')}`).toBeGreaterThanOrEqual(0);
  const end = lines.findIndex((line, i) => i > start && !/\S\s{2,}\S/.test(line));
  return lines.slice(start + 1, end).map((line) => line.split(/\s{2,}/));
}

function who(stdout: string, label: string): { count: number; ids: string[] } {
  const m = new RegExp(`^${label}\\s+(\\d+)\\s+(.*)$`, 'm').exec(stdout);
  expect(m, `the "${label}" row`).not.toBeNull();
  return { count: Number(m![1]), ids: m![2] === '-' ? [] : m![2]!.split(', ').sort() };
}

describe('npm start (posthog-outbox demo)', () => {
  it('runs the whole path with no environment, prints what PostHog received, and leaves nothing running', { timeout: 150_000 }, async () => {
    const started = Date.now();
    const demo = startDemo();
    const { code } = await Promise.race([
      demo.exited,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`demo did not finish in 120 s\n${demo.stdout()}\n${demo.stderr()}`)), 120_000)),
    ]);
    const out = demo.stdout();
    expect(code, `stdout:\n${out}\nstderr:\n${demo.stderr()}`).toBe(0);
    expect(demo.stderr()).not.toMatch(/error/i);
    const want = expectations(DEMO_PLAN);

    // Every catalogue event, and each event's count as the plan and the contract say.
    const table = eventTable(out);
    for (const name of CATALOGUE_EVENTS) expect(table.get(name)?.received, name).toBeGreaterThan(0);
    for (const [name, count] of Object.entries(want.events)) {
      expect(table.get(name), name).toEqual({ committed: String(count), received: count });
    }
    const total = Object.values(want.events).reduce((a, b) => a + b, 0);
    expect(table.get('total')?.committed).toBe(String(total));
    // Nothing else was recorded by the traffic (PostHog's own $identify / $groupidentify come from the worker).
    const recorded = (name: string) => (!name.startsWith('$') || name.startsWith('$ai_')) && name !== 'total';
    expect([...table.keys()].filter(recorded).sort()).toEqual(Object.keys(want.events).sort());
    expect(table.get('$identify')?.received).toBeGreaterThan(0);
    expect(table.get('$groupidentify')?.received).toBeGreaterThan(0);

    // Every abort reason (the user's own cancel gives no event) and every error category.
    expect(breakdown(out, 'abort_reason')).toEqual(want.abortReasons);
    expect(Object.keys(want.abortReasons).sort()).toEqual([...ABORT_REASONS, 'unknown'].sort());
    expect(want.userCancels).toBeGreaterThan(0);
    expect(out).toContain(`runs without a server end event: ${want.userCancels} `);
    expect(breakdown(out, 'error_category')).toEqual(want.errorCategories);

    // LLM analytics: per model and per organization, cost where the plan prices the model; all via the AI endpoint.
    expect(tableRows(out, ['model', 'provider', 'generations', 'errors', 'input tokens', 'output tokens', 'cost'])).toEqual(want.llmModels);
    expect(tableRows(out, ['organization', 'generations', 'spans', 'traces', 'cost'])).toEqual(want.llmOrganizations);
    expect(want.llmModels.some((row) => row.at(-1) === '-') && want.llmModels.some((row) => row.at(-1) !== '-')).toBe(true);
    expect(out).toMatch(
      new RegExp(
        `^traces\\s+${want.events.$ai_trace} for ${DEMO_PLAN.runs.length} runs \\(one trace id each\\), ${want.failedRuns} failed; ${want.events.$ai_span} spans, ${want.failedTools} errors$`,
        'm',
      ),
    );
    const aiEvents = want.events.$ai_generation! + want.events.$ai_span! + want.events.$ai_trace!;
    expect(out).toMatch(new RegExp(`^ai endpoint\\s+${aiEvents} of ${aiEvents} \\$ai_\\* events came through /i/v0/ai/batch/$`, 'm'));

    // Persons (users vs automation personas), organizations, and the legacy ones that have nothing to identify.
    expect(who(out, 'identified users')).toEqual({ count: want.identifiedUsers.length, ids: want.identifiedUsers });
    expect(who(out, 'identified automation personas')).toEqual({ count: want.personas.length, ids: want.personas });
    expect(who(out, 'group-identified organizations')).toEqual({ count: want.organizations.length, ids: want.organizations });
    expect(who(out, 'users without a profile')).toEqual({ count: want.usersWithoutProfile.length, ids: want.usersWithoutProfile });
    expect(who(out, 'organizations without a profile')).toEqual({ count: want.organizationsWithoutProfile.length, ids: want.organizationsWithoutProfile });
    expect(want.usersWithoutProfile.length).toBeGreaterThan(0);
    expect(want.organizationsWithoutProfile.length).toBeGreaterThan(0);

    // Secrets redacted, rollbacks never sent, latency measured.
    for (const secret of DEMO_PLAN.secrets) expect(out).not.toContain(secret);
    expect(out).toMatch(
      new RegExp(`^secrets\\s+${DEMO_PLAN.secrets.length} in failure messages, 0 reached PostHog; e\\.g\\. error_message ".*\\[redacted\\]`, 'm'),
    );
    expect(out).toMatch(
      new RegExp(`^rollback\\s+${DEMO_PLAN.rolledBack.length} event\\(s\\) recorded in transactions that rolled back, 0 reached PostHog`, 'm'),
    );
    expect(out).toMatch(new RegExp(`^latency\\s+commit to delivery .*, ${total} events: p50 .+ · p95 .+ · max .+$`, 'm'));

    expect(out).toMatch(/^stopped\s+worker, capture server, database connections, PostgreSQL \(pid \d+\)$/m);
    await expectNothingLeft(demo);
    console.log(`npm start finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  it('stops promptly on SIGINT during the traffic and leaves no server running', { timeout: 120_000 }, async () => {
    const demo = startDemo();
    await demo.waitFor(/^traffic\s+playing/m);
    const sentAt = Date.now();
    demo.child.kill('SIGINT');
    const { code, at } = await demo.exited;
    expect(code, demo.stderr()).toBe(130);
    expect(at - sentAt).toBeLessThan(15_000);
    expect(demo.stdout()).toMatch(/^stopped\s+worker, capture server, database connections, PostgreSQL \(pid \d+\)$/m);
    expect(demo.stdout()).not.toMatch(/^What PostHog received/m);
    await expectNothingLeft(demo);
  });

  it("stops promptly on a terminal's Ctrl-C (the whole process group, PostgreSQL too) while PostgreSQL starts", { timeout: 120_000 }, async () => {
    const demo = startDemo({ detached: true }); // its own process group, like a shell job
    await demo.waitFor(/^postgres\s+starting embedded PostgreSQL/m);
    const sentAt = Date.now();
    process.kill(-demo.child.pid!, 'SIGINT');
    const { code, at } = await demo.exited;
    expect(code, demo.stderr()).toBe(130);
    expect(at - sentAt).toBeLessThan(15_000);
    await expectNothingLeft(demo);
  });

  it('a second Ctrl-C stops at once, also in the middle of initdb', { timeout: 120_000 }, async () => {
    const demo = startDemo();
    await demo.waitFor(/^postgres\s+starting embedded PostgreSQL/m);
    demo.child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 200)); // the scenario: a second Ctrl-C a moment after the first
    const sentAt = Date.now();
    demo.child.kill('SIGINT');
    const { code, at } = await demo.exited;
    expect(code, demo.stderr()).toBe(130);
    expect(at - sentAt).toBeLessThan(5_000);
    await expectNothingLeft(demo);
  });
});
