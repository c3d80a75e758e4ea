export { createPayFeature, type PayFeature, type PayFeatureDeps } from './feature.js';
export { payConfigIssues } from './merchants.js';
export { paymentParams, openResource, authorization, PROBE_PREFIX, SIGNATURE_TYPE } from './crypto.js';
