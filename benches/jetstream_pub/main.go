// Durable publish throughput against JetStream, the peer of benches/benches/stream.rs's
// `stream_db_publish`: P publisher goroutines, each with its own connection, each calling
// js.Publish (which returns once the server's PubAck arrives), 16-byte payloads, a file-storage
// stream BENCH on bench.> keeping at most 100,000 messages. Prints one line per publisher count:
// "jetstream publishers=P msgs=N secs=S rate=R".
//
// Built in GOPATH mode from Debian's golang-github-nats-io-go-nats-dev (nats.go 1.22):
//   GOPATH=/usr/share/gocode GO111MODULE=off go run benches/jetstream_pub/main.go -url nats://127.0.0.1:PORT
package main

import (
	"flag"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

func main() {
	url := flag.String("url", nats.DefaultURL, "server")
	secs := flag.Float64("secs", 5, "seconds per publisher count")
	flag.Parse()
	nc, err := nats.Connect(*url)
	if err != nil {
		panic(err)
	}
	js, err := nc.JetStream()
	if err != nil {
		panic(err)
	}
	_ = js.DeleteStream("BENCH")
	if _, err := js.AddStream(&nats.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"}, Storage: nats.FileStorage, MaxMsgs: 100000}); err != nil {
		panic(err)
	}
	payload := make([]byte, 16)
	for _, p := range []int{1, 4} {
		var wg sync.WaitGroup
		counts := make([]int, p)
		deadline := time.Now().Add(time.Duration(*secs * float64(time.Second)))
		start := time.Now()
		for t := 0; t < p; t++ {
			wg.Add(1)
			go func(t int) {
				defer wg.Done()
				c, err := nats.Connect(*url)
				if err != nil {
					panic(err)
				}
				defer c.Close()
				j, _ := c.JetStream()
				subj := fmt.Sprintf("bench.p%d", t)
				for time.Now().Before(deadline) {
					if _, err := j.Publish(subj, payload); err != nil {
						panic(err)
					}
					counts[t]++
				}
			}(t)
		}
		wg.Wait()
		el := time.Since(start).Seconds()
		n := 0
		for _, c := range counts {
			n += c
		}
		fmt.Printf("jetstream publishers=%d msgs=%d secs=%.2f rate=%.1f\n", p, n, el, float64(n)/el)
	}
	nc.Close()
}
