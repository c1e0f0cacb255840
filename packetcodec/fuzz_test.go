package packetcodec

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/eclipse/paho.golang/packets"
)

// isCodecError says err is what a decoder may return: *Error, or
// ErrProtocolV3 when v3 is allowed; never io.EOF (STYLE 18).
func isCodecError(err error, v3 bool) bool {
	var pe *Error
	if errors.Is(err, io.EOF) {
		return false
	}
	return errors.As(err, &pe) || (v3 && errors.Is(err, ErrProtocolV3))
}

// FuzzReadFrame feeds arbitrary bytes to the codec twice (STYLE 42):
//
//  1. as a stream through Reader and every decoder: no panic; ReadFrame
//     returns io.EOF only with every byte consumed and otherwise *Error;
//     decoders return *Error or ErrProtocolV3; Validate agrees with the
//     decoders; what decodes re-encodes stably;
//  2. as the body of a CONNECT (the fixed header is built for the input, so
//     every input reaches DecodeConnect): decode → encode → decode is stable,
//     errors are *Error or ErrProtocolV3.
//
// It is the package's only fuzz target so that the documented command
// `go test -fuzz=. ./packetcodec/` selects exactly one.
func FuzzReadFrame(f *testing.F) {
	var all []byte
	for _, v := range vectors {
		f.Add(v.raw)
		if v.code == 0 && !v.v3 {
			all = append(all, v.raw...)
		}
		if v.raw[0] == 0x10 && !v.framing {
			f.Add(mustFrame(f, v.raw).Body)
		}
	}
	f.Add(all)
	for _, raw := range everyPropertyPackets() {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzConnectBody(t, b)
		r := NewReader(bytes.NewReader(b), 1<<16)
		consumed := 0
		var frames [][]byte
		for {
			fr, err := r.ReadFrame()
			if err == io.EOF {
				if consumed != len(b) {
					t.Fatalf("io.EOF after %d of %d bytes", consumed, len(b))
				}
				break
			}
			if err != nil {
				if !isCodecError(err, false) {
					t.Fatalf("ReadFrame: got %v, want *Error", err)
				}
				break
			}
			consumed += len(fr.Raw)
			checkFrame(t, fr)
			frames = append(frames, bytes.Clone(fr.Raw))
		}
		checkNonblockingAgrees(t, b, frames)
	})
}

// checkNonblockingAgrees reads b again through a non-blocking Reader that
// gets it in pieces (sized from b, with ErrWouldBlock between them) and
// checks it returns the same frames as the blocking read did.
func checkNonblockingAgrees(t *testing.T, b []byte, want [][]byte) {
	cut := 1
	if len(b) > 0 {
		cut = 1 + int(b[len(b)-1])%64
	}
	r := NewReader(bytes.NewReader(nil), 1<<16)
	r.SetNonblocking(&trickle{chunks: chop(bytes.Clone(b), cut)})
	for i := 0; ; {
		fr, err := r.ReadFrame()
		if err == ErrWouldBlock {
			continue // trickle makes progress on every other Read
		}
		if err != nil || i == len(want) {
			if i != len(want) || err != io.EOF && !isCodecError(err, false) {
				t.Fatalf("non-blocking read: frame %d of %d: %v", i, len(want), err)
			}
			return
		}
		if !bytes.Equal(fr.Raw, want[i]) {
			t.Fatalf("non-blocking read: frame %d differs", i)
		}
		i++
	}
}

func checkFrame(t *testing.T, fr Frame) {
	pf, err := ParseFrame(bytes.Clone(fr.Raw))
	if err != nil || pf.Type != fr.Type || pf.Flags != fr.Flags || !bytes.Equal(pf.Body, fr.Body) {
		t.Fatalf("ParseFrame disagrees with ReadFrame: %v", err)
	}
	_ = Summary(fr).LogValue().String()
	for _, err := range []error{CheckFromClient(fr.Type), CheckFromServer(fr.Type)} {
		if err != nil && !isCodecError(err, false) {
			t.Fatalf("direction check: got %v", err)
		}
	}
	if _, err := PacketID(fr); err != nil && !isCodecError(err, false) {
		t.Fatalf("PacketID: got %v", err)
	}
	verr := Validate(fr)
	if verr != nil && !isCodecError(verr, fr.Type == packets.CONNECT) {
		t.Fatalf("Validate: got %v", verr)
	}
	switch fr.Type {
	case packets.CONNECT:
		c, err := DecodeConnect(fr)
		if (err == nil) != (verr == nil) {
			t.Fatalf("DecodeConnect %v, Validate %v: want agreement", err, verr)
		}
		if err == nil {
			checkConnectStable(t, c)
			checkSameAsPaho(t, fr)
		}
		return
	case packets.PUBLISH:
		var pv PublishView
		err := ParsePublish(fr, &pv)
		if (err == nil) != (verr == nil) {
			t.Fatalf("ParsePublish %v, Validate %v: want agreement", err, verr)
		}
		if err == nil {
			checkAppendPublish(t, fr, &pv)
		}
	}
	cp, err := Decode(fr)
	if (err == nil) != (verr == nil) {
		t.Fatalf("Decode %v, Validate %v: want agreement", err, verr)
	}
	if err != nil {
		if !isCodecError(err, false) {
			t.Fatalf("Decode: got %v", err)
		}
		return
	}
	if fr.Type == packets.AUTH {
		checkSameAsPaho(t, fr)
	}
	// paho re-encoding is lossy (empty strings, repeated Subscription
	// Identifiers), but once re-encoded it must be a fixed point.
	enc1, err := AppendPacket(nil, cp)
	if err != nil {
		t.Fatalf("AppendPacket(Decode(frame)): %v", err)
	}
	cp2, err := Decode(mustFrame(t, enc1))
	if err != nil {
		t.Fatalf("Decode(AppendPacket(Decode(frame))): %v\n% x", err, enc1)
	}
	enc2, err := AppendPacket(nil, cp2)
	if err != nil || !bytes.Equal(enc1, enc2) {
		t.Fatalf("re-encoding not stable: %v\n% x\n% x", err, enc1, enc2)
	}
}

// checkSameAsPaho: the packetcodec decoders that replace paho's Unpack
// (DecodeConnect, AUTH in Decode) give exactly what it gives, and nothing
// they return aliases the frame, whose buffer the next read reuses.
func checkSameAsPaho(t *testing.T, fr Frame) {
	t.Helper()
	raw := bytes.Clone(fr.Raw)
	own := mustFrame(t, raw)
	var got, paho packets.Packet
	switch fr.Type {
	case packets.CONNECT:
		c, err := DecodeConnect(own)
		if err != nil {
			t.Fatalf("DecodeConnect of a copy: %v", err)
		}
		got, paho = c.Connect, &packets.Connect{Properties: &packets.Properties{}}
	case packets.AUTH:
		cp, err := Decode(own)
		if err != nil {
			t.Fatalf("Decode of a copy: %v", err)
		}
		got, paho = cp.Content, &packets.Auth{Properties: &packets.Properties{}}
	default:
		t.Fatalf("checkSameAsPaho: %s", TypeName(fr.Type))
	}
	for i := range raw {
		raw[i] = 0xff // what the next read could leave there
	}
	if err := paho.Unpack(bytes.NewBuffer(fr.Body)); err != nil {
		t.Fatalf("paho cannot unpack a %s we accept: %v\n% x", TypeName(fr.Type), err, fr.Raw)
	}
	if !reflect.DeepEqual(got, paho) {
		t.Fatalf("%s decoded differently from paho (or aliasing the frame):\nours %+v\npaho %+v\n% x", TypeName(fr.Type), got, paho, fr.Raw)
	}
}

// checkAppendPublish: the alias-free copy parses to the same PUBLISH.
func checkAppendPublish(t *testing.T, fr Frame, pv *PublishView) {
	out := AppendPublishWithTopic(nil, fr, pv, "x/y")
	var got PublishView
	if err := ParsePublish(mustFrame(t, out), &got); err != nil {
		t.Fatalf("ParsePublish(AppendPublishWithTopic(…)): %v\n% x", err, out)
	}
	if string(got.Topic) != "x/y" || got.TopicAlias != 0 || got.QoS != pv.QoS || got.PacketID != pv.PacketID ||
		got.Retain != pv.Retain || got.Dup != pv.Dup || !bytes.Equal(out[got.PayloadStart:], fr.Raw[pv.PayloadStart:]) {
		t.Fatalf("got %+v, want the same PUBLISH on x/y without alias (was %+v)", got, *pv)
	}
	wantProps := got.PropsEnd - got.PropsStart
	if pv.TopicAlias != 0 {
		wantProps += 3
	}
	if wantProps != pv.PropsEnd-pv.PropsStart {
		t.Fatalf("properties: got %d bytes, want %d minus the alias", got.PropsEnd-got.PropsStart, pv.PropsEnd-pv.PropsStart)
	}
}

// checkConnectStable: decode → encode → decode → encode is a fixed point
// and keeps every field the proxy forwards.
func checkConnectStable(t *testing.T, c *Connect) {
	enc1, err := EncodeConnect(nil, c)
	if err != nil {
		// The one CONNECT paho's struct cannot carry: an Authentication
		// Method present but empty, with Authentication Data. paho reads
		// "" as absent, so re-encoding would send data without a method;
		// EncodeConnect refuses. The proxy clears both before encoding.
		if c.Properties.AuthMethod == "" && len(c.Properties.AuthData) > 0 {
			return
		}
		t.Fatalf("EncodeConnect(DecodeConnect(frame)): %v", err)
	}
	c2, err := DecodeConnect(mustFrame(t, enc1))
	if err != nil {
		t.Fatalf("DecodeConnect(EncodeConnect(…)): %v\n% x", err, enc1)
	}
	enc2, err := EncodeConnect(nil, c2)
	if err != nil || !bytes.Equal(enc1, enc2) {
		t.Fatalf("EncodeConnect not stable: %v\n% x\n% x", err, enc1, enc2)
	}
	a, b := *c.Connect, *c2.Connect
	a.Properties, b.Properties = nil, nil // paho drops empty strings: compared via enc1 == enc2
	if !reflect.DeepEqual(a, b) || !bytes.Equal(c.WillPropertiesRaw, c2.WillPropertiesRaw) {
		t.Fatalf("fields changed:\n%+v\n%+v", a, b)
	}
}

// fuzzConnectBody checks b as the body of a CONNECT.
func fuzzConnectBody(t *testing.T, body []byte) {
	raw := append(appendVBI([]byte{0x10}, len(body)), body...)
	fr, err := ParseFrame(raw)
	if err != nil {
		if len(body) > maxRemainingLength {
			return
		}
		t.Fatalf("ParseFrame: %v", err)
	}
	c, err := DecodeConnect(fr)
	if verr := Validate(fr); (err == nil) != (verr == nil) {
		t.Fatalf("DecodeConnect %v, Validate %v: want agreement", err, verr)
	}
	if err != nil {
		if !isCodecError(err, true) {
			t.Fatalf("DecodeConnect: got %v", err)
		}
		return
	}
	checkConnectStable(t, c)
}
