/**
 * `posthog-outbox/console`: the operator console, a web page over the ops library (`posthog-outbox/ops`).
 * `createConsoleHandler(options)` returns a Node request handler to mount under an application's own admin
 * routes; `startConsole(options)` serves it on a port of its own, as `posthog-outbox console` does.
 */
export type { Overview } from './api.ts';
export { type ConsoleHandler, createConsoleHandler } from './handler.ts';
export type { DeliveryHistory, DeliveryMinute } from './sampler.ts';
export { type ConsoleServer, type ConsoleServerOptions, startConsole } from './server.ts';
export { CONSOLE_SETTINGS } from './settings-schema.ts';
export type { ConsoleLogger, ConsoleOptions } from './settings.ts';
