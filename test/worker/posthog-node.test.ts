/**
 * posthog-node is pinned, with the @posthog/core it runs on: the sender relies on members of theirs beyond the
 * public surface (worker/send/posthog-node.ts, POSTHOG_NODE_INTERNALS). Upgrading means changing both pins in package.json
 * and running this file and test/worker/sender.test.ts (what goes on the wire); this file fails first when a
 * pin floats, when posthog-node would run on another @posthog/core than the pinned one, or when a member is gone.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { PostHog } from 'posthog-node';
import { describe, expect, it } from 'vitest';
import { POSTHOG_NODE_INTERNALS } from '../../worker/send/posthog-node.ts';

const root = path.resolve(import.meta.dirname, '../..');
const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };

/** The directory of `name` as `from` (a file) resolves it: walks up from its entry point to its package.json. */
function packageDir(name: string, from: string): string {
  let dir = path.dirname(createRequire(from).resolve(name));
  while (!readFileSyncOrNull(path.join(dir, 'package.json'))?.includes(`"name": "${name}"`)) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json of ${name} above its entry point`);
    dir = up;
  }
  return dir;
}

function readFileSyncOrNull(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

const versionAt = (dir: string) => (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;

describe('posthog-node and @posthog/core are pinned', () => {
  it('package.json names one exact version of each, and it is the one installed', () => {
    for (const name of ['posthog-node', '@posthog/core']) {
      expect(manifest.dependencies[name], name).toMatch(/^\d+\.\d+\.\d+$/);
      expect(versionAt(packageDir(name, path.join(root, 'package.json'))), name).toBe(manifest.dependencies[name]);
    }
  });

  it('posthog-node runs on the pinned @posthog/core (the copy it resolves, not only the one the package installs)', () => {
    const posthogNode = packageDir('posthog-node', path.join(root, 'package.json'));
    const core = packageDir('@posthog/core', path.join(posthogNode, 'package.json'));
    expect(versionAt(core)).toBe(manifest.dependencies['@posthog/core']);
  });

  it('every member the sender uses beyond the public surface is there, and sendBatch is handed the messages it serialises', async () => {
    for (const name of POSTHOG_NODE_INTERNALS) expect(typeof (PostHog.prototype as unknown as Record<string, unknown>)[name], name).toBe('function');
    const handed: unknown[][] = [];
    const bodies: string[] = [];
    class Probe extends PostHog {
      protected override sendBatch(messages: unknown[], ...rest: unknown[]): Promise<void> {
        handed.push(messages);
        return (super.sendBatch as (...args: unknown[]) => Promise<void>).call(this, messages, ...rest);
      }
    }
    const client = new Probe('phc_pin', {
      host: 'http://127.0.0.1:9',
      flushAt: 10,
      flushInterval: 0,
      fetchRetryCount: 0,
      disableCompression: true,
      fetch: (async (_url: string, init: RequestInit) => {
        bodies.push(init.body as string);
        return new Response('{"status":1}', { status: 200 });
      }) as never,
    });
    const uuid = '0190a000-0000-7000-8000-000000000001';
    (client as unknown as { captureStateless(d: string, e: string, p: object, o: object): void }).captureStateless('user_1', 'tool_called', { i: 1 }, { uuid });
    await (client as unknown as { flushWithPendingPromises(): Promise<void> }).flushWithPendingPromises();
    expect(handed).toHaveLength(1);
    expect(handed[0]).toEqual([expect.objectContaining({ uuid, event: 'tool_called', distinct_id: 'user_1' })]);
    expect(bodies).toHaveLength(1);
    expect(JSON.parse(bodies[0]!).batch).toEqual([expect.objectContaining({ uuid, event: 'tool_called' })]);
  });
});
