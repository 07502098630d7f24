/**
 * Takes docs/console.png: the console on a real outbox, after a few minutes of traffic through a real worker to
 * the capture server, with poison events dead-lettered, stale events expired, and PostHog failing for the last
 * minutes (so the target is FAILING, rows wait to retry and the lag grows). Not a test: run it by hand,
 * `node test/console/screenshot.ts [--minutes 5] [--out docs/console.png]`, and look at the picture.
 */
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { startCaptureServer } from '../../dev/capture-server.ts';
import { startEmbeddedPostgres } from '../../dev/embedded-postgres.ts';
import { startConsole } from '../../src/console/index.ts';
import { attributedEvent, migrate, record } from '../../src/index.ts';
import { readStatus } from '../../src/ops/index.ts';
import { startWorker } from '../../worker/index.ts';
import { launchBrowser } from './browser.ts';
import { stale } from './seed.ts';

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '5' }, out: { type: 'string', default: 'docs/console.png' } } });
const minutes = Number(values.minutes);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const quiet = { info() {}, warn() {}, error() {} };

const server = await startEmbeddedPostgres();
const sql = postgres(server.url, { max: 2, onnotice: () => {} });
const capture = await startCaptureServer({ apiKey: 'phc_screenshot' });
try {
  await migrate({ databaseUrl: server.url });
  const console_ = await startConsole({ databaseUrl: server.url, port: 0, allowActions: true, sampleIntervalMs: 2_000, logger: quiet });
  capture.rejectEventsWhere((e) => e.event === 'file_uploaded' && (e.properties as { size?: number }).size === -1, {
    message: 'properties.size must be a positive number',
  });
  const worker = await startWorker({ databaseUrl: server.url, posthog: { apiKey: 'phc_screenshot', host: capture.url }, logger: quiet });
  const users = Array.from({ length: 12 }, (_, i) => ({ id: `user_${i}`, email: `user${i}@example.com`, name: `User ${i}` }));
  const organizations = [
    { id: 'org_acme', name: 'Acme' },
    { id: 'org_globex', name: 'Globex' },
  ];
  const names = ['message_sent', 'message_sent', 'message_sent', 'automation_triggered', 'file_uploaded', 'invite_accepted', 'report_exported'];
  const started = Date.now();
  const end = started + minutes * 60_000;
  let failing = false;
  for (let tick = 0; Date.now() < end; tick++) {
    const elapsed = (Date.now() - started) / (minutes * 60_000);
    // the outage: PostHog answers 503 for the last third, and still does when the picture is taken
    if (!failing && elapsed > 0.65) {
      capture.failFor(60 * 60_000, 503);
      failing = true;
    }
    const burst = 3 + Math.round(4 * Math.abs(Math.sin(tick / 40)));
    const events = Array.from({ length: burst }, (_, i) => {
      const user = users[(tick + i) % users.length]!;
      const name = names[(tick * 7 + i) % names.length]!;
      const properties = name === 'file_uploaded' && (tick + i) % 9 === 0 ? { size: -1 } : { size: 1024 * ((tick + i) % 50) };
      return attributedEvent({ organization: organizations[(tick + i) % 2]!, user }, name, properties);
    });
    if (tick % 50 === 25) events.push(attributedEvent({ organization: organizations[0]!, user: users[0]! }, 'stale', { imported: true }));
    await record(sql, events);
    if (tick % 50 === 25) await stale(sql);
    await sleep(1_000); // the traffic's pace: a few events a second, as the picture should show
  }
  // The picture is of an outage: wait until a worker has recorded PostHog failing (the page reads it from there).
  for (const deadline = Date.now() + 60_000; !(await readStatus(sql)).target?.failingSince; await sleep(100)) {
    if (Date.now() > deadline) throw new Error('the worker never recorded PostHog failing');
  }
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
    await page.goto(console_.url);
    await page.locator('#dl-count').filter({ hasText: 'matching' }).waitFor();
    // the 8 newest dead letters, so that the picture shows the whole page
    await page.locator('#dl-filter [name=limit]').fill('8');
    await page.locator('#dl-filter').getByRole('button', { name: 'Filter' }).click();
    await page
      .locator('#dl-count')
      .filter({ hasText: /^8 shown/ })
      .waitFor();
    await sleep(500);
    await page.screenshot({ path: values.out, fullPage: true });
    process.stdout.write(`wrote ${values.out}\n`);
  } finally {
    await browser.close();
  }
  await worker.stop(2_000);
  await console_.close();
} finally {
  await capture.close();
  await sql.end();
  await server.stop();
}
