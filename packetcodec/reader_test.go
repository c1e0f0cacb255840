package packetcodec

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"testing/iotest"
	"time"
)

// publishPacket builds a QoS 1 PUBLISH on topic "t/x" with a payload of n
// bytes, packet id id.
func publishPacket(n int, id uint16) []byte {
	body := []byte{0x00, 0x03, 't', '/', 'x', byte(id >> 8), byte(id), 0x00}
	body = append(body, bytes.Repeat([]byte{'p'}, n)...)
	return append(appendVBI([]byte{0x32}, len(body)), body...)
}

// TestReadFrameEOF checks STYLE 18: io.EOF only between packets.
func TestReadFrameEOF(t *testing.T) {
	tests := []struct {
		name    string
		stream  []byte
		frames  int
		wantEOF bool
	}{
		{"empty stream", nil, 0, true},
		{"one packet then close", []byte{0xc0, 0x00}, 1, true},
		{"close after first byte", []byte{0xc0}, 0, false},
		{"close inside length", []byte{0xc0, 0x00, 0x30, 0x80}, 1, false},
		{"close inside body", []byte{0x30, 0x05, 0x00, 0x03, 'a'}, 0, false},
		{"close inside a large body", append([]byte{0x30, 0x80, 0x80, 0x01}, make([]byte, 10000)...), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tt.stream), 0)
			for i := range tt.frames {
				if _, err := r.ReadFrame(); err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
			}
			_, err := r.ReadFrame()
			if tt.wantEOF {
				if err != io.EOF {
					t.Fatalf("got %v, want io.EOF itself", err)
				}
				return
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.Code != 0x81 {
				t.Fatalf("got %v, want *Error 0x81", err)
			}
			if errors.Is(err, io.EOF) {
				t.Fatalf("got %v matching io.EOF, want only io.ErrUnexpectedEOF", err)
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("got %v, want it to wrap io.ErrUnexpectedEOF", err)
			}
		})
	}
}

// TestReadFrameOversizeAllocation checks that a header declaring
// 268,435,455 bytes is refused from the header, allocating less than the
// limit (SPEC 4; paho allocates 256 MiB, STYLE §1.1).
func TestReadFrameOversizeAllocation(t *testing.T) {
	const limit = 1 << 20
	tests := []struct {
		name  string
		limit int
		input []byte
		code  byte
	}{
		{"above the limit", limit, []byte{0x30, 0xff, 0xff, 0xff, 0x7f}, 0x95},
		// With the protocol maximum as limit the packet is allowed; the
		// body must still be allocated as it arrives, not as announced.
		{"protocol limit, body never sent", 0, append([]byte{0x30, 0xff, 0xff, 0xff, 0x7f}, make([]byte, 100)...), 0x81},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			r := NewReader(bytes.NewReader(tt.input), tt.limit)
			_, err := r.ReadFrame()
			runtime.ReadMemStats(&after)
			var pe *Error
			if !errors.As(err, &pe) || pe.Code != tt.code {
				t.Fatalf("got %v, want *Error 0x%02x", err, tt.code)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got >= limit {
				t.Fatalf("allocated %d bytes, want < %d", got, limit)
			}
		})
	}
}

// TestReadFrameLimit checks that the limit counts the whole packet, fixed
// header included [MQTT-3.1.2-24], and that SetMaxPacketSize applies.
func TestReadFrameLimit(t *testing.T) {
	p := publishPacket(100, 1) // 2-byte header + 108-byte body = 110 bytes
	tests := []struct {
		name  string
		limit int
		ok    bool
	}{
		{"exact size", len(p), true},
		{"one byte short", len(p) - 1, false},
		{"remaining length alone fits", len(p) - 2, false},
		{"no limit", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(append(bytes.Clone(p), p...)), 1<<20)
			if _, err := r.ReadFrame(); err != nil {
				t.Fatal(err)
			}
			r.SetMaxPacketSize(tt.limit)
			_, err := r.ReadFrame()
			var pe *Error
			switch {
			case tt.ok && err != nil:
				t.Fatalf("got %v, want a frame", err)
			case !tt.ok && (!errors.As(err, &pe) || pe.Code != 0x95):
				t.Fatalf("got %v, want *Error 0x95", err)
			}
		})
	}
}

// TestReadFrameStream reads a mixed stream through readers that split it
// at every possible point; frames must come out whole and in order, both
// the zero-copy ones and the spilled ones.
func TestReadFrameStream(t *testing.T) {
	var stream []byte
	var want [][]byte
	// Totals around both buffer sizes: publishPacket(n) is n+11 bytes
	// while its body is under 16 KiB (4096 and 16384 bytes at 4085 and
	// 16373).
	for i, n := range []int{0, 10, 3000, 5000, 4084, 4085, 4086, 70000, 1, 200000, 64, 16372, 16373, 16374} {
		p := publishPacket(n, uint16(i+1))
		want = append(want, p)
		stream = append(stream, p...)
	}
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"one byte at a time", iotest.OneByteReader},
		{"half reads", iotest.HalfReader},
		{"data with EOF", iotest.DataErrReader},
	}
	for _, rd := range readers {
		t.Run(rd.name, func(t *testing.T) {
			r := NewReader(rd.wrap(bytes.NewReader(stream)), 1<<20)
			for i, w := range want {
				f, err := r.ReadFrame()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !bytes.Equal(f.Raw, w) {
					t.Fatalf("frame %d: got %d bytes, want %d (% x…)", i, len(f.Raw), len(w), w[:8])
				}
				if hl := len(f.Raw) - len(f.Body); !bytes.Equal(f.Body, w[hl:]) || f.Type != 3 || f.Flags != 2 {
					t.Fatalf("frame %d: got type %d flags %d, want 3 2 and Body a suffix of Raw", i, f.Type, f.Flags)
				}
			}
			if _, err := r.ReadFrame(); err != io.EOF {
				t.Fatalf("after the last frame: got %v, want io.EOF", err)
			}
		})
	}
}

// TestReadFrameRawValidUntilNextRead checks the zero-copy contract: a frame
// read from the buffer stays intact while the caller inspects Buffered.
func TestReadFrameRawValidUntilNextRead(t *testing.T) {
	a, b := publishPacket(10, 1), publishPacket(20, 2)
	r := NewReader(bytes.NewReader(append(bytes.Clone(a), b...)), 1<<20)
	f, err := r.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Buffered(), len(b); got != want {
		t.Fatalf("Buffered: got %d, want %d", got, want)
	}
	if !bytes.Equal(f.Raw, a) {
		t.Fatalf("Raw: got % x, want % x", f.Raw, a)
	}
	if cap(f.Raw) != len(f.Raw) {
		t.Fatalf("cap(Raw) = %d, want %d so an append cannot clobber the next packet", cap(f.Raw), len(f.Raw))
	}
	if _, err := r.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	if got := r.Buffered(); got != 0 {
		t.Fatalf("Buffered: got %d, want 0", got)
	}
}

// TestReadFrameHoldsNoSpillWhenDone checks that the buffer of a packet
// larger than the read buffer is held only until the next ReadFrame, so a
// connection waiting for its next packet pins none (issue 5), and that
// frames stay intact while they are current.
func TestReadFrameHoldsNoSpillWhenDone(t *testing.T) {
	big, medium := publishPacket(100_000, 1), publishPacket(10_000, 2)
	src := &hookReader{r: bytes.NewReader(append(big, medium...))}
	r := NewReader(src, 1<<20)
	f, err := r.ReadFrame()
	if err != nil || !bytes.Equal(f.Raw, big) {
		t.Fatalf("first frame: err %v, intact %v", err, bytes.Equal(f.Raw, big))
	}
	f, err = r.ReadFrame()
	if err != nil || !bytes.Equal(f.Raw, medium) {
		t.Fatalf("second frame: err %v, intact %v", err, bytes.Equal(f.Raw, medium))
	}
	if r.spillBox == nil {
		t.Fatal("a 10 kB frame is not in a spill buffer")
	}
	held := true
	src.onRead = func() { held = r.spillBox != nil } // runs inside ReadFrame, before it would block
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("third ReadFrame: %v, want io.EOF", err)
	}
	if held {
		t.Fatal("a reader waiting for the next packet still holds a spill buffer")
	}
}

// hookReader calls onRead before each Read.
type hookReader struct {
	r      io.Reader
	onRead func()
}

func (h *hookReader) Read(p []byte) (int, error) {
	if h.onRead != nil {
		h.onRead()
	}
	return h.r.Read(p)
}

// TestReadFrameShortPacketDoesNotBlock: a PINGREQ must be returned as soon
// as its two bytes arrive, with the sender waiting for the answer.
func TestReadFrameShortPacketDoesNotBlock(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	go func() { _, _ = client.Write([]byte{0xc0, 0x00}) }()
	_ = server.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := NewReader(server, 0).ReadFrame()
	if err != nil || f.Type != 12 {
		t.Fatalf("got %v, %v, want PINGREQ", f.Type, err)
	}
}

type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestReadFrameNetworkError: other errors pass through wrapped, not as
// *Error and not as io.EOF.
func TestReadFrameNetworkError(t *testing.T) {
	boom := errors.New("connection reset")
	tests := []struct {
		name string
		data []byte
	}{
		{"before a packet", nil},
		{"inside a packet", []byte{0x30, 0x05, 0x00}},
		{"inside a large packet", append([]byte{0x30, 0x80, 0x80, 0x01}, make([]byte, 5000)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReader(&errReader{data: tt.data, err: boom}, 0).ReadFrame()
			var pe *Error
			if !errors.Is(err, boom) || errors.As(err, &pe) || errors.Is(err, io.EOF) {
				t.Fatalf("got %v, want it to wrap %v only", err, boom)
			}
		})
	}
}

// TestReadFrameZeroAllocs: the steady state of the forwarding loop
// allocates nothing, for both small and spilled packets.
func TestReadFrameZeroAllocs(t *testing.T) {
	for _, n := range []int{64, 16 << 10} {
		p := publishPacket(n, 1)
		r := NewReader(&replayReader{data: bytes.Repeat(p, 8)}, 1<<20)
		var pv PublishView
		allocs := testing.AllocsPerRun(100, func() {
			f, err := r.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if err := ParsePublish(f, &pv); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("payload %d: got %v allocs per frame, want 0", n, allocs)
		}
	}
}
