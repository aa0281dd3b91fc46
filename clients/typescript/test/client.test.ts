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
