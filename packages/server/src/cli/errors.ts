/** Exit codes: 0 fine, 1 the config or the start failed, 2 usage. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A mistake in how the command was called (exit 2). */
export class UsageError extends Error {}
