/**
 * The Postgres schema of the demo application's own tables (`messages`, `automations`): schema.sql creates
 * them, schema.ts declares them for drizzle, app.ts writes them. A module of its own: schema.ts is loaded
 * lazily by app.ts (with drizzle-orm), and needs the name without importing app.ts back.
 */
export const DEMO_APP_SCHEMA = 'posthog_demo_app';
