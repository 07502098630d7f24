/**
 * record() in Prisma 7 interactive transactions (the engine-less `prisma-client` generator over
 * `@prisma/adapter-pg`, generated for this file: test/support/prisma.ts) against real PostgreSQL: the shared
 * ORM suite (test/clients/orm-suite.ts), and a PrismaClient refused where its `tx` was meant.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from '../../src/record/executor.ts';
import { record } from '../../src/record/record.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { generatePrisma, type GeneratedPrisma, type PrismaClientLike, type PrismaTx } from '../support/prisma.ts';
import { ormSuite } from './orm-suite.ts';
import { committed, CREATE_MESSAGES, event } from './support.ts';

let db: TestDatabase;
let generated: GeneratedPrisma;
let prisma: PrismaClientLike;
const sent: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  await db.sql.unsafe(CREATE_MESSAGES);
  generated = await generatePrisma();
  prisma = await generated.client(db.url, (query) => sent.push(query));
}, 120_000);

afterAll(async () => {
  await prisma?.$disconnect();
  await generated?.remove();
  await db?.drop();
});

describe('record in a Prisma interactive transaction', () => {
  ormSuite<PrismaTx>(
    () => db,
    () => ({
      transaction: (body) => prisma.$transaction(body, { timeout: 20_000, maxWait: 20_000 }),
      insertMessage: (tx, body) => tx.message.create({ data: { body } }),
      sent: () => sent,
      notTransactions: async () => [
        ['the PrismaClient', prisma, /is a PrismaClient, outside any transaction; pass the `tx` of prisma\.\$transaction\(async \(tx\) => \.\.\.\)/],
      ],
    }),
  );

  it('refuses the PrismaClient inside the transaction too (the usual slip: prisma where tx was meant), and the transaction goes on', async () => {
    await prisma.$transaction(async (tx) => {
      await expect(record(prisma as unknown as Connection, event('slip'))).rejects.toMatchObject({ code: 'invalid_transaction' });
      await tx.message.create({ data: { body: 'kept' } });
      await record(tx, event('kept'));
    });
    expect(await committed(db.sql)).toEqual({ events: ['kept'], messages: ['kept'] });
  });

  it('a PrismaClient does not type-check as a connection (it has $connect, a transaction client has not)', () => {
    // @ts-expect-error a PrismaClient is no transaction
    const slip = () => record(prisma, event('never'));
    expect(typeof slip).toBe('function');
  });
});
