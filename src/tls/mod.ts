/**
 * TLS for the orchestrator: a private CA and server certificates made in process.
 * @module
 */
export {
  CA_VALIDITY_DAYS,
  caFingerprintOf,
  certCoversHost,
  CertError,
  certHosts,
  certificateHosts,
  type CertPaths,
  certPaths,
  type CertsReport,
  ensureCertificates,
  type EnsureCertsOptions,
  fingerprint,
  isIpAddress,
  LOOPBACK_NAMES,
  RENEW_BEFORE_DAYS,
  SERVER_VALIDITY_DAYS,
  tlsDirOf,
} from "./certs.ts";
