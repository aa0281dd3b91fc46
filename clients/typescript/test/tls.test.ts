// The TypeScript client reaches a server over TLS with the CA file that
// signed its certificate (made by scripts/test-certs.sh); without it the
// certificate is refused.
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { credentials, status } from "@grpc/grpc-js";

import { AdminClient, Client, LiveprocError, tlsCredentials } from "../src";
import { ADMIN_KEY, Server, startServer } from "./server";

let server: Server;
const certs = mkdtempSync(join(tmpdir(), "liveproc-ts-certs-"));

before(async () => {
  execFileSync("bash", [resolve(__dirname, "../../../../scripts/test-certs.sh"), certs]);
  server = await startServer(["--tls-cert", join(certs, "server.crt"), "--tls-key", join(certs, "server.key")]);
});

after(() => server?.process.kill());

test("a TLS server is reached with a CA file", async () => {
  const creds = tlsCredentials(join(certs, "ca.pem"));
  const admin = new AdminClient(server.grpc, ADMIN_KEY, creds);
  const org = await admin.createOrganization("tls", true);
  admin.close();
  const client = new Client(server.grpc, org.apiKey, tlsCredentials(join(certs, "ca.pem")));
  const stream = await client.createStream({ streamId: "cam" });
  assert.equal(stream.id, "cam");
  client.close();

  // The system's roots do not trust the test CA.
  const untrusted = new AdminClient(server.grpc, ADMIN_KEY, credentials.createSsl());
  await assert.rejects(untrusted.createOrganization("untrusted"), (error: unknown) => {
    assert.ok(error instanceof LiveprocError);
    assert.equal(error.code, status.UNAVAILABLE);
    return true;
  });
  untrusted.close();
});
