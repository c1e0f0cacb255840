package test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/mqtt-authproxy/mqtt-authproxy/packetcodec"
	"github.com/mqtt-authproxy/mqtt-authproxy/test/harness"
)

// rawSubscribe sends SUBSCRIBE (packet id 1, no properties) for filter at
// QoS 0 and waits for its SUBACK.
func rawSubscribe(t *testing.T, raw *harness.RawConn, filter string) {
	t.Helper()
	body := []byte{0, 1, 0} // packet id 1, no properties
	body = harness.AppendString(body, filter)
	raw.Write(harness.Packet(0x82, append(body, 0)))
	for {
		cp, err := raw.ReadPacket(5 * time.Second)
		if err != nil {
			t.Fatalf("waiting for SUBACK: %v", err)
		}
		if ack, ok := cp.Content.(*packets.Suback); ok {
			if len(ack.Reasons) != 1 || ack.Reasons[0] >= 0x80 {
				t.Fatalf("SUBACK %v", ack.Reasons)
			}
			return
		}
	}
}

// MQTT-3.1.2-22: a client silent for 1.5 × its keep alive is disconnected
// with 0x8D, not before; one that pings in time stays (keep alive 2 s,
// pinging every 0.5 s: a loaded machine has 2.5 s of slack).
func TestKeepAlive(t *testing.T) {
	_, px := anonymousStack(t)

	silent := harness.DialRaw(t, px.Addr)
	silent.Write(harness.ConnectV5{ClientID: "silent", CleanStart: true, KeepAlive: 1}.Bytes())
	expectConnack(t, silent, 0)
	connected := time.Now()

	pinger := harness.DialRaw(t, px.Addr)
	pinger.Write(harness.ConnectV5{ClientID: "pinger", CleanStart: true, KeepAlive: 2}.Bytes())
	expectConnack(t, pinger, 0)
	done := make(chan error, 1)
	go func() {
		for range 10 { // 5 s, well past 3 s
			time.Sleep(500 * time.Millisecond)
			if _, err := pinger.TryWrite([]byte{0xc0, 0}); err != nil {
				done <- err
				return
			}
			f, err := pinger.ReadFrame(5 * time.Second)
			if err != nil {
				done <- err
				return
			}
			if f.Type != packets.PINGRESP {
				done <- fmt.Errorf("got %s, want PINGRESP", packetcodec.TypeName(f.Type))
				return
			}
		}
		done <- nil
	}()

	expectDisconnect(t, silent, packets.DisconnectKeepAliveTimeout)
	if waited := time.Since(connected); waited < 1400*time.Millisecond {
		t.Errorf("silent client disconnected after %v, before 1.5 × keep alive", waited)
	}
	if err := <-done; err != nil {
		t.Fatalf("pinging client: %v", err)
	}
}

// A client that stops reading holds up only itself: other clients' traffic
// keeps flowing, the proxy buffers a bounded amount for it (it stops
// reading that client's broker connection instead), and once it reads
// again its messages arrive whole and in order.
func TestStalledReaderHoldsUpOnlyItself(t *testing.T) {
	_, px := anonymousStack(t)

	stalled := harness.DialRaw(t, px.Addr)
	stalled.Write(harness.ConnectV5{ClientID: "stalled", CleanStart: true, KeepAlive: 60}.Bytes())
	expectConnack(t, stalled, 0)
	rawSubscribe(t, stalled, "flood/#")

	other := harness.MustConnect(t, px.Addr, harness.ClientOptions{ClientID: "other", CleanStart: true})
	subscribe(t, other, "other/#", 0)
	pub := harness.MustConnect(t, px.Addr, harness.ClientOptions{ClientID: "pub", CleanStart: true})

	heapBefore := liveHeap()
	const size, count = 4 << 10, 8000 // 32 MiB: more than the socket buffers on the way hold
	payload := make([]byte, size)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range count {
		binary.BigEndian.PutUint32(payload, uint32(i))
		if _, err := pub.Publish(ctx, &paho.Publish{Topic: "flood/x", QoS: 0, Payload: payload}); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	// The flood is stuck in front of the stalled client; others still
	// get through.
	publish(t, pub, &paho.Publish{Topic: "other/x", QoS: 1, Payload: []byte("still moving")})
	if got := other.WaitMessages(1, 5*time.Second); len(got) != 1 {
		t.Fatal("a stalled client held up another client's delivery")
	}
	if grown := liveHeap() - heapBefore; grown > 4<<20 {
		t.Errorf("live heap grew by %d MiB while a client did not read: the proxy buffers for it", grown>>20)
	}

	// Reading again, the stalled client gets its messages intact and in
	// order (Mosquitto may drop QoS 0 messages it queued meanwhile).
	last, n := -1, 0
	for n < count {
		f, err := stalled.ReadFrame(2 * time.Second)
		if err != nil {
			break // drained what the broker kept
		}
		if f.Type != packets.PUBLISH {
			continue
		}
		p, err := packets.ReadPacket(bytes.NewReader(f.Raw))
		if err != nil {
			t.Fatalf("delivery %d: %v", n, err)
		}
		pl := p.Content.(*packets.Publish).Payload
		if len(pl) != size {
			t.Fatalf("delivery %d: payload of %d bytes, want %d", n, len(pl), size)
		}
		seq := int(binary.BigEndian.Uint32(pl))
		if seq <= last {
			t.Fatalf("delivery %d: message %d after %d", n, seq, last)
		}
		last, n = seq, n+1
	}
	if n < 100 {
		t.Fatalf("the stalled client got %d messages once it read again", n)
	}
	t.Logf("stalled client received %d of %d messages, last %d", n, count, last)
}

// liveHeap is the heap in use after a collection.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// Many connections through the loop at once: 16 publishers send QoS 1
// messages of random sizes (empty to 40 KiB, so some span reads and some
// are larger than the 16 KiB read buffer) to one subscriber; every message
// arrives intact and each publisher's in order.
func TestConcurrentPublishersThroughTheLoop(t *testing.T) {
	_, px := anonymousStack(t)
	sub := harness.MustConnect(t, px.Addr, harness.ClientOptions{ClientID: "sink", CleanStart: true})
	subscribe(t, sub, "mix/#", 1)

	const publishers, each = 16, 60
	errs := make(chan error, publishers)
	for p := range publishers {
		pub := harness.MustConnect(t, px.Addr, harness.ClientOptions{ClientID: fmt.Sprintf("mix%d", p), CleanStart: true})
		go func() {
			rng := rand.New(rand.NewPCG(uint64(p), 1))
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for i := range each {
				payload := make([]byte, 8+rng.IntN(40<<10))
				binary.BigEndian.PutUint32(payload, uint32(i))
				for j := 8; j < len(payload); j++ {
					payload[j] = byte(rng.Uint32())
				}
				binary.BigEndian.PutUint32(payload[4:], crc32.ChecksumIEEE(payload[8:]))
				if _, err := pub.Publish(ctx, &paho.Publish{Topic: fmt.Sprintf("mix/%d", p), QoS: 1, Payload: payload}); err != nil {
					errs <- fmt.Errorf("publisher %d message %d: %w", p, i, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range publishers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got := sub.WaitMessages(publishers*each, 30*time.Second)
	if len(got) != publishers*each {
		t.Fatalf("subscriber got %d of %d messages", len(got), publishers*each)
	}
	next := map[string]uint32{}
	for _, m := range got {
		pl := m.Payload
		if len(pl) < 8 || binary.BigEndian.Uint32(pl[4:]) != crc32.ChecksumIEEE(pl[8:]) {
			t.Fatalf("message on %s corrupted (%d bytes)", m.Topic, len(pl))
		}
		if seq := binary.BigEndian.Uint32(pl); seq != next[m.Topic] {
			t.Fatalf("%s: message %d arrived when %d was due", m.Topic, seq, next[m.Topic])
		}
		next[m.Topic]++
	}
}
