
export { runChecks, checkOne, CHECK_TIMEOUT_MS, EXPIRY_WARN_DAYS } from './checks.js';
export { formatReport, WIDTH } from './format.js';
export { checkUrl, consoleLine } from './url-rules.js';
export type { CheckReport, UrlReport, CheckResult, CheckType, Verdict, CheckId } from './types.js';
export { configuredUrls, registerCheckRoutes } from './routes.js';
export { createDoctorFeature, DOMAIN_CHECK_DELAY_MS } from './feature.js';
