/**
 * A real browser for the console's tests: Debian's `chromium`, driven by playwright-core (`.ci/run` installs it
 * with apt-get, as it installs PgBouncer). One browser per test file, launched by `browserHooks`. Without
 * chromium the browser tests are skipped on a developer machine and fail in CI (`CI` set), as the pooler tests do.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';

/** Where Debian puts chromium, else what `command -v chromium` finds. */
export function chromiumBinary(): string | undefined {
  if (existsSync('/usr/bin/chromium')) return '/usr/bin/chromium';
  const found = spawnSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], { encoding: 'utf8' });
  const bin = found.stdout.trim().split('\n')[0];
  return found.status === 0 && bin ? bin : undefined;
}

/** Whether the browser tests run: chromium is installed, or this is CI (where they must fail without it). */
export function runBrowserTests(): boolean {
  return chromiumBinary() !== undefined || Boolean(process.env.CI);
}

/**
 * Headless, no sandbox (tests run as root in CI), and none of chromium's own connections (updates, sync, field
 * trials): the machine has no internet, and the console must need none.
 */
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchBrowser(): Promise<Browser> {
  const executablePath = chromiumBinary();
  if (!executablePath) throw new Error('chromium is not installed: the console tests need a real browser (`apt-get install -y chromium`; .ci/run installs it)');
  return chromium.launch({ executablePath, args: ARGS });
}

/** One browser for the test file; `get()` returns it. */
export function browserHooks(): () => Browser {
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });
  return () => browser!;
}
