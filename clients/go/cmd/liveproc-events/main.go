// Command liveproc-events prints the events of a liveproc stream and saves
// each new thumbnail to a folder.
//
//	liveproc-events -server 127.0.0.1:50051 -api-key lp_... -stream demo -out thumbnails
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"

	liveprocv1 "github.com/liveproc/liveproc/clients/go/liveprocv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

func main() {
	server := flag.String("server", "127.0.0.1:50051", "liveproc gRPC address")
	apiKey := flag.String("api-key", os.Getenv("LIVEPROC_API_KEY"), "organization API key")
	stream := flag.String("stream", "", "stream id")
	out := flag.String("out", "thumbnails", "folder for thumbnails")
	flag.Parse()
	if *stream == "" || *apiKey == "" {
		log.Fatal("-stream and -api-key are required")
	}

	conn, err := grpc.NewClient(*server, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := liveprocv1.NewLiveProcessingClient(conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+*apiKey)

	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	go func() {
		thumbs, err := client.SubscribeThumbnails(ctx, &liveprocv1.SubscribeThumbnailsRequest{StreamId: *stream, SendLatest: true})
		if err != nil {
			log.Fatal(err)
		}
		for {
			t, err := thumbs.Recv()
			if err != nil {
				log.Fatal(err)
			}
			path := filepath.Join(*out, fmt.Sprintf("%s-%06d.jpg", *stream, t.Sequence))
			if err := os.WriteFile(path, t.Data, 0o644); err != nil {
				log.Fatal(err)
			}
			fmt.Printf("thumbnail %s %dx%d\n", path, t.Width, t.Height)
		}
	}()

	events, err := client.WatchStream(ctx, &liveprocv1.WatchStreamRequest{StreamId: *stream})
	if err != nil {
		log.Fatal(err)
	}
	for {
		e, err := events.Recv()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("event %d %s %s %s\n", e.Sequence, e.Kind, e.State, e.Message)
	}
}
