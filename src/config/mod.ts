/**
 * Orchestrator configuration: YAML file + environment, validated once.
 * @module
 */
export {
  type Config,
  CONFIG_KEYS,
  ConfigError,
  type ConfigSources,
  DEFAULT_CONFIG,
  loadConfig,
  parseConfig,
} from "./config.ts";
