// The real liveproc server for the tests, on loopback ports of its own,
// and the media they publish (H.264/AAC MPEG-TS made by ffmpeg).
import { strict as assert } from "node:assert";
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

export const ADMIN_KEY = "lpadmin_typescript_client_tests_0123";
const bin = process.env.LIVEPROC_BIN ?? resolve(__dirname, "../../../../target/release/liveproc");

export interface Server {
  process: ChildProcess;
  /** host:port of gRPC (and grpc-web, and HTTP). */
  grpc: string;
  /** host:port of SRT ingest. */
  srt: string;
  /** 12 s of 640x360 30 fps H.264 with AAC, as MPEG-TS. */
  media: string;
}

/** Starts the server (with `flags`) and waits for it to be ready. */
export async function startServer(flags: string[] = []): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), "liveproc-ts-"));
  const media = join(dir, "in.ts");
  execFileSync("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-y",
    "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine",
    "-t", "12", "-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-keyint_min", "30",
    "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mpegts", media,
  ]);
  const server = spawn(bin, ["serve", "--listen", "127.0.0.1:0", "--srt-listen", "127.0.0.1:0",
    "--data-dir", join(dir, "data"), ...flags], {
    env: { ...process.env, LIVEPROC_ADMIN_KEY: ADMIN_KEY, LIVEPROC_LOG: "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: server.stdout! });
  for await (const line of lines) {
    if (line.startsWith("liveproc ready:")) {
      const fields = Object.fromEntries(line.split(" ").slice(2).map((f) => f.split("=")));
      return { process: server, grpc: fields.grpc, srt: fields.srt, media };
    }
  }
  assert.fail("liveproc did not start");
}

/** Publishes the test media to `streamId` over SRT in real time, as an encoder would. */
export function publishSrt(server: Server, streamId: string, streamKey: string): ChildProcess {
  const url = `srt://${server.srt}?streamid=publish:${streamId}:${streamKey}&mode=caller`;
  return spawn("ffmpeg", ["-hide_banner", "-loglevel", "error", "-re", "-i", server.media,
    "-c", "copy", "-f", "mpegts", url], { stdio: "ignore" });
}
