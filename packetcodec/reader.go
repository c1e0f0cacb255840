package packetcodec

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

const (
	// readBufferSize is the read buffer of a Reader on a socket: packets
	// up to this size are returned as a slice of it, without a copy, and
	// a burst of them is one read. Idle sockets hold none (source), so
	// only busy connections pay for its size.
	readBufferSize = 16 << 10
	// streamBufferSize is the read buffer of a Reader on another stream
	// (TLS, WebSocket), which keeps it while waiting.
	streamBufferSize = 4 << 10
	// retainLimit is the largest spill buffer a Reader keeps between
	// frames; a bigger one is dropped before the next read so an idle
	// connection does not pin memory for one large packet.
	retainLimit = 64 << 10
)

// spillBuffers holds retainLimit-sized buffers for packets larger than the
// read buffer, shared by all Readers between such packets.
var spillBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, retainLimit)
	return &b
}}

// Reader reads MQTT control packets from a stream with hard limits checked
// from the fixed header, before the body is read or memory allocated for it
// (SPEC 4; paho's ReadPacket allocates whatever the header claims, STYLE §1
// item 1). A Reader is not safe for concurrent use: each socket has one
// reading goroutine.
type Reader struct {
	br  *source
	max int
	// spillBox is the pooled buffer holding the last frame when it was
	// larger than br's buffer; returned to the pool at the next ReadFrame.
	spillBox *[]byte
	// spill is the frame too large for br's buffer being read; inSpill
	// says a non-blocking stream (SetNonblocking) ran dry inside it.
	spill   partialFrame
	inSpill bool
}

// partialFrame is a large frame being read: buf holds its first bytes.
type partialFrame struct {
	t, flags  byte
	hl, total int
	buf       []byte
}

// NewReader returns a Reader over r that rejects packets larger than
// maxPacketSize bytes. The size counts the whole packet, fixed header
// included, as the MQTT v5 Maximum Packet Size does [MQTT-3.1.2-24];
// maxPacketSize ≤ 0 or above the protocol maximum means the protocol
// maximum.
func NewReader(r io.Reader, maxPacketSize int) *Reader {
	rd := &Reader{br: newSource(r)}
	rd.SetMaxPacketSize(maxPacketSize)
	return rd
}

// SetMaxPacketSize changes the limit for the following frames, e.g. once
// the CONNACK has advertised it. It must not be called concurrently with
// ReadFrame.
func (r *Reader) SetMaxPacketSize(n int) {
	if n <= 0 || n > maxPacketSizeProtocol {
		n = maxPacketSizeProtocol
	}
	r.max = n
}

// Buffered returns the number of bytes already read from the stream and not
// yet returned as a frame.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// SetOnWait makes ReadFrame call fn whenever it is about to wait for the
// stream: on a socket when the read would block, on other streams before
// every read. The Writers this Reader feeds flush there, so the packets of
// everything read before the wait leave in one write per socket, even when
// more arrived while they were being handled, and nothing is held back while
// the Reader waits for the rest of a partial packet. An error from fn ends
// the read: ReadFrame returns it wrapped, and every later call fails. It must
// not be called concurrently with ReadFrame.
func (r *Reader) SetOnWait(fn func() error) { r.br.onWait = fn }

// SetNonblocking makes rd the stream from here on, keeping the bytes
// already read. rd must return ErrWouldBlock, never wait, when it has
// nothing; ReadFrame then returns ErrWouldBlock whenever the next frame has
// not fully arrived, and is called again once rd is readable. The proxy's
// event loop (proxy/loop_linux.go) reads sockets this way. The read buffer
// is held only while it holds unread bytes, as on a socket. It must not be
// called concurrently with ReadFrame.
func (r *Reader) SetNonblocking(rd io.Reader) { r.br.setNonblocking(rd) }

// Readable tells a non-blocking Reader that an edge-triggered poller
// reported its socket readable. Unless hangup (the event also reported
// the peer's end or an error), a read that does not fill the buffer is
// taken to have emptied the socket: anything arriving later raises a new
// edge, so the Reader returns ErrWouldBlock after it without the read
// system call that would only say EAGAIN. A hang-up must be read to the
// end, since its edge has already been reported.
func (r *Reader) Readable(hangup bool) {
	r.br.shortDrains = !hangup
	r.br.drained = false
}

// ErrReaderClosed is returned by ReadFrame after Close.
var ErrReaderClosed = errors.New("packetcodec: reader closed")

// Close gives r's buffers back to their pools; ReadFrame returns
// ErrReaderClosed afterwards. A connection that ends right after a packet
// (a DISCONNECT, say) never reads again, so without Close its read buffer
// would be left to the garbage collector, a fresh 16 KiB per connection
// (issue 5: CONNECT rate). Call it once no goroutine reads from r and no
// frame it returned is in use.
func (r *Reader) Close() {
	if r.spillBox != nil {
		spillBuffers.Put(r.spillBox)
		r.spillBox = nil
	}
	r.inSpill = false
	r.spill.buf = nil
	r.br.close()
}

// ReadFrame reads the next packet. Its Raw and Body are valid until the next
// call to ReadFrame.
//
// It returns io.EOF, unwrapped, only when the stream ended cleanly before
// the first byte of a packet (STYLE 18). A stream ending inside a packet, a
// Remaining Length longer than 4 bytes, a reserved packet type or reserved
// fixed-header flag bits give an *Error with code 0x81; a packet larger than
// the limit gives 0x95 without its body being read. Other read errors (a
// deadline, a reset) are returned wrapped.
func (r *Reader) ReadFrame() (Frame, error) {
	if r.inSpill {
		return r.resumeSpill()
	}
	// The previous frame is done with: give its spill buffer back, so a
	// connection idle after one large packet holds none (issue 5).
	if r.spillBox != nil {
		spillBuffers.Put(r.spillBox)
		r.spillBox = nil
	}

	// Peek only as many bytes as the header has announced so far: asking
	// for more could block on a short packet such as PINGREQ (c0 00)
	// whose sender is waiting for an answer.
	hdr, err := r.br.Peek(2)
	if len(hdr) == 0 {
		if err == io.EOF || err == ErrWouldBlock {
			return Frame{}, err
		}
		return Frame{}, fmt.Errorf("read frame: %w", err)
	}
	t, flags := hdr[0]>>4, hdr[0]&0x0f
	if err := checkFixedHeader(t, flags); err != nil {
		return Frame{}, err
	}
	if len(hdr) < 2 {
		return Frame{}, truncated(err)
	}

	// Remaining Length: at most 4 bytes, minimally encoded [MQTT-1.5.5-1].
	rl, n := 0, 0
	for i := 1; i <= 4; i++ {
		if len(hdr) <= i {
			if hdr, err = r.br.Peek(i + 1); len(hdr) <= i {
				return Frame{}, truncated(err)
			}
		}
		c := hdr[i]
		rl |= int(c&0x7f) << (7 * (i - 1))
		if c&0x80 == 0 {
			if c == 0 && i > 1 {
				return Frame{}, malformed("remaining length is not minimally encoded")
			}
			n = i
			break
		}
	}
	if n == 0 {
		return Frame{}, malformed("remaining length longer than 4 bytes")
	}

	hl := 1 + n
	total := hl + rl
	if total > r.max {
		// SPEC 4: refused from the header alone, nothing allocated.
		return Frame{}, &Error{Code: codePacketTooLarge, Type: t, Reason: fmt.Sprintf("packet of %d bytes exceeds the maximum packet size %d", total, r.max)}
	}

	if total <= r.br.Size() {
		// Zero copy: the packet is returned as a slice of the read buffer.
		// Discard never reads, so the slice stays intact until the next
		// ReadFrame.
		raw, err := r.br.Peek(total)
		if len(raw) < total {
			return Frame{}, truncated(err)
		}
		r.br.Discard(total)
		raw = raw[:total:total] // an append by the caller must not clobber the buffer
		return Frame{Type: t, Flags: flags, Raw: raw, Body: raw[hl:]}, nil
	}

	// Too big for the read buffer: copy into the spill buffer. It grows
	// with the bytes that actually arrive (doubling, from 64 KiB), not to
	// the size the header claims: with a large limit a peer announcing
	// 256 MiB and sending nothing must not get 256 MiB allocated.
	r.spill = partialFrame{t: t, flags: flags, hl: hl, total: total}
	if total <= retainLimit {
		// A pooled buffer, held until the next ReadFrame.
		r.spillBox = spillBuffers.Get().(*[]byte)
		r.spill.buf = (*r.spillBox)[:0]
	}
	return r.resumeSpill()
}

// resumeSpill reads the rest of the large frame r.spill. On a non-blocking
// stream that runs dry it keeps it for the next ReadFrame.
func (r *Reader) resumeSpill() (Frame, error) {
	p := &r.spill
	raw, err := r.readSpill(p)
	r.inSpill = err == ErrWouldBlock
	if r.inSpill {
		return Frame{}, err
	}
	p.buf = nil // the frame owns it now; spillBox, if pooled, until the next ReadFrame
	if err != nil {
		return Frame{}, truncated(err)
	}
	return Frame{Type: p.t, Flags: p.flags, Raw: raw, Body: raw[p.hl:]}, nil
}

// readSpill reads the rest of p's total bytes into p.buf, growing it as
// data arrives.
func (r *Reader) readSpill(p *partialFrame) ([]byte, error) {
	buf, total := p.buf, p.total
	defer func() { p.buf = buf }()
	for len(buf) < total {
		if len(buf) == cap(buf) {
			// Only above retainLimit: grow with the bytes that arrive,
			// never beyond what the packet needs.
			n := min(max(2*cap(buf), retainLimit), total)
			nb := make([]byte, len(buf), n)
			copy(nb, buf)
			buf = nb
		}
		n, err := io.ReadFull(r.br, buf[len(buf):min(cap(buf), total)])
		buf = buf[:len(buf)+n]
		if err != nil {
			return nil, err
		}
	}
	return buf[:total:total], nil
}

// truncated classifies an error met inside a packet: the end of the stream
// there is a malformed packet, never io.EOF (STYLE 18, paho's ambiguity in
// STYLE §1 item 3). io.ErrUnexpectedEOF is wrapped for errors.Is, io.EOF
// deliberately not.
func truncated(err error) error {
	if err == ErrWouldBlock {
		return err
	}
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", malformed("truncated packet"), io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("read frame: %w", err)
}
