export { createSubscribeFeature, type SubscribeFeature } from './feature.js';
export { createSubscriptions, MAX_TEMPLATES_PER_REQUEST, type Subscriptions, type SendInput } from './subscribe.js';
export { checkMessageData, keywordType, KEYWORD_MAX_CHARS } from './keywords.js';
export { keywordsOf, createTemplateList, TEMPLATES_CACHE_MS, type Template, type TemplateList } from './templates.js';
export { subscribeEventOf, type SubscribeEvent, type SubscribeItem } from './events.js';
export { CLIENT_REPORT_CONFIRM_MS, type Grant } from './grants.js';
