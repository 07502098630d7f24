// docs/attribution.md: "People and groups", "Whom an event belongs to",
// "Properties on every chat and tool event". One case per table row at least.
import { describe, expect, it } from 'vitest';
import { attribution, attributedEvent, OutboxError, userAgentFrom, type RunContext } from '../../src/index.ts';

const person: RunContext = {
  organization: { id: 'org_1', name: 'Acme', slug: 'acme' },
  user: { id: 'user_1', email: 'ada@example.com', name: 'Ada' },
  virtualMcpName: 'research-tools',
  threadId: 'thread_1',
  userAgent: 'acme-desktop/1.2',
};

const automated: RunContext = {
  organization: { id: 'org_1', name: 'Acme', slug: 'acme' },
  user: { id: 'user_1' },
  automation: { id: 'auto_7', name: 'Nightly digest', triggerId: 'trg_3' },
  virtualMcpName: 'digest-tools',
  threadId: 'thread_2',
  userAgent: null,
};

describe('who the people and groups are', () => {
  it('user: a person whose distinct id is the user id, profile { email, name }', () => {
    const a = attribution(person);
    expect(a.distinctId).toBe('user_1');
    expect(a.profiles.user).toEqual({ id: 'user_1', fields: { email: 'ada@example.com', name: 'Ada' } });
    expect(a.profiles.automation).toBeUndefined();
  });

  it('automation: a person automation_<id>, profile { name, is_automation, automation_id, owner_user_id, organization_id }', () => {
    const a = attribution(automated);
    expect(a.distinctId).toBe('automation_auto_7');
    expect(a.profiles.automation).toEqual({
      id: 'auto_7',
      fields: { name: 'Nightly digest', is_automation: true, automation_id: 'auto_7', owner_user_id: 'user_1', organization_id: 'org_1' },
    });
  });

  it.each([undefined, null, ''])('automation name falls back to "Automation <id>" (name %j)', (name) => {
    const a = attribution({ ...automated, automation: { id: 'auto_7', name } });
    expect(a.profiles.automation?.fields.name).toBe('Automation auto_7');
  });

  it('organization: a group of type organization keyed by its id, profile { name, slug }', () => {
    const a = attribution(person);
    expect(a.groups).toEqual({ organization: 'org_1' });
    expect(a.profiles.organization).toEqual({ id: 'org_1', fields: { name: 'Acme', slug: 'acme' } });
  });

  it('a virtual MCP is not a group: its name travels as virtual_mcp_name', () => {
    const a = attribution(person);
    expect(Object.keys(a.groups)).toEqual(['organization']);
    expect(a.properties.$groups).toEqual({ organization: 'org_1' });
    expect(a.properties.virtual_mcp_name).toBe('research-tools');
  });

  it.each([
    ['user email unknown (automation run)', { ...person, user: { id: 'u', name: 'Ada' } }, 'user', { name: 'Ada' }],
    ['user with no known field', { ...person, user: { id: 'u', email: null } }, 'user', {}],
    ['organization slug unknown', { ...person, organization: { id: 'o', name: 'Acme' } }, 'organization', { name: 'Acme' }],
    ['organization with no known field', { ...person, organization: { id: 'o', name: null, slug: undefined } }, 'organization', {}],
  ] as const)('profile snapshots leave unknown fields out, never null: %s', (_label, context, kind, fields) => {
    expect(attribution(context as RunContext).profiles[kind]?.fields).toEqual(fields);
  });

  it('organization name and slug are not event properties', () => {
    const props = attribution(person).properties as unknown as Record<string, unknown>;
    expect(JSON.stringify(props)).not.toContain('Acme');
    expect(JSON.stringify(props)).not.toContain('acme"');
    expect(Object.keys(props).filter((k) => /name|slug/.test(k))).toEqual(['automation_name', 'virtual_mcp_name']);
  });
});

describe('which person an event belongs to', () => {
  it.each([
    ['a person', person, 'user_1', 'user_1'],
    ['an automation', automated, 'automation_auto_7', 'user_1'],
  ])('run triggered by %s: distinct id %s, owner kept as user_id', (_label, context, distinctId, userId) => {
    const event = attributedEvent(context, 'chat_started');
    expect(event.distinctId).toBe(distinctId);
    expect(event.properties.user_id).toBe(userId);
  });
});

describe('properties every chat and tool event carries', () => {
  const cases: [string, RunContext, Record<string, unknown>][] = [
    [
      'person run, everything known',
      person,
      {
        $groups: { organization: 'org_1' },
        organization_id: 'org_1',
        user_id: 'user_1',
        is_automation: false,
        automation_id: null,
        automation_name: null,
        trigger_id: null,
        user_agent: 'acme-desktop/1.2',
        virtual_mcp_name: 'research-tools',
        thread_id: 'thread_1',
      },
    ],
    [
      'automation run',
      automated,
      {
        $groups: { organization: 'org_1' },
        organization_id: 'org_1',
        user_id: 'user_1',
        is_automation: true,
        automation_id: 'auto_7',
        automation_name: 'Nightly digest',
        trigger_id: 'trg_3',
        user_agent: null,
        virtual_mcp_name: 'digest-tools',
        thread_id: 'thread_2',
      },
    ],
    [
      'nothing optional known: every key present, null',
      { organization: { id: 'o' }, user: { id: 'u' } },
      {
        $groups: { organization: 'o' },
        organization_id: 'o',
        user_id: 'u',
        is_automation: false,
        automation_id: null,
        automation_name: null,
        trigger_id: null,
        user_agent: null,
        virtual_mcp_name: null,
        thread_id: null,
      },
    ],
    [
      'automation without name or trigger',
      { organization: { id: 'o' }, user: { id: 'u' }, automation: { id: 'a' } },
      {
        $groups: { organization: 'o' },
        organization_id: 'o',
        user_id: 'u',
        is_automation: true,
        automation_id: 'a',
        automation_name: null,
        trigger_id: null,
        user_agent: null,
        virtual_mcp_name: null,
        thread_id: null,
      },
    ],
  ];
  it.each(cases)('%s', (_label, context, expected) => {
    expect(attribution(context).properties).toStrictEqual(expected);
  });

  it.each([
    ['the client-identifying header wins', { 'x-client-name': 'acme-cli/3', 'user-agent': 'node' }, 'acme-cli/3'],
    ['User-Agent when the client header is absent', { 'User-Agent': 'Mozilla/5.0' }, 'Mozilla/5.0'],
    ['User-Agent when the client header is blank', { 'x-client-name': ' ', 'user-agent': 'curl/8' }, 'curl/8'],
    ['null when neither is sent', {}, null],
    ['first value of a repeated header', { 'user-agent': ['a/1', 'b/2'] }, 'a/1'],
  ])('user_agent: %s', (_label, headers, expected) => {
    expect(userAgentFrom(headers, { clientHeader: 'X-Client-Name' })).toBe(expected);
  });

  it('user_agent reads fetch Headers too', () => {
    expect(userAgentFrom(new Headers({ 'x-client-name': 'app/1', 'user-agent': 'x' }), { clientHeader: 'x-client-name' })).toBe('app/1');
    expect(userAgentFrom(new Headers({ 'user-agent': 'x/2' }))).toBe('x/2');
  });
});

describe('bad context', () => {
  const long = 'x'.repeat(201);
  it.each([
    ['no context', undefined, 'required', 'context'],
    ['no organization', { user: { id: 'u' } }, 'required', 'context.organization'],
    ['no user', { organization: { id: 'o' } }, 'required', 'context.user'],
    ['empty organization id', { organization: { id: '' }, user: { id: 'u' } }, 'required', 'context.organization.id'],
    ['blank user id', { organization: { id: 'o' }, user: { id: '  ' } }, 'required', 'context.user.id'],
    ['numeric user id', { organization: { id: 'o' }, user: { id: 42 } }, 'invalid', 'context.user.id'],
    ['user id over 200 characters', { organization: { id: 'o' }, user: { id: long } }, 'too_long', 'context.user.id'],
    ['organization id over 200', { organization: { id: long }, user: { id: 'u' } }, 'too_long', 'context.organization.id'],
    [
      'automation id making automation_<id> over 200',
      { organization: { id: 'o' }, user: { id: 'u' }, automation: { id: 'a'.repeat(190) } },
      'too_long',
      'context.automation.id',
    ],
    ['automation without id', { organization: { id: 'o' }, user: { id: 'u' }, automation: { name: 'n' } }, 'required', 'context.automation.id'],
    ['non-string thread id', { organization: { id: 'o' }, user: { id: 'u' }, threadId: 7 }, 'invalid', 'context.threadId'],
    ['non-string email', { organization: { id: 'o' }, user: { id: 'u', email: {} } }, 'invalid', 'context.user.email'],
    ['array as organization', { organization: ['o'], user: { id: 'u' } }, 'invalid', 'context.organization'],
  ])('%s -> %s at %s', (_label, context, code, field) => {
    const thrown = (() => {
      try {
        attribution(context as unknown as RunContext);
      } catch (error) {
        return error;
      }
    })();
    expect(thrown).toBeInstanceOf(OutboxError);
    expect(thrown).toMatchObject({ code, field });
  });

  it('accepts an automation id whose persona id is exactly 200 characters', () => {
    expect(attribution({ organization: { id: 'o' }, user: { id: 'u' }, automation: { id: 'a'.repeat(189) } }).distinctId).toHaveLength(200);
  });
});
