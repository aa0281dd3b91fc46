/**
 * Who is signed in: the API key lives in `sessionStorage` (gone with the
 * tab), taken from the sign-in form or from `#key=<api key>` in the URL
 * (a fragment is never sent to the server). The key decides the view:
 * an organization's key its own streams, the admin key the operator view.
 */
import { Code, ConnectError, organizationsService, type organizations } from "./api";

const STORAGE_KEY = "liveproc.apiKey";

export type Identity =
  | { kind: "admin"; key: string }
  | { kind: "organization"; key: string; organization: organizations.Organization };

/** A key passed as `#key=…`: stored, and removed from the address bar. */
export function takeKeyFromFragment(): void {
  const match = /^#key=([^&]+)/.exec(location.hash);
  if (!match) return;
  sessionStorage.setItem(STORAGE_KEY, decodeURIComponent(match[1]));
  history.replaceState(null, "", `${location.pathname}${location.search}#/`);
}

export function storedKey(): string | null {
  return sessionStorage.getItem(STORAGE_KEY);
}

export function signOut(): void {
  sessionStorage.removeItem(STORAGE_KEY);
  location.hash = "#/";
  location.reload();
}

/**
 * Whose key this is: an organization reads its own record; the admin key
 * is refused that (it must name an organization) but may list them.
 * Rejects with a message for the form when the key is not valid.
 */
export async function identify(key: string): Promise<Identity> {
  const service = organizationsService(location.origin, key);
  try {
    const organization = await service.getOrganization({});
    return { kind: "organization", key, organization };
  } catch (error) {
    const code = ConnectError.from(error).code;
    if (code === Code.Unauthenticated) throw new Error("This API key is not valid.");
    if (code !== Code.InvalidArgument) throw error;
  }
  await service.listOrganizations({ pageSize: 1 });
  return { kind: "admin", key };
}

export function remember(identity: Identity): void {
  sessionStorage.setItem(STORAGE_KEY, identity.key);
}
