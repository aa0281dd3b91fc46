export { AdminClient, Client, LiveprocError, tlsCredentials } from "./client";
export type { FieldViolation, QuotaViolation } from "./client";
export * as api from "./gen/liveproc/v1/live_processing";
export * as processing from "./gen/liveproc/v1/processing";
export * as organizations from "./gen/liveproc/v1/organizations";
