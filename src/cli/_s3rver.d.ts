/** The part of s3rver's API that `cumulus s3` uses (the package has no declarations). */
export default class S3rver {
  constructor(options: {
    port: number;
    address: string;
    directory: string;
    silent?: boolean;
    configureBuckets?: { name: string }[];
  });
  /** Starts serving; resolves with the bound address. */
  run(): Promise<{ address: string; port: number }>;
  /** Stops serving. */
  close(): Promise<void>;
}
