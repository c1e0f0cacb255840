package proxy

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestReasonStringFitsTheClient(t *testing.T) {
	long := "publish to '" + strings.Repeat("t", 70_000) + "' not allowed"
	tests := []struct {
		name        string
		problemInfo bool
		clientMax   uint32
		s           string
		other       int
		want        string // exact answer, or "" with wantLen
		wantLen     int
	}{
		{name: "no problem information", problemInfo: false, s: "denied", want: ""},
		{name: "short, no client limit", problemInfo: true, s: "denied", want: "denied"},
		{name: "topic of 70,000 bytes", problemInfo: true, s: long, wantLen: maxReasonString},
		{name: "client limit of 64 bytes", problemInfo: true, clientMax: 64, s: long, wantLen: 64 - fixedAnswerSize},
		{name: "client limit counts the other parts", problemInfo: true, clientMax: 64, s: long, other: 10, wantLen: 64 - fixedAnswerSize - 10},
		{name: "client limit leaves no room", problemInfo: true, clientMax: fixedAnswerSize + 3, s: long, want: ""},
		{name: "fits the client limit exactly", problemInfo: true, clientMax: fixedAnswerSize + 6, s: "denied", want: "denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &conn{problemInfo: tt.problemInfo, clientMaxPacket: tt.clientMax}
			got := c.reasonString(tt.s, tt.other)
			if tt.wantLen == 0 {
				if got != tt.want {
					t.Errorf("got %q, want %q", got, tt.want)
				}
				return
			}
			if len(got) != tt.wantLen || !strings.HasSuffix(got, "…") || !strings.HasPrefix(tt.s, strings.TrimSuffix(got, "…")) {
				t.Errorf("got %d bytes %.40q…, want %d bytes: a prefix of the reason marked …", len(got), got, tt.wantLen)
			}
		})
	}
}

// A cut never splits a character: the Reason String must be UTF-8.
func TestReasonStringCutsAtRuneBoundaries(t *testing.T) {
	s := strings.Repeat("é", 1000) // 2 bytes each
	for limit := fixedAnswerSize + 4; limit < fixedAnswerSize+12; limit++ {
		c := &conn{problemInfo: true, clientMaxPacket: uint32(limit)}
		got := c.reasonString(s, 0)
		if !utf8.ValidString(got) || len(got) > limit-fixedAnswerSize {
			t.Errorf("limit %d: got %q (%d bytes), want valid UTF-8 within %d bytes", limit, got, len(got), limit-fixedAnswerSize)
		}
	}
}
