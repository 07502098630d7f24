// docs/attribution.md: "Error categories" (every pattern of every category, order, case) and error_message.
import { describe, expect, it } from 'vitest';
import { errorCategory, errorMessage } from '../../src/index.ts';

const abortError = () => {
  const controller = new AbortController();
  controller.abort();
  return controller.signal.reason as unknown; // DOMException named AbortError
};

class AbortErrorLike extends Error {
  override name = 'AbortError';
}

describe('error_category', () => {
  it.each([
    // 1. aborted: the error is an AbortError, whatever its message says
    ['DOMException AbortError', abortError(), 'aborted'],
    ['an Error named AbortError mentioning a rate limit', new AbortErrorLike('rate limit hit'), 'aborted'],
    // 2. insufficient_funds
    ['insufficient', new Error('Insufficient balance on account'), 'insufficient_funds'],
    ['no credits', new Error('You have no credits left'), 'insufficient_funds'],
    ['out of credits', new Error('OUT OF CREDITS'), 'insufficient_funds'],
    ['balance', new Error('balance too low'), 'insufficient_funds'],
    ['payment', new Error('Payment required'), 'insufficient_funds'],
    ['quota exceeded', new Error('quota exceeded for project'), 'insufficient_funds'],
    ['key limit', new Error('API key limit reached'), 'insufficient_funds'],
    ['key_limit', new Error('error: key_limit'), 'insufficient_funds'],
    ['key-limit', new Error('key-limit exceeded'), 'insufficient_funds'],
    ['keylimit', new Error('KeyLimit'), 'insufficient_funds'],
    ['total limit', new Error('total limit exceeded'), 'insufficient_funds'],
    ['total_limit', new Error('total_limit'), 'insufficient_funds'],
    ['total-limit', new Error('Total-Limit reached'), 'insufficient_funds'],
    ['totallimit', new Error('totallimit'), 'insufficient_funds'],
    ['402', new Error('HTTP 402 from provider'), 'insufficient_funds'],
    ['insufficient beats rate limit (order)', new Error('429 rate limit: insufficient quota'), 'insufficient_funds'],
    // 3. rate_limit
    ['rate limit', new Error('Rate limit reached'), 'rate_limit'],
    ['rate_limit', new Error('rate_limit_error'), 'rate_limit'],
    ['too many requests', new Error('Too Many Requests'), 'rate_limit'],
    ['429', new Error('status 429'), 'rate_limit'],
    ['rate limit beats timeout (order)', new Error('rate limit: request timed out'), 'rate_limit'],
    // 4. timeout
    ['timeout', new Error('Request timeout'), 'timeout'],
    ['timed out', new Error('The operation timed out'), 'timeout'],
    ['deadline', new Error('DEADLINE_EXCEEDED'), 'timeout'],
    ['timeout beats tool (order)', new Error('tool call timed out'), 'timeout'],
    // 5. auth
    ['unauthorized', new Error('Unauthorized'), 'auth'],
    ['unauthorised', new Error('unauthorised client'), 'auth'],
    ['forbidden', new Error('403 Forbidden'), 'auth'],
    ['401', new Error('got 401'), 'auth'],
    ['403', new Error('got 403'), 'auth'],
    ['invalid key', new Error('invalid key'), 'auth'],
    ['invalid api key', new Error('Invalid API key provided'), 'auth'],
    ['invalid_api_key', new Error('invalid_api_key'), 'auth'],
    ['invalid token', new Error('Invalid token'), 'auth'],
    ['auth beats model (order)', new Error('anthropic: unauthorized'), 'auth'],
    // 6. tool_error
    ['tool', new Error('Tool "search" failed'), 'tool_error'],
    ['mcp', new Error('MCP server error'), 'tool_error'],
    ['connection', new Error('connection reset by peer'), 'tool_error'],
    ['tool beats model (order)', new Error('model called an unknown tool'), 'tool_error'],
    // 7. model_error
    ['model', new Error('model overloaded'), 'model_error'],
    ['provider', new Error('Provider returned error'), 'model_error'],
    ['anthropic', new Error('Anthropic API error'), 'model_error'],
    ['openai', new Error('OpenAI: bad response'), 'model_error'],
    ['gemini', new Error('gemini failed'), 'model_error'],
    ['claude', new Error('Claude is overloaded'), 'model_error'],
    // 8. unknown
    ['nothing matches', new Error('something broke'), 'unknown'],
    ['a number inside a longer number is not a status', new Error('used 14025 units'), 'unknown'],
    ['a thrown string is matched too', 'Rate limit', 'rate_limit'],
    ['a thrown object with a message', { message: 'deadline passed' }, 'timeout'],
    ['undefined', undefined, 'unknown'],
    ['null', null, 'unknown'],
  ])('%s -> %s', (_label, error, expected) => {
    expect(errorCategory(error)).toBe(expected);
  });
});

describe('error_message', () => {
  it('is the error message', () => {
    expect(errorMessage(new Error('model overloaded'))).toBe('model overloaded');
    expect(errorMessage('plain string')).toBe('plain string');
    expect(errorMessage({ code: 7 })).toBe('{"code":7}');
    expect(errorMessage(undefined)).toBe('undefined');
  });

  it('is cut to 1,000 characters', () => {
    expect(errorMessage(new Error('e'.repeat(5000)))).toBe('e'.repeat(1000));
    expect(errorMessage(new Error('e'.repeat(1000)))).toHaveLength(1000);
  });

  it('never leaves half a surrogate pair at the cut, nor a lone surrogate anywhere', () => {
    const cut = errorMessage(new Error('a'.repeat(999) + '😀tail'));
    expect(cut).toBe('a'.repeat(999));
    expect(errorMessage(new Error('bad \ud800 char'))).toBe('bad \ufffd char');
  });

  it.each([
    ['bearer token', 'request failed: Authorization: Bearer eyJhbGciOi.J9xYz-_abc', 'eyJhbGciOi', 'Bearer [redacted]'],
    ['lower-case bearer', 'bearer abcdef123456', 'abcdef123456', 'bearer [redacted]'],
    ['OpenAI key', 'Incorrect API key provided: sk-proj-AbCdEf0123456789xyz', 'sk-proj-AbCdEf', '[redacted]'],
    ['Anthropic key', 'key sk-ant-api03-abcdefghijklmnop rejected', 'sk-ant-api03', '[redacted]'],
    ['Stripe-style key', 'sk_live_51Habcdefghijkl failed', 'sk_live_51H', '[redacted]'],
    ['api_key query parameter', 'GET https://x.test/v1?api_key=s3cr3tvalue&q=1 failed', 's3cr3tvalue', 'api_key=[redacted]&q=1'],
    ['JSON token field', '{"token": "abc123def"}', 'abc123def', '"token": "[redacted]"'],
    ['password=', 'connect failed password=hunter2 host=db', 'hunter2', 'password=[redacted] host=db'],
  ])('redacts a %s', (_label, message, secret, shown) => {
    const out = errorMessage(new Error(message));
    expect(out).not.toContain(secret);
    expect(out).toContain(shown);
  });

  it('redacts before cutting, so a secret across the 1,000th character never shows in part', () => {
    const message = 'x'.repeat(990) + ' sk-abcdefghijklmnopqrstuvwxyz';
    const out = errorMessage(new Error(message));
    expect(out).toBe('x'.repeat(990) + ' [redacted]'.slice(0, 10));
    expect(out).not.toContain('sk-abc');
  });

  it('leaves ordinary text alone', () => {
    const text = 'tool "skim-docs" failed after 3 tries; the token budget was fine';
    expect(errorMessage(new Error(text))).toBe(text);
  });
});
