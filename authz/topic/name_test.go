package topic_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/topic"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name  string
		topic string
		want  error
	}{
		{"simple", "a/b/c", nil},
		{"empty levels", "/", nil},
		{"dollar", "$SYS/x", nil},
		{"unicode", "häuser/€", nil},
		{"max length", strings.Repeat("a", topic.MaxLength), nil},
		{"empty", "", topic.ErrEmpty},                                          // [MQTT-4.7.3-1]
		{"too long", strings.Repeat("a", topic.MaxLength+1), topic.ErrTooLong}, // [MQTT-4.7.3-3]
		{"NUL", "a\x00b", topic.ErrNUL},                                        // [MQTT-4.7.3-2]
		{"invalid UTF-8", "a\xffb", topic.ErrInvalidUTF8},                      // [MQTT-1.5.4-1]
		{"surrogate", "a\xed\xa0\x80", topic.ErrInvalidUTF8},                   // [MQTT-1.5.4-1]
		{"plus", "a/+", topic.ErrWildcardInName},                               // [MQTT-3.3.2-2]
		{"hash", "#", topic.ErrWildcardInName},
		{"plus inside level", "a+b", topic.ErrWildcardInName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := topic.ValidateName(tt.topic); !errors.Is(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("ValidateName(%.20q) = %v, want %v", tt.topic, got, tt.want)
			}
		})
	}
}

func TestValidateFilter(t *testing.T) {
	tests := []struct {
		name   string
		filter string
		want   error
	}{
		{"literal", "a/b", nil},
		{"plus", "+", nil},
		{"hash", "#", nil},
		{"plus levels", "+/+/x/+", nil},
		{"final hash", "a/+/#", nil},
		{"empty levels", "//", nil},
		{"shared", "$share/g/a/#", nil},
		{"empty", "", topic.ErrEmpty},
		{"NUL", "a/\x00", topic.ErrNUL},
		{"invalid UTF-8", "\xc3", topic.ErrInvalidUTF8},
		{"too long", "a/" + strings.Repeat("b", topic.MaxLength), topic.ErrTooLong},
		{"hash not last", "#/a", topic.ErrWildcardPlacement}, // [MQTT-4.7.1-2]
		{"hash in level", "a/b#", topic.ErrWildcardPlacement},
		{"plus in level", "a/b+/c", topic.ErrWildcardPlacement}, // [MQTT-4.7.1-3]
		{"plus plus", "++", topic.ErrWildcardPlacement},
		{"hash hash", "a/#/#", topic.ErrWildcardPlacement},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := topic.ValidateFilter(tt.filter); !errors.Is(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("ValidateFilter(%.20q) = %v, want %v", tt.filter, got, tt.want)
			}
		})
	}
}

func TestSplitShared(t *testing.T) {
	tests := []struct {
		name          string
		filter        string
		group, inner  string
		shared, isErr bool
	}{
		{"not shared", "a/b", "", "a/b", false, false},
		{"other dollar", "$SYS/#", "", "$SYS/#", false, false},
		{"case-sensitive prefix", "$SHARE/g/a", "", "$SHARE/g/a", false, false},
		{"shared", "$share/g1/devices/+/x", "g1", "devices/+/x", true, false},
		{"shared hash", "$share/g/#", "g", "#", true, false},
		{"no filter", "$share/g", "", "", true, true},           // [MQTT-4.8.2-2]
		{"empty filter", "$share/g/", "", "", true, true},       // [MQTT-4.8.2-2]
		{"empty group", "$share//a", "", "", true, true},        // [MQTT-4.8.2-1]
		{"wildcard group", "$share/+/a", "", "", true, true},    // [MQTT-4.8.2-1]
		{"invalid inner", "$share/g/a/#/b", "", "", true, true}, // [MQTT-4.7.1-2]
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, in, sh, err := topic.SplitShared(tt.filter)
			if g != tt.group || in != tt.inner || sh != tt.shared || (err != nil) != tt.isErr {
				t.Errorf("SplitShared(%q) = %q, %q, %v, %v; want %q, %q, %v, error %v",
					tt.filter, g, in, sh, err, tt.group, tt.inner, tt.shared, tt.isErr)
			}
		})
	}
}
