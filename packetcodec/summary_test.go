package packetcodec

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestSummary checks what a log line shows of a frame, and what it must not
// (STYLE 13, 29): no payload, password, Authentication Data, client id.
func TestSummary(t *testing.T) {
	tests := []struct {
		name    string
		vector  string
		want    []string
		wantNot []string
	}{
		{
			name:   "CONNECT",
			vector: "CONNECT with Will properties, auth, user name and password",
			want: []string{`"type":"connect"`, `"protocol_version":5`, `"size":122`,
				`"properties":["session_expiry_interval","authentication_method","authentication_data","receive_maximum","user_property"]`},
			wantNot: []string{"pass", "a.b.c", "OAUTH2-JWT", `"c1"`, "user\"", "bye", "text/plain"},
		},
		{
			name:    "PUBLISH",
			vector:  "PUBLISH QoS 1 retain with properties",
			want:    []string{`"type":"publish"`, `"topic":"a/b"`, `"qos":1`, `"packet_id":7`, `"flags":3`, `"properties":["payload_format_indicator","message_expiry_interval","correlation_data","user_property"]`},
			wantNot: []string{"xyz"},
		},
		{
			name:    "AUTH",
			vector:  "AUTH re-authenticate",
			want:    []string{`"type":"auth"`, `"reason_code":25`, `"properties":["authentication_method","authentication_data"]`},
			wantNot: []string{"jwt\"", "OAUTH2-JWT"},
		},
		{name: "DISCONNECT e0 00", vector: "DISCONNECT e0 00", want: []string{`"type":"disconnect"`, `"reason_code":0`}},
		{name: "PUBACK", vector: "PUBACK short form", want: []string{`"type":"puback"`, `"packet_id":1`, `"reason_code":0`}},
		{name: "malformed PUBLISH", vector: "PUBLISH property block past end", want: []string{`"type":"publish"`, `"topic":"a"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustFrame(t, vectors[indexOf(t, tt.vector)].raw)
			var out bytes.Buffer
			slog.New(slog.NewJSONHandler(&out, nil)).Info("frame", "frame", Summary(f))
			line := out.String()
			for _, w := range tt.want {
				if !strings.Contains(line, w) {
					t.Errorf("got %s, want it to contain %s", line, w)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(line, w) {
					t.Errorf("got %s, must not contain %s", line, w)
				}
			}
		})
	}
}

// TestSummaryOutlivesFrame: the summary is taken when Summary is called.
func TestSummaryOutlivesFrame(t *testing.T) {
	raw := bytes.Clone(vectors[indexOf(t, "PUBLISH QoS 0")].raw)
	s := Summary(mustFrame(t, raw))
	for i := range raw {
		raw[i] = 0
	}
	if got := s.LogValue().String(); !strings.Contains(got, "topic=a/b") {
		t.Fatalf("got %s, want topic=a/b", got)
	}
}

// TestSummaryNeverPanics on arbitrary truncations of every vector.
func TestSummaryNeverPanics(t *testing.T) {
	for _, v := range vectors {
		for n := 1; n <= len(v.raw); n++ {
			raw := v.raw[:n]
			f := Frame{Type: raw[0] >> 4, Flags: raw[0] & 0x0f, Raw: raw, Body: raw[min(2, n):]}
			_ = Summary(f).LogValue().String()
		}
	}
}
