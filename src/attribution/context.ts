/**
 * The run context: who a chat run or tool call belongs to. Checked once, then turned into the
 * attribution every chat and tool event carries (docs/attribution.md, "People and groups",
 * "Whom an event belongs to", "Properties on every chat and tool event"). Pure.
 */
import { OutboxError } from '../errors/errors.ts';
import type { ProfileSnapshots } from '../record/event.ts';
import { checkId, MAX_ID_LENGTH } from '../record/limits.ts';
import { automationFields, organizationFields, personDistinctId, userFields } from './profiles.ts';

export interface RunContext {
  /** The organization the run happens in: a PostHog group of type `organization`. */
  organization: { id: string; name?: string | null; slug?: string | null };
  /** The acting user, or the automation's owner on an automation run. Unknown profile fields are left out. */
  user: { id: string; email?: string | null; name?: string | null };
  /** Set when an automation (not a person) triggered the run; the events then belong to `automation_<id>`. */
  automation?: { id: string; name?: string | null; triggerId?: string | null } | null;
  /** Name of the virtual MCP (tool bundle) the run uses. */
  virtualMcpName?: string | null;
  /** The chat thread. */
  threadId?: string | null;
  /** The client that made the request: see `userAgentFrom()`. */
  userAgent?: string | null;
}

/** The attribution properties, present on every chat and tool event (unknown values are `null`). */
export interface AttributionProperties {
  $groups: { organization: string };
  organization_id: string;
  user_id: string;
  is_automation: boolean;
  automation_id: string | null;
  automation_name: string | null;
  trigger_id: string | null;
  user_agent: string | null;
  virtual_mcp_name: string | null;
  thread_id: string | null;
}

/** Property keys the attribution owns; custom properties may not reuse them. */
export const ATTRIBUTION_KEYS: readonly (keyof AttributionProperties)[] = [
  '$groups',
  'organization_id',
  'user_id',
  'is_automation',
  'automation_id',
  'automation_name',
  'trigger_id',
  'user_agent',
  'virtual_mcp_name',
  'thread_id',
];

/** What every event of one context shares, computed once per run. */
export interface Attribution {
  distinctId: string;
  properties: AttributionProperties;
  groups: { organization: string };
  profiles: ProfileSnapshots;
}

const AUTOMATION_PREFIX = 'automation_';

/** A string, or null when absent; anything else throws `OutboxError('invalid')` naming `field`. */
export function optionalString(value: unknown, field: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw new OutboxError('invalid', field, `must be a string or null, got ${typeof value}`);
  return value;
}

function object(value: unknown, field: string): Record<string, unknown> {
  if (value === undefined || value === null) throw new OutboxError('required', field, 'is required');
  if (typeof value !== 'object' || Array.isArray(value))
    throw new OutboxError('invalid', field, `must be an object, got ${Array.isArray(value) ? 'an array' : typeof value}`);
  return value as Record<string, unknown>;
}

/**
 * Checks a run context and derives its attribution. Throws `OutboxError` naming the field
 * (`context.organization.id`, `context.automation.id`, ...) on bad input.
 */
export function attribution(context: RunContext): Attribution {
  const ctx = object(context, 'context');
  const org = object(ctx.organization, 'context.organization');
  const user = object(ctx.user, 'context.user');
  const organizationId = checkId(org.id, 'context.organization.id');
  const userId = checkId(user.id, 'context.user.id');
  const orgName = optionalString(org.name, 'context.organization.name');
  const orgSlug = optionalString(org.slug, 'context.organization.slug');
  const email = optionalString(user.email, 'context.user.email');
  const userName = optionalString(user.name, 'context.user.name');

  let automation: { id: string; name: string | null; triggerId: string | null } | null = null;
  if (ctx.automation !== undefined && ctx.automation !== null) {
    const a = object(ctx.automation, 'context.automation');
    const id = checkId(a.id, 'context.automation.id');
    if (AUTOMATION_PREFIX.length + id.length > MAX_ID_LENGTH) {
      throw new OutboxError(
        'too_long',
        'context.automation.id',
        `is ${id.length} characters; the persona's distinct id "${AUTOMATION_PREFIX}<id>" must fit PostHog's ${MAX_ID_LENGTH}`,
      );
    }
    automation = { id, name: optionalString(a.name, 'context.automation.name'), triggerId: optionalString(a.triggerId, 'context.automation.triggerId') };
  }

  const properties: AttributionProperties = {
    $groups: { organization: organizationId },
    organization_id: organizationId,
    user_id: userId,
    is_automation: automation !== null,
    automation_id: automation?.id ?? null,
    automation_name: automation?.name ?? null,
    trigger_id: automation?.triggerId ?? null,
    user_agent: optionalString(ctx.userAgent, 'context.userAgent'),
    virtual_mcp_name: optionalString(ctx.virtualMcpName, 'context.virtualMcpName'),
    thread_id: optionalString(ctx.threadId, 'context.threadId'),
  };

  const profiles: ProfileSnapshots = {
    user: { id: userId, fields: userFields({ email, name: userName }) },
    organization: { id: organizationId, fields: organizationFields({ name: orgName, slug: orgSlug }) },
  };
  if (automation) {
    profiles.automation = {
      id: automation.id,
      fields: automationFields({ id: automation.id, name: automation.name, ownerUserId: userId, organizationId }),
    };
  }

  return {
    distinctId: automation ? personDistinctId('automation', automation.id) : userId,
    properties,
    groups: { organization: organizationId },
    profiles,
  };
}

type HeaderBag = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeaderBag, name: string): string | null {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) || null;
  const bag = headers as Record<string, string | string[] | undefined>;
  const key = Object.keys(bag).find((k) => k.toLowerCase() === name.toLowerCase());
  const value = key === undefined ? undefined : bag[key];
  const first = Array.isArray(value) ? value[0] : value;
  return first && first.trim() !== '' ? first : null;
}

/**
 * The `user_agent` of a request: the client-identifying header your clients send (`clientHeader`, for
 * example `x-client-name`), else `User-Agent`, else `null`. Works with fetch `Headers` and Node's
 * `IncomingHttpHeaders`.
 */
export function userAgentFrom(headers: HeaderBag, options: { clientHeader?: string } = {}): string | null {
  return (options.clientHeader ? header(headers, options.clientHeader) : null) ?? header(headers, 'user-agent');
}
