// The TypeScript client against the real liveproc server, with real
// H.264/AAC published by ffmpeg over SRT.
import { strict as assert } from "node:assert";
import { after, before, test } from "node:test";
import { status } from "@grpc/grpc-js";

import { AdminClient, Client, LiveprocError, api, processing } from "../src";
import { ADMIN_KEY, Server, publishSrt, startServer } from "./server";

let server: Server;
let grpcAddr = "";

before(async () => {
  server = await startServer();
  grpcAddr = server.grpc;
});

after(() => server?.process.kill());

async function organizationKey(liveProcessing = true): Promise<string> {
  const admin = new AdminClient(grpcAddr, ADMIN_KEY);
  try {
    return (await admin.createOrganization("ts", liveProcessing)).apiKey;
  } finally {
    admin.close();
  }
}

test("stream events and a thumbnail from real media", { timeout: 60_000 }, async () => {
  const client = new Client(grpcAddr, await organizationKey());
  const stream = await client.createStream({
    streamId: "cam",
    processing: processing.ProcessingOptions.fromPartial({
      thumbnail: { enabled: true, intervalSeconds: 10 },
    }),
  });
  const events = client.watchStream("cam");
  const thumbnails = client.subscribeThumbnails("cam");
  const ffmpeg = publishSrt(server, stream.id, stream.ingest!.streamKey);
  try {
    for await (const event of events) {
      if (event.state === api.StreamState.LIVE) break;
    }
    const { value: thumbnail } = await thumbnails.next();
    assert.equal(thumbnail.width, 640);
    assert.equal(thumbnail.height, 360);
    assert.equal(thumbnail.format, processing.ImageFormat.JPEG);
    assert.ok(thumbnail.data.length > 5000);
    assert.deepEqual([...thumbnail.data.subarray(0, 2)], [0xff, 0xd8]);
  } finally {
    ffmpeg.kill();
    client.close();
  }
});

test("an out-of-range option raises LiveprocError naming the field", async () => {
  const client = new Client(grpcAddr, await organizationKey());
  await assert.rejects(
    client.createStream({
      streamId: "cam",
      processing: processing.ProcessingOptions.fromPartial({
        thumbnail: { enabled: true, intervalSeconds: 3601 },
      }),
    }),
    (error: unknown) => {
      assert.ok(error instanceof LiveprocError);
      assert.equal(error.code, status.INVALID_ARGUMENT);
      assert.deepEqual(
        error.fieldViolations.map((v) => v.field),
        ["processing.thumbnail.interval_seconds"],
      );
      return true;
    },
  );
  client.close();
});

test("a package not enabled raises UPGRADE_NEEDED", async () => {
  const client = new Client(grpcAddr, await organizationKey(false));
  await assert.rejects(
    client.createStream({
      streamId: "cam",
      processing: processing.ProcessingOptions.fromPartial({
        replay: { enabled: true, durationSeconds: 30 },
      }),
    }),
    (error: unknown) => {
      assert.ok(error instanceof LiveprocError);
      assert.equal(error.code, status.FAILED_PRECONDITION);
      assert.equal(error.reason, "UPGRADE_NEEDED");
      return true;
    },
  );
  client.close();
});

test("a quota reached raises RESOURCE_EXHAUSTED with its QuotaFailure", async () => {
  const admin = new AdminClient(grpcAddr, ADMIN_KEY);
  const org = await admin.createOrganization("quota", true);
  await admin.setQuotas(org.id, { streams: 1 });
  const client = new Client(grpcAddr, org.apiKey);
  await client.createStream({ streamId: "cam" });
  await assert.rejects(client.createStream({ streamId: "cam2" }), (error: unknown) => {
    assert.ok(error instanceof LiveprocError);
    assert.equal(error.code, status.RESOURCE_EXHAUSTED);
    assert.equal(error.reason, "QUOTA_EXCEEDED");
    assert.deepEqual(
      error.quotaViolations.map((v) => v.subject),
      [`organizations/${org.id}/quotas/streams`],
    );
    return true;
  });
  const usage = await client.getUsage();
  assert.equal(usage.usage?.streams, 1);
  await client.rotateStreamKey("cam");
  const actions: string[] = [];
  for await (const event of client.listAuditEvents()) actions.push(event.action);
  assert.deepEqual(actions, ["stream.key.rotate", "stream.create", "organization.quotas.set", "organization.create"]);
  client.close();
  admin.close();
});
