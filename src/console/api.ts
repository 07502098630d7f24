/**
 * The console's JSON endpoints, each a call of the ops library: the overview the page polls (the status, its
 * breakdowns and the workers, read in one snapshot; the delivery history the sampler keeps), dead letters by
 * filter and one whole, and the actions (replay, discard, forget), each logged. No SQL here.
 */
import type postgres from 'postgres';
import { OutboxError } from '../errors/errors.ts';
import { type BacklogByEvent, type ProfilesOfKind, readBacklogByEvent, readProfilesByKind } from '../ops/breakdown.ts';
import { discardDeadLetters, findDeadLetters, readDeadLetter } from '../ops/dead-letter-search.ts';
import { retryDeadLetters } from '../ops/dead-letters.ts';
import { type EntityKind, forget } from '../ops/forget.ts';
import { inSnapshot } from '../ops/snapshot.ts';
import { type OutboxStatus, readStatus } from '../ops/status.ts';
import { readWorkers, type Workers } from '../ops/workers.ts';
import type { DeliveryHistory, DeliverySampler } from './sampler.ts';
import type { ConsoleLogger, ConsoleSettings } from './settings.ts';

export interface Overview {
  /** The database's figures were read at about this time (the console's clock). */
  now: string;
  schema: string;
  /** Whether actions are allowed. */
  actions: boolean;
  /** `readStatus` as `posthog-outbox status --json` prints it (its 10 first retrying rows). */
  status: OutboxStatus;
  backlogByEvent: BacklogByEvent;
  profiles: ProfilesOfKind[];
  workers: Workers;
  delivery: DeliveryHistory;
}

/** Who asked for an action, for its log line. */
export interface Requester {
  address: string | undefined;
  userAgent: string | undefined;
}

const ISO = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/;
const MAX_IDS = 1_000;

function text(params: URLSearchParams, name: string): string | undefined {
  const value = params.get(name)?.trim();
  if (value === undefined || value === '') return undefined;
  if (value.length > 1_000) throw new OutboxError('too_long', name, 'must be at most 1000 characters');
  return value;
}

function date(params: URLSearchParams, name: string): Date | undefined {
  const value = text(params, name);
  if (value === undefined) return undefined;
  const parsed = new Date(value);
  if (!ISO.test(value) || Number.isNaN(parsed.getTime()))
    throw new OutboxError('invalid', name, 'must be an ISO 8601 date or date-time with a zone, e.g. 2026-11-01T12:00:00Z');
  return parsed;
}

/** `ids`: the uuids of the dead letters to act on. */
function ids(body: Record<string, unknown>): string[] {
  const list = body.ids;
  if (!Array.isArray(list) || list.some((id) => typeof id !== 'string')) throw new OutboxError('invalid', 'ids', 'must be a list of dead letter uuids');
  if (list.length > MAX_IDS) throw new OutboxError('invalid', 'ids', `at most ${MAX_IDS} at once, got ${list.length}`);
  return list as string[];
}

export class ConsoleApi {
  private cached: { at: number; overview: Promise<Overview> } | undefined;
  private readonly sql: postgres.Sql;
  private readonly settings: ConsoleSettings;
  private readonly sampler: DeliverySampler;
  private readonly log: ConsoleLogger;

  constructor(sql: postgres.Sql, settings: ConsoleSettings, sampler: DeliverySampler, log: ConsoleLogger) {
    this.sql = sql;
    this.settings = settings;
    this.sampler = sampler;
    this.log = log;
  }

  /** The figures the page shows; one read per second at most, however many pages poll (an action reads afresh). */
  overview(): Promise<Overview> {
    const now = Date.now();
    if (this.cached && now - this.cached.at < 1_000) return this.cached.overview;
    const overview = this.readOverview();
    this.cached = { at: now, overview };
    overview.catch(() => {
      if (this.cached?.overview === overview) this.cached = undefined;
    });
    return overview;
  }

  private async readOverview(): Promise<Overview> {
    const { schema } = this.settings;
    const [figures, workers] = await Promise.all([
      inSnapshot(this.sql, async (sql) => ({
        status: await readStatus(sql, { schema, limit: 10 }),
        backlogByEvent: await readBacklogByEvent(sql, { schema, limit: 50 }),
        profiles: await readProfilesByKind(sql, { schema }),
      })),
      readWorkers(this.sql, { schema }).catch(
        (error: unknown): Workers => ({ seen: null, unavailable: `cannot read the workers: ${(error as Error).message}`, sessions: 0 }),
      ),
    ]);
    return { now: new Date().toISOString(), schema, actions: this.settings.allowActions, ...figures, workers, delivery: this.sampler.history() };
  }

  /** `GET api/dead-letters?event=&reason=&after=&before=&limit=`. */
  deadLetters(params: URLSearchParams) {
    const limitText = text(params, 'limit') ?? '50';
    const limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1 || limit > 500) throw new OutboxError('invalid', 'limit', 'must be a whole number from 1 to 500');
    const filter = { event: text(params, 'event'), reason: text(params, 'reason'), diedAfter: date(params, 'after'), diedBefore: date(params, 'before') };
    return findDeadLetters(this.sql, filter, { schema: this.settings.schema, limit });
  }

  /** `GET api/dead-letters/<uuid>`: null when there is none. */
  deadLetter(uuid: string) {
    return readDeadLetter(this.sql, uuid, { schema: this.settings.schema });
  }

  /** `POST api/dead-letters/replay {ids}`: back into the outbox, all or nothing. */
  async replay(body: Record<string, unknown>, who: Requester): Promise<{ moved: number }> {
    const wanted = ids(body);
    const moved = await retryDeadLetters(this.sql, wanted, { schema: this.settings.schema });
    this.done('replay', { ids: wanted, moved }, who);
    return { moved };
  }

  /** `POST api/dead-letters/discard {ids}`: deleted; those no longer dead letters are not counted. */
  async discard(body: Record<string, unknown>, who: Requester): Promise<{ deleted: number; asked: number }> {
    const wanted = ids(body);
    const deleted = await discardDeadLetters(this.sql, wanted, { schema: this.settings.schema });
    this.done('discard', { ids: wanted, deleted }, who);
    return { deleted, asked: new Set(wanted.map((id) => id.toLowerCase())).size };
  }

  /** `POST api/forget {kind, id}`: an erasure, in one transaction. */
  async forget(body: Record<string, unknown>, who: Requester) {
    const { kind, id } = body;
    if (typeof id !== 'string' || id.trim() === '') throw new OutboxError('required', 'id', 'give the id of the user, organization or automation to forget');
    const forgotten = await forget(this.sql, [{ kind: kind as EntityKind, id }], { schema: this.settings.schema });
    this.done('forget', { kind, id, forgotten }, who);
    return { forgotten };
  }

  private done(action: string, what: object, who: Requester): void {
    this.cached = undefined;
    this.log.info({ action, ...what, schema: this.settings.schema, remoteAddress: who.address, userAgent: who.userAgent }, `console ${action}`);
  }
}
