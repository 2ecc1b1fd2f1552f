/**
 * The one size grammar and formatter, for every component. It lives in
 * src/sdk/bytes.ts because the TypeScript SDK is served by URL from its own
 * folder and may import nothing outside it (tests/sdk_e2e_test.ts serves only
 * that folder); everything else imports it from here.
 * @module
 */
export {
  BYTES_GRAMMAR,
  formatBytes,
  type ParseBytesOptions,
  parseBytesText,
} from "../sdk/bytes.ts";
