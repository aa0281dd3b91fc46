// The browser client (src/web: grpc-web with Connect, over fetch) against
// the real server: unary calls, server-streaming calls with real media
// published over SRT, field errors, and CORS for a configured origin.
import { strict as assert } from "node:assert";
import { after, before, test } from "node:test";
import { create } from "@bufbuild/protobuf";

import {
  Code,
  ConnectError,
  api,
  errorReason,
  fieldViolations,
  liveProcessing,
  organizationsService,
  processing,
} from "../src/web";
import { ADMIN_KEY, Server, publishSrt, startServer } from "./server";

const ORIGIN = "http://dashboard.example";
let server: Server;
let baseUrl = "";

before(async () => {
  server = await startServer(["--cors-origin", ORIGIN]);
  baseUrl = `http://${server.grpc}`;
});

after(() => server?.process.kill());

async function organizationKey(liveProcessing: boolean): Promise<string> {
  const admin = organizationsService(baseUrl, ADMIN_KEY);
  const org = await admin.createOrganization({ name: "web", liveProcessing });
  assert.match(org.id, /^org_/);
  return org.apiKey;
}

test("unary and server-streaming calls over grpc-web, with real media", { timeout: 60_000 }, async () => {
  const client = liveProcessing(baseUrl, await organizationKey(true));
  const stream = await client.createStream({
    streamId: "cam",
    processing: create(processing.ProcessingOptionsSchema, {
      thumbnail: { enabled: true, intervalSeconds: 10 },
    }),
  });
  assert.equal(stream.id, "cam");
  const abort = new AbortController();
  const events = client.watchStream({ streamId: "cam" }, { signal: abort.signal });
  const thumbnails = client.subscribeThumbnails({ streamId: "cam" }, { signal: abort.signal });
  const ffmpeg = publishSrt(server, stream.id, stream.ingest!.streamKey);
  try {
    const states: api.StreamState[] = [];
    for await (const event of events) {
      states.push(event.state);
      if (event.state === api.StreamState.LIVE) break;
    }
    assert.ok(states.includes(api.StreamState.LIVE), `states: ${states}`);
    const { value: thumbnail } = await thumbnails[Symbol.asyncIterator]().next();
    assert.equal(thumbnail.width, 640);
    assert.equal(thumbnail.height, 360);
    assert.deepEqual([...thumbnail.data.subarray(0, 2)], [0xff, 0xd8]);
    assert.ok(thumbnail.data.length > 5000);
    const listed = await client.listStreams({});
    assert.deepEqual(listed.streams.map((s) => s.id), ["cam"]);
  } finally {
    abort.abort();
    ffmpeg.kill();
  }
});

test("refusals carry their code, field and reason over grpc-web", async () => {
  const client = liveProcessing(baseUrl, await organizationKey(true));
  await assert.rejects(
    client.createStream({
      streamId: "cam",
      processing: create(processing.ProcessingOptionsSchema, {
        thumbnail: { enabled: true, intervalSeconds: 5 },
      }),
    }),
    (error: unknown) => {
      assert.ok(error instanceof ConnectError);
      assert.equal(error.code, Code.InvalidArgument);
      assert.deepEqual(fieldViolations(error).map((v) => v.field), [
        "processing.thumbnail.interval_seconds",
      ]);
      return true;
    },
  );
  const basic = liveProcessing(baseUrl, await organizationKey(false));
  await assert.rejects(
    basic.createStream({
      streamId: "cam",
      processing: create(processing.ProcessingOptionsSchema, {
        replay: { enabled: true, durationSeconds: 30 },
      }),
    }),
    (error: unknown) => {
      assert.equal(ConnectError.from(error).code, Code.FailedPrecondition);
      assert.equal(errorReason(error), "UPGRADE_NEEDED");
      return true;
    },
  );
  const stranger = liveProcessing(baseUrl, "lp_not_a_key");
  await assert.rejects(stranger.listStreams({}), (error: unknown) => {
    assert.equal(ConnectError.from(error).code, Code.Unauthenticated);
    return true;
  });
});

test("a page of a configured origin may call; another may not", async () => {
  const preflight = (origin: string) =>
    fetch(`${baseUrl}/liveproc.v1.LiveProcessing/ListStreams`, {
      method: "OPTIONS",
      headers: {
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type,x-grpc-web",
      },
    });
  const allowed = await preflight(ORIGIN);
  assert.equal(allowed.headers.get("access-control-allow-origin"), ORIGIN);
  const refused = await preflight("http://elsewhere.example");
  assert.equal(refused.headers.get("access-control-allow-origin"), null);
});
