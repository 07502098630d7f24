/**
 * A Prisma 7 client for the tests, generated when a test asks for it (generated code is never committed):
 * `prisma generate` with the engine-less `prisma-client` generator writes TypeScript into a folder of its
 * own under `.data/` (git-ignored; inside the project, so the generated code resolves `@prisma/client`),
 * which `remove()` deletes. `generate` needs no network and runs no engine, but the CLI wants a schema
 * engine binary to exist: `PRISMA_SCHEMA_ENGINE_BINARY` points it at Node's (never run), so the CLI does
 * not try to download its own.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** The schema of the tests' Prisma client: the caller's own `messages` table (test/clients/support.ts CREATE_MESSAGES). */
export const PRISMA_SCHEMA = `generator client {
  provider = "prisma-client"
  output   = "./client"
}

datasource db {
  provider = "postgresql"
}

model Message {
  id   Int    @id @default(autoincrement())
  body String

  @@map("messages")
}
`;

/** The environment `prisma generate` needs offline: a schema engine path that exists, no update check. */
export function prismaGenerateEnv(): NodeJS.ProcessEnv {
  return { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.execPath, CHECKPOINT_DISABLE: '1', PRISMA_HIDE_UPDATE_MESSAGE: '1' };
}

/** The part of a generated Prisma interactive transaction client the tests use. */
export interface PrismaTx {
  $queryRawUnsafe<T = unknown>(query: string, ...values: unknown[]): Promise<T>;
  $executeRawUnsafe(query: string, ...values: unknown[]): Promise<number>;
  message: { create(args: { data: { body: string } }): Promise<{ id: number; body: string }> };
}

/** The part of a generated `PrismaClient` the tests use. */
export interface PrismaClientLike extends PrismaTx {
  $connect(): Promise<void>;
  $disconnect(): Promise<void>;
  $transaction<T>(body: (tx: PrismaTx) => Promise<T>, options?: { timeout?: number; maxWait?: number }): Promise<T>;
  $on(event: 'query', listener: (event: { query: string; params: string }) => void): void;
}

export interface GeneratedPrisma {
  /** The folder of the schema; the generated client is `client/client.ts` in it. */
  dir: string;
  /** A client over `@prisma/adapter-pg` on `url`; with `onQuery`, it sees every statement Prisma runs. */
  client(url: string, onQuery?: (query: string) => void): Promise<PrismaClientLike>;
  /** Deletes the generated code. */
  remove(): Promise<void>;
}

/** Generates the tests' Prisma client into a folder of its own and returns how to make clients of it. */
export async function generatePrisma(): Promise<GeneratedPrisma> {
  const dir = path.join(ROOT, '.data', `prisma-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'schema.prisma'), PRISMA_SCHEMA);
  const cli = path.join(ROOT, 'node_modules/prisma/build/index.js');
  await promisify(execFile)(process.execPath, [cli, 'generate', '--schema', path.join(dir, 'schema.prisma')], {
    cwd: ROOT,
    env: prismaGenerateEnv(),
    timeout: 60_000,
  });
  const generated = (await import(pathToFileURL(path.join(dir, 'client', 'client.ts')).href)) as {
    PrismaClient: new (options: object) => PrismaClientLike;
  };
  const { PrismaPg } = await import('@prisma/adapter-pg');
  return {
    dir,
    async client(url, onQuery) {
      const adapter = new PrismaPg({ connectionString: url, max: 4 });
      const client = new generated.PrismaClient(onQuery ? { adapter, log: [{ emit: 'event', level: 'query' }] } : { adapter });
      if (onQuery) client.$on('query', (event) => onQuery(event.query));
      return client;
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
