import { defineConfig } from 'drizzle-kit';

// `npx drizzle-kit generate` writes the outbox migrations from the schema; they are committed and applied by
// `posthog-outbox migrate`. No database connection is needed to generate.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/outbox/schema.ts',
  out: './migrations',
});
