package harness

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mqtt-authproxy/mqtt-authproxy/packetcodec"
)

// CaptureBroker is a minimal upstream that records the first CONNECT it
// receives (bytes and decoded) and accepts it, for asserting exactly what
// the proxy sends upstream.
type CaptureBroker struct {
	Addr string

	mu      sync.Mutex
	raw     []byte
	connect *packetcodec.Connect
	got     chan struct{}
	once    sync.Once
}

// StartCaptureBroker listens on loopback until the test ends.
func StartCaptureBroker(t testing.TB) *CaptureBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &CaptureBroker{Addr: ln.Addr().String(), got: make(chan struct{})}
	var conns sync.WaitGroup
	t.Cleanup(func() { ln.Close(); conns.Wait() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				defer nc.Close()
				r := packetcodec.NewReader(nc, 1<<20)
				f, err := r.ReadFrame()
				if err != nil {
					return
				}
				cp, err := packetcodec.DecodeConnect(f)
				b.mu.Lock()
				b.raw = append([]byte(nil), f.Raw...)
				b.connect = cp
				b.mu.Unlock()
				b.once.Do(func() { close(b.got) })
				if err != nil {
					return
				}
				_, _ = nc.Write([]byte{0x20, 0x03, 0x00, 0x00, 0x00}) // CONNACK success, no properties
				_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
				for {
					if _, err := r.ReadFrame(); err != nil {
						return
					}
				}
			}()
		}
	}()
	return b
}

// Connect waits for and returns the first decoded CONNECT.
func (b *CaptureBroker) Connect(t testing.TB) *packetcodec.Connect {
	t.Helper()
	select {
	case <-b.got:
	case <-time.After(5 * time.Second):
		t.Fatal("no CONNECT reached the capture broker")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.connect == nil {
		t.Fatalf("upstream CONNECT did not decode")
	}
	return b.connect
}

// Raw returns the first CONNECT's bytes.
func (b *CaptureBroker) Raw() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.raw
}
