/**
 * Orchestrator configuration: YAML file + environment, validated once.
 * @module
 */
export {
  CONFIG_KEYS,
  type Config,
  ConfigError,
  type ConfigSources,
  DEFAULT_CONFIG,
  loadConfig,
  parseConfig,
} from "./config.ts";
