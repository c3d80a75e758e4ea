/** The feature contract every part the root starts follows, and the stack that starts and closes them (docs/design.md). */
export { createFeatureStack, StartError, type Feature, type FeatureStack, type SharedDeps } from './feature.js';
