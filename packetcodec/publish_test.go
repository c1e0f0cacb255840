package packetcodec

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func mustFrame(t testing.TB, raw []byte) Frame {
	t.Helper()
	f, err := ParseFrame(raw)
	if err != nil {
		t.Fatalf("ParseFrame(% x): %v", raw, err)
	}
	return f
}

// TestParsePublishView checks every field and offset of the view.
func TestParsePublishView(t *testing.T) {
	tests := []struct {
		name   string
		vector string
		want   PublishView
		topic  string
	}{
		{
			name: "QoS 0", vector: "PUBLISH QoS 0", topic: "a/b",
			want: PublishView{PropsStart: 8, PropsEnd: 8, PayloadStart: 8},
		},
		{
			name: "QoS 1 retain with properties", vector: "PUBLISH QoS 1 retain with properties", topic: "a/b",
			want: PublishView{QoS: 1, Retain: true, PacketID: 7, PropsStart: 10, PropsEnd: 28, PayloadStart: 28},
		},
		{
			name: "QoS 2 dup with alias", vector: "PUBLISH QoS 2 dup with topic alias", topic: "a/b",
			want: PublishView{QoS: 2, Dup: true, PacketID: 9, TopicAlias: 5, PropsStart: 10, PropsEnd: 13, PayloadStart: 13},
		},
		{
			name: "alias only [MQTT-3.3.2.3.4]", vector: "PUBLISH empty topic with topic alias", topic: "",
			want: PublishView{TopicAlias: 5, PropsStart: 5, PropsEnd: 8, PayloadStart: 8},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustFrame(t, vectors[indexOf(t, tt.vector)].raw)
			var got PublishView
			if err := ParsePublish(f, &got); err != nil {
				t.Fatal(err)
			}
			if string(got.Topic) != tt.topic {
				t.Fatalf("Topic: got %q, want %q", got.Topic, tt.topic)
			}
			got.Topic = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestAppendPublishWithTopic checks the re-encoding of an aliased PUBLISH
// (SPEC 4): topic restored, alias removed, all else byte for byte.
func TestAppendPublishWithTopic(t *testing.T) {
	tests := []struct {
		name  string
		raw   []byte
		topic string
		want  []byte
	}{
		{
			name: "alias only, QoS 1, other properties kept in order",
			raw: []byte{
				0x33,       // PUBLISH, QoS 1, retain
				0x11,       // remaining length 17
				0x00, 0x00, // topic ""
				0x00, 0x05, // packet id 5
				0x0b,       // properties length 11
				0x01, 0x01, // payload format indicator
				0x23, 0x00, 0x02, // topic alias 2
				0x26, 0x00, 0x01, 'k', 0x00, 0x00, // user property k=""
				'p', // payload
			},
			topic: "a/b",
			want: []byte{
				0x33,                      // PUBLISH, QoS 1, retain (same first byte)
				0x11,                      // remaining length 17
				0x00, 0x03, 'a', '/', 'b', // topic restored
				0x00, 0x05, // packet id 5
				0x08,       // properties length 8
				0x01, 0x01, // payload format indicator
				0x26, 0x00, 0x01, 'k', 0x00, 0x00, // user property
				'p', // payload
			},
		},
		{
			name: "topic and alias, QoS 0, alias last",
			raw: []byte{
				0x30,            // PUBLISH, QoS 0
				0x09,            // remaining length 9
				0x00, 0x01, 'x', // topic "x"
				0x05,       // properties length 5
				0x0b, 0x01, // subscription identifier
				0x23, 0x00, 0x07, // topic alias 7
			},
			topic: "x",
			want: []byte{
				0x30,            // PUBLISH, QoS 0
				0x06,            // remaining length 6
				0x00, 0x01, 'x', // topic
				0x02,       // properties length 2
				0x0b, 0x01, // subscription identifier
			},
		},
		{
			name:  "no alias: same packet",
			raw:   []byte{0x30, 0x06, 0x00, 0x01, 'x', 0x00, 'h', 'i'},
			topic: "x",
			want:  []byte{0x30, 0x06, 0x00, 0x01, 'x', 0x00, 'h', 'i'},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustFrame(t, tt.raw)
			var pv PublishView
			if err := ParsePublish(f, &pv); err != nil {
				t.Fatal(err)
			}
			prefix := []byte("keep")
			got := AppendPublishWithTopic(bytes.Clone(prefix), f, &pv, tt.topic)
			if !bytes.HasPrefix(got, prefix) {
				t.Fatalf("dst prefix lost: % x", got)
			}
			if got = got[len(prefix):]; !bytes.Equal(got, tt.want) {
				t.Fatalf("got  % x\nwant % x", got, tt.want)
			}
			var back PublishView
			if err := ParsePublish(mustFrame(t, got), &back); err != nil || back.TopicAlias != 0 {
				t.Fatalf("re-parse: got alias %d, %v, want 0, nil", back.TopicAlias, err)
			}
		})
	}
}

func TestAppendPublishWithTopicZeroAllocs(t *testing.T) {
	f := mustFrame(t, vectors[indexOf(t, "PUBLISH QoS 2 dup with topic alias")].raw)
	var pv PublishView
	if err := ParsePublish(f, &pv); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { dst = AppendPublishWithTopic(dst[:0], f, &pv, "some/topic") }); n != 0 {
		t.Fatalf("got %v allocs, want 0", n)
	}
}

// TestAppendPublishWithTopicTooLong: never truncate (STYLE §1.7).
func TestAppendPublishWithTopicTooLong(t *testing.T) {
	f := mustFrame(t, vectors[indexOf(t, "PUBLISH QoS 0")].raw)
	var pv PublishView
	if err := ParsePublish(f, &pv); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("got no panic for a 70,000-byte topic, want one")
		}
	}()
	AppendPublishWithTopic(nil, f, &pv, strings.Repeat("a", 70_000))
}

func TestParsePublishWrongType(t *testing.T) {
	var pv PublishView
	if err := ParsePublish(mustFrame(t, []byte{0xc0, 0x00}), &pv); err == nil {
		t.Fatal("got nil, want an error for a PINGREQ")
	}
}
