-- The demo application's own tables (dev/demo/schema.ts declares them for drizzle; a test checks that the
-- two agree). The demo runs this at start-up, so it must stay idempotent. These are not the package's
-- tables: those are created by migrations/.
CREATE SCHEMA IF NOT EXISTS posthog_demo_app;

CREATE TABLE IF NOT EXISTS posthog_demo_app.messages (
  id bigserial PRIMARY KEY,
  thread_id text NOT NULL,
  author text NOT NULL,
  kind text NOT NULL,
  body text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS posthog_demo_app.automations (
  id text PRIMARY KEY,
  organization_id text NOT NULL,
  owner_user_id text NOT NULL,
  name text,
  trigger_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
