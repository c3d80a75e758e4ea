/** What `minigate check` reports (the `--json` shape, version 1; docs/check.md). */

export type CheckType = 'request' | 'socket' | 'upload' | 'download';
export type Verdict = 'pass' | 'warn' | 'fail' | 'info' | 'skip';

export const CHECK_IDS = ['url', 'dns', 'tcp', 'tls-versions', 'chain', 'hostname', 'validity', 'ats', 'trust', 'http', 'console'] as const;
export type CheckId = (typeof CHECK_IDS)[number];

export interface CheckResult {
  id: CheckId;
  title: string;
  verdict: Verdict;
  /** What was found, one line. */
  detail: string;
  /** For warn and fail: what to do, one line. */
  fix?: string;
}

export interface UrlReport {
  url: string;
  type: CheckType;
  /** The worst verdict of its checks (info and skip count as pass). */
  verdict: 'pass' | 'warn' | 'fail';
  /** A check could not reach the server (DNS or TCP): exit code 2 rather than 1. */
  unreachable: boolean;
  checks: CheckResult[];
}

export interface CheckReport {
  version: 1;
  results: UrlReport[];
  /** 0 all pass (warnings allowed), 1 a check failed, 2 a server could not be reached. */
  exitCode: 0 | 1 | 2;
}

export const TITLES: Record<CheckId, string> = {
  url: 'URL rules',
  dns: 'DNS',
  tcp: 'TCP connect',
  'tls-versions': 'TLS versions',
  chain: 'Certificate chain',
  hostname: 'Hostname',
  validity: 'Validity',
  ats: 'iOS ATS',
  trust: 'Trusted root',
  http: 'HTTP',
  console: 'Console (offline)',
};
