/**
 * `npm run soak` (SOAK=1): the long scenarios. A test file that imports `SOAK` either runs a scenario bigger
 * and longer under it (`SOAK ? 100_000 : 20_000`) or has scenarios that only the soak run takes
 * (`it.runIf(SOAK)`), each next to the short version that `npm test` keeps. vitest.config.ts gives the soak
 * run exactly the files that import this module.
 */
export const SOAK = process.env.SOAK === '1';
