// Tests of the generated Go client against the real liveproc server, with
// real H.264/AAC published by ffmpeg over SRT.
package client_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	liveprocv1 "github.com/liveproc/liveproc/clients/go/liveprocv1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const adminKey = "lpadmin_go_client_tests_0123456789"

type server struct {
	grpc, srt string
	cmd       *exec.Cmd
}

func startServer(t *testing.T, flags ...string) *server {
	t.Helper()
	bin := os.Getenv("LIVEPROC_BIN")
	if bin == "" {
		bin = "../../target/release/liveproc"
	}
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--srt-listen", "127.0.0.1:0",
		"--data-dir", filepath.Join(t.TempDir(), "data")}, flags...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "LIVEPROC_ADMIN_KEY="+adminKey, "LIVEPROC_LOG=warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		line := lines.Text()
		if !strings.HasPrefix(line, "liveproc ready:") {
			continue
		}
		s := &server{cmd: cmd}
		for _, f := range strings.Fields(line)[2:] {
			kv := strings.SplitN(f, "=", 2)
			if kv[0] == "grpc" {
				s.grpc = kv[1]
			} else if kv[0] == "srt" {
				s.srt = kv[1]
			}
		}
		go func() {
			for lines.Scan() {
			}
		}()
		return s
	}
	t.Fatal("liveproc exited before it was ready")
	return nil
}

func authed(ctx context.Context, key string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
}

func clients(t *testing.T, s *server) (liveprocv1.OrganizationsClient, liveprocv1.LiveProcessingClient) {
	conn, err := grpc.NewClient(s.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return liveprocv1.NewOrganizationsClient(conn), liveprocv1.NewLiveProcessingClient(conn)
}

func makeMedia(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "in.ts")
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine",
		"-t", "12", "-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-keyint_min", "30",
		"-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mpegts", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v %s", err, out)
	}
	return path
}

func TestEventsAndThumbnailFromRealMedia(t *testing.T) {
	s := startServer(t)
	orgs, live := clients(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	org, err := orgs.CreateOrganization(authed(ctx, adminKey),
		&liveprocv1.CreateOrganizationRequest{Name: "go", LiveProcessing: true})
	if err != nil {
		t.Fatal(err)
	}
	octx := authed(ctx, org.ApiKey)
	stream, err := live.CreateStream(octx, &liveprocv1.CreateStreamRequest{
		StreamId: "cam",
		Processing: &liveprocv1.ProcessingOptions{
			Thumbnail: &liveprocv1.ThumbnailOptions{Enabled: true, IntervalSeconds: 10},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	events, err := live.WatchStream(octx, &liveprocv1.WatchStreamRequest{StreamId: "cam"})
	if err != nil {
		t.Fatal(err)
	}
	thumbs, err := live.SubscribeThumbnails(octx, &liveprocv1.SubscribeThumbnailsRequest{StreamId: "cam"})
	if err != nil {
		t.Fatal(err)
	}
	url := "srt://" + s.srt + "?streamid=publish:" + stream.Id + ":" + stream.Ingest.StreamKey + "&mode=caller"
	ffmpeg := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i", makeMedia(t),
		"-c", "copy", "-f", "mpegts", url)
	if err := ffmpeg.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ffmpeg.Process.Kill(); _ = ffmpeg.Wait() }()

	for {
		e, err := events.Recv()
		if err != nil {
			t.Fatalf("waiting for LIVE: %v", err)
		}
		if e.State == liveprocv1.StreamState_LIVE {
			break
		}
	}
	thumb, err := thumbs.Recv()
	if err != nil {
		t.Fatalf("waiting for a thumbnail: %v", err)
	}
	if thumb.Width != 640 || thumb.Height != 360 || thumb.Format != liveprocv1.ImageFormat_JPEG {
		t.Fatalf("thumbnail %dx%d %v", thumb.Width, thumb.Height, thumb.Format)
	}
	if len(thumb.Data) < 5000 || thumb.Data[0] != 0xFF || thumb.Data[1] != 0xD8 {
		t.Fatalf("not a JPEG: %d bytes", len(thumb.Data))
	}
}

func TestOutOfRangeOptionCarriesTheField(t *testing.T) {
	s := startServer(t)
	orgs, live := clients(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	org, err := orgs.CreateOrganization(authed(ctx, adminKey),
		&liveprocv1.CreateOrganizationRequest{Name: "go", LiveProcessing: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = live.CreateStream(authed(ctx, org.ApiKey), &liveprocv1.CreateStreamRequest{
		StreamId: "cam",
		Processing: &liveprocv1.ProcessingOptions{
			MotionClip: &liveprocv1.MotionClipOptions{Enabled: true, DurationSeconds: 61, IntervalSeconds: 10},
		},
	})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("got %v, want InvalidArgument", err)
	}
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.FieldViolations {
				fields = append(fields, v.Field)
			}
		}
	}
	if len(fields) != 1 || fields[0] != "processing.motion_clip.duration_seconds" {
		t.Fatalf("field violations %v", fields)
	}
}

// A server over TLS is reached with its CA file (scripts/test-certs.sh
// makes the CA and the server's certificate); without it the certificate
// is refused.
func TestTLSServerWithCAFile(t *testing.T) {
	certs := t.TempDir()
	if out, err := exec.Command("bash", "../../scripts/test-certs.sh", certs).CombinedOutput(); err != nil {
		t.Fatalf("test-certs.sh: %v %s", err, out)
	}
	s := startServer(t, "--tls-cert", filepath.Join(certs, "server.crt"),
		"--tls-key", filepath.Join(certs, "server.key"))
	creds, err := credentials.NewClientTLSFromFile(filepath.Join(certs, "ca.pem"), "")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(s.grpc, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	org, err := liveprocv1.NewOrganizationsClient(conn).CreateOrganization(authed(ctx, adminKey),
		&liveprocv1.CreateOrganizationRequest{Name: "tls", LiveProcessing: true})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := liveprocv1.NewLiveProcessingClient(conn).CreateStream(authed(ctx, org.ApiKey),
		&liveprocv1.CreateStreamRequest{StreamId: "cam"})
	if err != nil || stream.Id != "cam" {
		t.Fatalf("CreateStream over TLS: %v %v", stream, err)
	}

	// The system's roots do not trust the test CA.
	untrusted, err := grpc.NewClient(s.grpc, grpc.WithTransportCredentials(credentials.NewTLS(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer untrusted.Close()
	_, err = liveprocv1.NewOrganizationsClient(untrusted).CreateOrganization(authed(ctx, adminKey),
		&liveprocv1.CreateOrganizationRequest{Name: "untrusted"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("an untrusted certificate was accepted: %v", err)
	}
}
