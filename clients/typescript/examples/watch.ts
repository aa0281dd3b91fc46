// Prints a stream's events and saves each new thumbnail.
//   node dist/examples/watch.js 127.0.0.1:50051 <api-key> <stream-id> [out-dir]
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { Client, api } from "../src";

async function main(): Promise<void> {
  const [target, apiKey, streamId, out = "thumbnails"] = process.argv.slice(2);
  if (!target || !apiKey || !streamId) {
    console.error("usage: watch <host:port> <api-key> <stream-id> [out-dir]");
    process.exit(2);
  }
  mkdirSync(out, { recursive: true });
  const client = new Client(target, apiKey);
  const saving = (async () => {
    for await (const t of client.subscribeThumbnails(streamId)) {
      const path = join(out, `${streamId}-${String(t.sequence).padStart(6, "0")}.jpg`);
      writeFileSync(path, t.data);
      console.log(`thumbnail ${path} ${t.width}x${t.height}`);
    }
  })();
  for await (const e of client.watchStream(streamId)) {
    console.log(`event ${e.sequence} ${api.StreamState[e.state]} ${e.message}`);
  }
  await saving;
}

main().catch((error) => {
  console.error(String(error));
  process.exit(1);
});
