/**
 * Runs `task` every `ms` without keeping the process alive; a failure goes to `onError` and the
 * next run still comes. Returns what stops it. For purges, sweeps and polls.
 */
export function every(ms: number, task: () => unknown, onError: (error: unknown) => void): () => void {
  const timer = setInterval(() => {
    Promise.resolve().then(task).catch(onError);
  }, ms);
  timer.unref();
  return () => clearInterval(timer);
}
