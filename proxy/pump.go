package proxy

import (
	"errors"
	"fmt"

	"github.com/eclipse/paho.golang/packets"

	"github.com/mqtt-authproxy/mqtt-authproxy/packetcodec"
)

// Packet directions, for metrics.
const (
	dirFromClient = iota
	dirFromUpstream
)

// clientPump reads the client and forwards, answers or refuses each packet
// in the order SPEC 4 fixes: validate → resolve alias → authorize → forward
// or answer. Writes are flushed when a read of either socket would block
// (flushBoth), so a burst becomes one write per socket; under sustained
// input a Writer also flushes itself each time its 16 KiB buffer fills.
func (c *conn) clientPump() ending {
	for {
		c.refreshKeepAlive()
		f, err := c.cr.ReadFrame()
		if c.kaTimer != nil {
			c.kaWaitSince.Store(0)
		}
		if err != nil {
			return readEnding(err, clientReadEnding)
		}
		if e := c.clientFrame(f); e != nil {
			return *e
		}
	}
}

// testHookClientFrame, set by a test before it starts any connection, sees
// each client packet as its connection handles it, on the handling thread:
// a test can then tell the order the loop served connections in without
// the delay of observing it elsewhere.
var testHookClientFrame func(packetcodec.Frame)

// clientFrame handles one packet from the client, for the client pump and
// the event loop alike; a non-nil ending ends the connection.
func (c *conn) clientFrame(f packetcodec.Frame) *ending {
	if testHookClientFrame != nil {
		testHookClientFrame(f)
	}
	c.srv.metrics.packet(dirFromClient, f.Type)
	if err := packetcodec.CheckFromClient(f.Type); err != nil {
		// SPEC 4: packets only a server may send → DISCONNECT 0x82.
		return endingOf(clientReadEnding(err))
	}
	switch f.Type {
	case packets.PUBLISH:
		return c.clientPublish(f)
	case packets.SUBSCRIBE:
		return c.clientSubscribe(f)
	case packets.UNSUBSCRIBE:
		return c.clientUnsubscribe(f)
	case packets.AUTH:
		return c.clientAuth(f)
	case packets.DISCONNECT:
		return endingOf(c.clientDisconnect(f))
	case packets.CONNECT:
		return endingOf(protocolError("second CONNECT"))
	case packets.PUBACK, packets.PUBREC, packets.PUBREL, packets.PUBCOMP:
		if _, err := packetcodec.PacketID(f); err != nil {
			return endingOf(clientReadEnding(err))
		}
		return c.toUpstream(f.Raw)
	case packets.PINGREQ:
		// Forwarded, not answered: the broker's PINGRESP proves the
		// upstream is alive (SPEC 4 keep-alive).
		if len(f.Body) != 0 {
			return endingOf(clientReadEnding(&packetcodec.Error{Code: packets.DisconnectMalformedPacket, Reason: "PINGREQ with a body"}))
		}
		return c.toUpstream(f.Raw)
	}
	return endingOf(protocolError(fmt.Sprintf("unexpected %s from client", packetcodec.TypeName(f.Type))))
}

// endingOf returns a pointer to e, for the frame handlers' "ends the
// connection" result.
func endingOf(e ending) *ending { return &e }

// toUpstream buffers raw bytes for the broker, on the client's behalf.
func (c *conn) toUpstream(b []byte) *ending {
	if err := c.uw.Write(b); err != nil {
		e := upstreamLost(err)
		return &e
	}
	c.upWrittenAt = c.readAt
	return nil
}

// keepUpstreamAlive is called when the proxy has answered a client packet
// itself (a denied PUBLISH, a SUBSCRIBE denied whole, an AUTH): the broker
// did not get it, and counts the client's keep-alive on what it gets. A
// client sending nothing but such packets keeps its own keep-alive, yet
// the broker would end its session at 1.5 × the period, so after a quarter
// period without a packet for the broker the proxy sends it a PINGREQ, and
// drops the PINGRESP (pingsOwed).
func (c *conn) keepUpstreamAlive() *ending {
	if c.keepAlive == 0 {
		return nil
	}
	now := monoNanos()
	if now-c.upWrittenAt < int64(c.keepAlive/4) {
		return nil
	}
	c.pingsOwed.Add(1)
	if e := c.toUpstream(pingreq); e != nil {
		return e
	}
	c.upWrittenAt = now
	return nil
}

// pingreq is a PINGREQ packet.
var pingreq = []byte{packets.PINGREQ << 4, 0}

// toClient buffers raw bytes for the client.
func (c *conn) toClient(b []byte) *ending {
	if err := c.cw.Write(b); err != nil {
		e := clientWriteFailed(err)
		return &e
	}
	return nil
}

// clientDisconnect forwards the client's DISCONNECT byte for byte, so the
// broker applies the client's own reason code: 0x00 discards the Will, 0x04
// publishes it. The two-byte form e0 00 is a normal disconnect (STYLE §1.2).
func (c *conn) clientDisconnect(f packetcodec.Frame) ending {
	// Validated, not decoded: the reason code is all it needs (and every
	// connection that ends well ends here).
	if err := packetcodec.Validate(f); err != nil {
		return clientReadEnding(err)
	}
	e := ending{cause: "client_disconnect", clientCode: noDisconnect}
	if len(f.Body) > 0 && f.Body[0] != packets.DisconnectNormalDisconnection {
		e.cause = "client_disconnect_with_reason"
	}
	// Recorded before forwarding: the broker closes as soon as it reads
	// the DISCONNECT, and the upstream pump must not then report a lost
	// broker (0x88) to a client that has already left.
	c.clientLeft.Store(&e)
	_ = c.uw.Write(f.Raw) // finish flushes it
	return e
}

// upstreamPump reads the broker and forwards to the client, filtering
// deliveries the client's identity may not receive (SPEC 3.4 last row).
func (c *conn) upstreamPump() ending {
	for {
		f, err := c.ur.ReadFrame()
		if err != nil {
			return readEnding(err, upstreamLost)
		}
		if e := c.upstreamFrame(f); e != nil {
			return *e
		}
	}
}

// upstreamFrame handles one packet from the broker, for the upstream pump
// and the event loop alike; a non-nil ending ends the connection.
func (c *conn) upstreamFrame(f packetcodec.Frame) *ending {
	c.srv.metrics.packet(dirFromUpstream, f.Type)
	if err := packetcodec.CheckFromServer(f.Type); err != nil {
		return endingOf(upstreamLost(err))
	}
	switch f.Type {
	case packets.PUBLISH:
		return c.upstreamPublish(f)
	case packets.PUBREL:
		return c.upstreamPubrel(f)
	case packets.SUBACK:
		return c.upstreamSuback(f)
	case packets.DISCONNECT:
		// The broker ends the session (e.g. session taken over): pass
		// its reason to the client unchanged.
		// finish flushes it.
		if e := c.toClient(f.Raw); e != nil {
			return e
		}
		return &ending{cause: "upstream_disconnect", clientCode: noDisconnect}
	case packets.AUTH, packets.CONNACK:
		// The proxy never starts enhanced auth upstream and has had
		// its CONNACK.
		return endingOf(upstreamLost(fmt.Errorf("unexpected %s from upstream", packetcodec.TypeName(f.Type))))
	case packets.PINGRESP:
		// All PINGRESPs are alike: the first ones after the proxy's own
		// PINGREQs are its own (keepUpstreamAlive), the client's follow.
		if owed := c.pingsOwed.Load(); owed > 0 && c.pingsOwed.CompareAndSwap(owed, owed-1) {
			return nil
		}
	}
	return c.toClient(f.Raw)
}

// flushError carries how a connection ends when a Reader's wait hook could
// not flush a Writer.
type flushError struct{ end ending }

func (e *flushError) Error() string { return fmt.Sprintf("flush: %v", e.end.err) }

// readEnding is how a pump ends on a read error: as its wait hook's failed
// flush said, or as other says for the read itself.
func readEnding(err error, other func(error) ending) ending {
	if fe := (*flushError)(nil); errors.As(err, &fe) {
		return fe.end
	}
	return other(err)
}

// flushBoth writes out what both Writers hold. The Readers call it just
// before they wait for their socket (packetcodec.Reader.SetOnWait): a burst
// read in one or more reads leaves in one write per socket.
func (c *conn) flushBoth() error {
	if err := c.uw.Flush(); err != nil {
		return &flushError{upstreamLost(err)}
	}
	if err := c.cw.Flush(); err != nil {
		return &flushError{clientWriteFailed(err)}
	}
	return nil
}
