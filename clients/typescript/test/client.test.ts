// The TypeScript client against the real liveproc server, with real
// H.264/AAC published by ffmpeg over SRT.
import { strict as assert } from "node:assert";
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import { status } from "@grpc/grpc-js";

import { AdminClient, Client, LiveprocError, api, processing } from "../src";

const ADMIN_KEY = "lpadmin_typescript_client_tests_0123";
const bin = process.env.LIVEPROC_BIN ?? resolve(__dirname, "../../../../target/release/liveproc");
let server: ChildProcess;
let grpcAddr = "";
let srtAddr = "";
let media = "";

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), "liveproc-ts-"));
  media = join(dir, "in.ts");
  execFileSync("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-y",
    "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine",
    "-t", "12", "-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-keyint_min", "30",
    "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mpegts", media,
  ]);
  server = spawn(bin, ["serve", "--listen", "127.0.0.1:0", "--srt-listen", "127.0.0.1:0",
    "--data-dir", join(dir, "data")], {
    env: { ...process.env, LIVEPROC_ADMIN_KEY: ADMIN_KEY, LIVEPROC_LOG: "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: server.stdout! });
  for await (const line of lines) {
    if (line.startsWith("liveproc ready:")) {
      const fields = Object.fromEntries(line.split(" ").slice(2).map((f) => f.split("=")));
      grpcAddr = fields.grpc;
      srtAddr = fields.srt;
      break;
    }
  }
  assert.ok(grpcAddr, "liveproc started");
});

after(() => server?.kill());

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
  const url = `srt://${srtAddr}?streamid=publish:${stream.id}:${stream.ingest!.streamKey}&mode=caller`;
  const ffmpeg = spawn("ffmpeg", ["-hide_banner", "-loglevel", "error", "-re", "-i", media,
    "-c", "copy", "-f", "mpegts", url], { stdio: "ignore" });
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
