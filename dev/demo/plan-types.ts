/**
 * The shapes of the demo's plan (plan.ts holds the plan itself, its runs in runs-by-people.ts and
 * runs-by-automations.ts): who acts, what each run does and how it ends.
 */
import type { ErrorCategory, ToolAnnotations } from '../../src/index.ts';

export interface DemoOrganization {
  id: string;
  /** Left out for a legacy organization that predates the signup hooks: no profile, nothing to group-identify. */
  name?: string;
  slug?: string;
}

export interface DemoUser {
  id: string;
  organizationId: string;
  /** Left out for a legacy user: no profile fields, nothing to identify. */
  email?: string;
  name?: string;
}

export interface DemoAutomation {
  id: string;
  /** Null: the persona's name falls back to `Automation <id>`. */
  name: string | null;
  ownerUserId: string;
  organizationId: string;
  trigger: { id: string; type: 'cron' | 'webhook' | 'event' };
}

export interface PlannedTool {
  name: string;
  safeName?: string;
  source: 'mcp' | 'builtin';
  /** Absent: the tool declares no annotations (every hint is reported as null). */
  annotations?: ToolAnnotations;
  latencyMs: number;
  /** `ok`: a result; `result-error`: a result with `isError: true`; `throws`: the tool threw. */
  outcome: 'ok' | 'result-error' | 'throws';
}

export interface PlannedModelCall {
  modelId: string;
  modelTitle: string;
  /** The provider, as PostHog's LLM analytics names it (`anthropic`, `openai`). */
  provider: string;
  inputTokens: number;
  outputTokens: number;
  /** How long the simulated call streams. */
  latencyMs: number;
  /** The call fails with this error (the run then fails with it too). */
  error?: { message: string; name?: string };
}

/** A model's price, when the application knows it (its provider's invoice): US dollars per million tokens. */
export interface ModelPrice {
  inputPerMTok: number;
  outputPerMTok: number;
}

export type PlannedEnd =
  | { kind: 'complete'; finishReason: string; threadStatus: string }
  /** What the run's `AbortController.abort(reason)` is given; `null`: `abort()` with no reason (a DOMException). */
  | { kind: 'abort'; reason: string | null }
  /** The error the run fails with; `category` is what the contract says it is (docs/attribution.md, "Error categories"). */
  | { kind: 'fail'; message: string; name?: string; category: ErrorCategory };

export interface PlannedRun {
  /** What happens, in a few words. */
  label: string;
  thread: string;
  /** A person's run (`user`), or an automation's (`automation`, fired by its trigger; the owner is the user). */
  actor: { user: string } | { automation: string };
  userAgent: string | null;
  virtualMcp: string | null;
  agentId: string;
  mode: 'chat' | 'agent';
  /** The first message of a new thread: the handler also records the application event `chat_started`. */
  newThread?: boolean;
  modelCalls: PlannedModelCall[];
  tools: PlannedTool[];
  end: PlannedEnd;
  /** After the run, the user shares the thread: the application event `thread_shared`. */
  share?: boolean;
}
