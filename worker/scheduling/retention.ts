/**
 * Dead-letter retention: dead letters hold personal data (each carries its user's profile snapshot), so a
 * worker deletes those past `deadLetterRetentionMs`, after a drain loop, at most once an hour.
 */
import type postgres from 'postgres';
import { expireDeadLetters } from '../../src/ops/dead-letters.sql.ts';
import { query } from '../../src/sql/statement.ts';
import { within } from './deadline.ts';
import type { Logger } from '../types.ts';

/** How often a worker looks for expired dead letters. */
const RETENTION_CHECK_MS = 3_600_000;

/** Rows per statement: the deletes stay bounded however many dead letters expired. */
const CHUNK = 10_000;

export class DeadLetterRetention {
  private checkedAt = 0;
  private readonly sql: postgres.Sql;
  private readonly schema: string;
  /** 0: dead letters are kept forever. */
  private readonly retentionMs: number;
  private readonly signal: AbortSignal;
  private readonly log: Logger;

  constructor(sql: postgres.Sql, settings: { schema: string; deadLetterRetentionMs: number }, signal: AbortSignal, log: Logger) {
    this.sql = sql;
    this.schema = settings.schema;
    this.retentionMs = settings.deadLetterRetentionMs;
    this.signal = signal;
    this.log = log;
  }

  /** Deletes dead letters past their retention, in bounded statements, at most once an hour. */
  async expire(): Promise<void> {
    const retentionMs = this.retentionMs;
    if (retentionMs === 0 || this.signal.aborted || Date.now() - this.checkedAt < RETENTION_CHECK_MS) return;
    this.checkedAt = Date.now();
    let total = 0;
    try {
      for (;;) {
        const [row] = await within(query(this.sql, expireDeadLetters(this.schema), { retentionMs, limit: CHUNK }), 'deleting expired dead letters');
        total += row!.count;
        if (row!.count < CHUNK || this.signal.aborted) break;
      }
    } catch (error) {
      this.log.warn({ err: String((error as Error)?.message ?? error) }, 'could not delete expired dead letters');
    }
    if (total > 0) this.log.info({ deleted: total, retentionDays: retentionMs / 86_400_000 }, 'deleted dead letters past their retention');
  }
}
