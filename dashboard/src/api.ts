/**
 * The API as the dashboard uses it: the browser client of
 * `clients/typescript` (grpc-web over fetch, same origin), signed media
 * URLs, and the server's dashboard settings.
 */
import { ConnectError, liveProcessing } from "../../clients/typescript/src/web";

export {
  Code,
  ConnectError,
  api,
  create,
  errorReason,
  fieldViolations,
  liveProcessing,
  organizations,
  organizationsService,
  processing,
  timestampDate,
  webhooks,
  webhooksService,
} from "../../clients/typescript/src/web";

export type LiveProcessingClient = ReturnType<typeof liveProcessing>;

/** Settings the server gives the dashboard (`GET /dashboard/config.json`). */
export interface DashboardConfig {
  /** Who to ask for the live processing package (`--operator-contact`). */
  operatorContact: string;
}

export async function dashboardConfig(): Promise<DashboardConfig> {
  const response = await fetch("/dashboard/config.json");
  return response.ok ? response.json() : { operatorContact: "" };
}

/** A URL of `path` that works without headers (`<img>`, `<video>`, hls.js). */
export async function signed(client: LiveProcessingClient, path: string, ttlSeconds = 3600): Promise<string> {
  const { url } = await client.signUrl({ path, ttlSeconds });
  // The server's public URL may differ from where this page was loaded.
  const parsed = new URL(url);
  return `${parsed.pathname}${parsed.search}`;
}

/** The message of an error, for a person. */
export function describe(error: unknown): string {
  if (error instanceof ConnectError) return error.rawMessage;
  return error instanceof Error ? error.message : String(error);
}
