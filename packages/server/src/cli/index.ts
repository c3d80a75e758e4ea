/**
 * The `minigate` command line. bin/minigate.js runs main.ts, which loads one command file per
 * command when it is asked for; this face names what a caller of the CLI can rely on: its exit codes.
 */
export { EXIT_FAILURE, EXIT_USAGE, UsageError } from './errors.js';
