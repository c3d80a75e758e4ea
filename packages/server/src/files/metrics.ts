/**
 * The files feature's metric families (docs/metrics.md): bytes received and sent by storage kind,
 * and uploads or downloads refused, by error code. The byte counters are bound once; a refusal's
 * child is bound the first time its code is seen (the codes come from the fixed registry, so the
 * label stays small).
 */
import { AppError, NO_METRICS, type Metrics } from '../core/index.js';

export interface FilesMetrics {
  /** Bytes of an upload or part that were stored. */
  bytesIn(n: number): void;
  /** Bytes of a download that were sent. */
  bytesOut(n: number): void;
  /** Counts a refusal when `error` is an AppError (anything else is a bug, counted elsewhere as a 500). */
  refused(error: unknown): void;
}

export function filesMetrics(metrics: Metrics = NO_METRICS, storage: 'local' | 's3' = 'local'): FilesMetrics {
  const bytes = metrics.counter('minigate_files_bytes_total', 'File bytes by direction (in: uploads stored, out: downloads sent) and storage kind.', ['direction', 'storage']);
  const refusals = metrics.counter('minigate_files_refusals_total', 'Uploads and downloads refused, by error code.', ['reason']);
  const bytesIn = bytes.bind({ direction: 'in', storage });
  const bytesOut = bytes.bind({ direction: 'out', storage });
  const byCode = new Map<string, { inc(): void }>();
  return {
    bytesIn: (n) => bytesIn.inc(n),
    bytesOut: (n) => bytesOut.inc(n),
    refused(error) {
      if (!(error instanceof AppError)) return;
      let child = byCode.get(error.code);
      if (!child) byCode.set(error.code, (child = refusals.bind({ reason: error.code })));
      child.inc();
    },
  };
}
