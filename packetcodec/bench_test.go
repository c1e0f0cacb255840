package packetcodec

import (
	"bytes"
	"io"
	"testing"
)

// replayReader replays data endlessly without allocating.
type replayReader struct {
	data []byte
	off  int
}

func (r *replayReader) Read(p []byte) (int, error) {
	n := copy(p, r.data[r.off:])
	r.off += n
	if r.off == len(r.data) {
		r.off = 0
	}
	return n, nil
}

// benchmarkForward is the proxy's client→broker loop for allowed PUBLISH
// packets without alias: read, validate, forward the original bytes, flush
// when the reader has nothing buffered (STYLE 24).
func benchmarkForward(b *testing.B, payload int) {
	p := publishPacket(payload, 1)
	stream := bytes.Repeat(p, max(1, (64<<10)/len(p)))
	r := NewReader(&replayReader{data: stream}, 1<<20)
	w := NewWriter(io.Discard)
	var pv PublishView
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		f, err := r.ReadFrame()
		if err != nil {
			b.Fatal(err)
		}
		if err := ParsePublish(f, &pv); err != nil {
			b.Fatal(err)
		}
		if err := w.Write(f.Raw); err != nil {
			b.Fatal(err)
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkForwardPublish64(b *testing.B)  { benchmarkForward(b, 64) }
func BenchmarkForwardPublish16K(b *testing.B) { benchmarkForward(b, 16<<10) }

// BenchmarkAppendPublishWithTopic is the aliased path: the topic is
// restored and the alias dropped before forwarding (SPEC 4).
func BenchmarkAppendPublishWithTopic(b *testing.B) {
	raw := []byte{0x32, 0x48, 0x00, 0x00, 0x00, 0x01, 0x03, 0x23, 0x00, 0x01}
	raw = append(raw, bytes.Repeat([]byte{'p'}, 64)...)
	f, err := ParseFrame(raw)
	if err != nil {
		b.Fatal(err)
	}
	var pv PublishView
	if err := ParsePublish(f, &pv); err != nil {
		b.Fatal(err)
	}
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendPublishWithTopic(dst[:0], f, &pv, "devices/d1/telemetry")
	}
}

// BenchmarkDecodeSubscribe is the allocation-heavy path (paho structs).
func BenchmarkDecodeSubscribe(b *testing.B) {
	f, err := ParseFrame(vectors[indexOf(b, "SUBSCRIBE two filters with subscription identifier")].raw)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(f); err != nil {
			b.Fatal(err)
		}
	}
}
