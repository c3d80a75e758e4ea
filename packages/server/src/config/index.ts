export { loadConfig, formatProblems, ConfigError, envKeyPath, ENV_PREFIX } from './load.js';
export type { Config, ConfigProblem, LoadConfigOptions } from './load.js';
export type { AppConfig, ConfigInput } from './schema.js';
export { configJsonSchema } from './json-schema.js';
export { parseDuration, formatDuration } from './duration.js';
export { parseListenAddress, formatHostPort, type ListenAddress } from './listen.js';
export { configReference } from './reference.js';
export type { ChannelConfig, RoomRule } from './schema-channel.js';
export type { FilesConfig } from './schema-files.js';
