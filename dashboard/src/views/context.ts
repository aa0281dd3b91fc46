/** What every view gets: who is signed in, their client, the server's settings. */
import type { DashboardConfig, LiveProcessingClient } from "../api";
import type { Identity } from "../session";

export interface Context {
  identity: Identity;
  /** The LiveProcessing service with the signed-in key. */
  client: LiveProcessingClient;
  config: DashboardConfig;
}

/** A view on screen; `dispose` stops its streams and timers when the page changes. */
export interface View {
  element: HTMLElement;
  dispose?: () => void;
}
