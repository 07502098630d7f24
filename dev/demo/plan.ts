/**
 * The demo's traffic as data: what an AI chat platform's handlers write in a few seconds (who, which runs,
 * which tools, how each run ends). `simulateTraffic` (traffic.ts) plays it; test/demo.test.ts derives what
 * PostHog must receive from it and docs/attribution.md, independently of the demo's code.
 */
import type { DemoAutomation, DemoOrganization, DemoUser, ModelPrice, PlannedRun } from './plan-types.ts';
import { AUTOMATION_RUNS } from './runs-by-automations.ts';
import { PEOPLE_RUNS, SECRETS } from './runs-by-people.ts';

export interface DemoPlan {
  organizations: DemoOrganization[];
  users: DemoUser[];
  /** Each is created by its owner first: a row in `automations` and the application event `automation_created`. */
  automations: DemoAutomation[];
  /** Runs on the same thread happen in order; threads run side by side. */
  runs: PlannedRun[];
  /** Handlers that record `chat_started`, then fail: the transaction rolls back and PostHog never sees the event. */
  rolledBack: { user: string; thread: string }[];
  /** Secrets that appear in failure messages; none may reach PostHog. */
  secrets: string[];
  /**
   * The models whose price the application knows, by model id: their generations carry their cost. For the
   * others PostHog computes it at ingestion (from `$ai_model`, `$ai_provider` and the tokens).
   */
  prices: Record<string, ModelPrice>;
}

export const DEMO_PLAN: DemoPlan = {
  organizations: [
    { id: 'org_acme', name: 'Acme Robotics', slug: 'acme' },
    { id: 'org_globex', name: 'Globex', slug: 'globex' },
    { id: 'org_legacy_1999' },
    { id: 'org_legacy_2011' },
  ],
  users: [
    { id: 'user_ada', organizationId: 'org_acme', email: 'ada@acme.example', name: 'Ada Lovelace' },
    { id: 'user_grace', organizationId: 'org_acme', email: 'grace@acme.example', name: 'Grace Hopper' },
    { id: 'user_linus', organizationId: 'org_globex', email: 'linus@globex.example', name: 'Linus Torvalds' },
    { id: 'user_margaret', organizationId: 'org_globex', email: 'margaret@globex.example' },
    { id: 'user_legacy_42', organizationId: 'org_acme' },
    { id: 'user_legacy_17', organizationId: 'org_legacy_1999' },
    { id: 'user_legacy_88', organizationId: 'org_legacy_2011' },
  ],
  automations: [
    {
      id: 'auto_daily_digest',
      name: 'Daily digest',
      ownerUserId: 'user_ada',
      organizationId: 'org_acme',
      trigger: { id: 'trg_cron_weekdays_0900', type: 'cron' },
    },
    {
      id: 'auto_pr_triage',
      name: 'PR triage',
      ownerUserId: 'user_linus',
      organizationId: 'org_globex',
      trigger: { id: 'trg_github_pull_request', type: 'webhook' },
    },
    {
      id: 'auto_churn_watch',
      name: null,
      ownerUserId: 'user_legacy_42',
      organizationId: 'org_acme',
      trigger: { id: 'trg_subscription_cancelled', type: 'event' },
    },
  ],
  runs: [...PEOPLE_RUNS, ...AUTOMATION_RUNS],
  rolledBack: [{ user: 'user_grace', thread: 'thread_grace_rolled_back' }],
  secrets: SECRETS,
  prices: {
    'claude-sonnet-4': { inputPerMTok: 3, outputPerMTok: 15 },
    'claude-haiku-4': { inputPerMTok: 0.8, outputPerMTok: 4 },
  },
};
